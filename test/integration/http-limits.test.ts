// Limits end to end: slow clients time out without holding a worker, malformed HTTP gets 400, a client that leaves
// while queued is dropped from the queue (one that leaves while its job runs ends it quietly), and the rrts-only
// status codes for "no free worker" and exec_ttl.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { freePort, sleep, startRrts, type RrtsInstance } from './harness.js';
import { request } from './client.js';

/** Opens a raw connection, writes `first`, and collects everything until the server closes. */
function rawExchange(port: number, first: string): { socket: net.Socket; closed: Promise<{ text: string; ms: number }> } {
  const started = Date.now();
  const socket = net.connect(port, '127.0.0.1', () => socket.write(first));
  let text = '';
  socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
  const closed = new Promise<{ text: string; ms: number }>((resolve) => {
    socket.on('error', () => {});
    socket.on('close', () => resolve({ text, ms: Date.now() - started }));
  });
  return { socket, closed };
}

async function served(rr: RrtsInstance): Promise<number> {
  return Number((await request(`${rr.url}/count`)).body.toString());
}

describe('slow and broken clients (1 worker)', () => {
  let rr: RrtsInstance;
  before(async () => {
    rr = await startRrts({ workers: 1, config: { http: { read_header_timeout: '500ms', read_timeout: '1s' } } });
  });
  after(async () => {
    await rr?.stop();
  });

  it('times out a client trickling its headers, without holding the worker', async () => {
    const slow = rawExchange(rr.port, 'GET /hello HTTP/1.1\r\nHost: x\r\n');
    const timer = setInterval(() => slow.socket.write('X-Slow: 1\r\n'), 100);
    try {
      const r = await request(`${rr.url}/hello`, { timeoutMs: 2000 });
      assert.equal(r.status, 200, 'the worker answered while the slow client was sending');
      const { text, ms } = await slow.closed;
      assert.ok(ms < 3000, `closed after ${ms} ms`);
      assert.doesNotMatch(text, /hello from/);
    } finally {
      clearInterval(timer);
    }
  });

  it('times out a client trickling its body; the request never reaches PHP', async () => {
    const before = await served(rr);
    const slow = rawExchange(rr.port, 'POST /hello HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{');
    const timer = setInterval(() => slow.socket.write(' '), 100);
    try {
      const r = await request(`${rr.url}/hello`, { timeoutMs: 2000 });
      assert.equal(r.status, 200);
      const { ms } = await slow.closed;
      assert.ok(ms < 4000, `closed after ${ms} ms`);
    } finally {
      clearInterval(timer);
    }
    assert.equal(await served(rr), before + 2, 'only /hello and /count ran');
  });

  it('answers malformed HTTP with 400', async () => {
    const { text } = await rawExchange(rr.port, 'THIS IS NOT HTTP\r\n\r\n').closed;
    assert.match(text, /^HTTP\/1\.1 400 Bad Request/);
    const { text: badHeader } = await rawExchange(rr.port, 'GET / HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n').closed;
    assert.match(badHeader, /^HTTP\/1\.1 400/);
  });

  it('drops a queued request whose client went away', async () => {
    const before = await served(rr);
    const busy = request(`${rr.url}/sleep?ms=1200`);
    await sleep(200);
    const gone = rawExchange(rr.port, 'GET /hello HTTP/1.1\r\nHost: x\r\n\r\n');
    await sleep(300);
    gone.socket.destroy();
    assert.equal((await busy).status, 200);
    await sleep(100);
    assert.equal(await served(rr), before + 2, 'the abandoned request never ran (only /sleep and /count)');
  });
});

describe('clients that leave while their request runs or waits (1 worker, http_metrics)', () => {
  let rr: RrtsInstance;
  let metricsPort: number;
  before(async () => {
    metricsPort = await freePort();
    rr = await startRrts({ workers: 1, config: { metrics: { address: `127.0.0.1:${metricsPort}` }, http: { middleware: ['http_metrics'] } } });
  });
  after(async () => {
    await rr?.stop();
  });

  it('each request is over (metrics, no error logged) and the worker serves the next', async () => {
    const running = rawExchange(rr.port, 'GET /sleep?ms=600 HTTP/1.1\r\nHost: x\r\n\r\n');
    await sleep(200);
    const queued = rawExchange(rr.port, 'GET /hello HTTP/1.1\r\nHost: x\r\n\r\n');
    await sleep(100);
    running.socket.destroy();
    queued.socket.destroy();
    const next = await request(`${rr.url}/hello`, { timeoutMs: 5000 });
    assert.equal(next.status, 200);
    assert.doesNotMatch((await running.closed).text, /slept/, 'nothing written to the client that left');

    const samples = (await request(`http://127.0.0.1:${metricsPort}/metrics`)).body.toString();
    const value = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(samples)?.[1]);
    assert.equal(value('rr_http_requests_queue'), 0, 'no request left in the handler');
    const errors = rr.logs().filter((l) => l.level === 'error');
    assert.deepEqual(errors, [], 'a client leaving is not an error');
  });
});

describe('slow clients with http2.h2c', () => {
  let rr: RrtsInstance;
  before(async () => {
    rr = await startRrts({ workers: 1, config: { http: { http2: { h2c: true }, read_header_timeout: '500ms', read_timeout: '1s' } } });
  });
  after(async () => {
    await rr?.stop();
  });

  it('closes a connection that sends nothing', async () => {
    const { ms } = await rawExchange(rr.port, '').closed;
    assert.ok(ms < 3000, `closed after ${ms} ms`);
  });

  it('closes a connection that stops inside the HTTP/2 preface', async () => {
    const { ms } = await rawExchange(rr.port, 'PRI * HTTP/2.0\r\n').closed;
    assert.ok(ms < 3000, `closed after ${ms} ms`);
  });

  it('times out trickled HTTP/1.1 headers on the shared port', async () => {
    const slow = rawExchange(rr.port, 'GET /hello HTTP/1.1\r\n');
    const timer = setInterval(() => slow.socket.write('X-Slow: 1\r\n'), 100);
    try {
      const { text, ms } = await slow.closed;
      assert.ok(ms < 3000, `closed after ${ms} ms`);
      assert.doesNotMatch(text, /hello from/);
    } finally {
      clearInterval(timer);
    }
  });
});

describe('http.no_free_workers_code and http.exec_ttl_code (rrts extensions)', () => {
  let rr: RrtsInstance;
  before(async () => {
    rr = await startRrts({
      workers: 1,
      config: {
        http: {
          no_free_workers_code: 503,
          exec_ttl_code: 504,
          pool: { allocate_timeout: '300ms', supervisor: { exec_ttl: '2s' } },
        },
      },
    });
  });
  after(async () => {
    await rr?.stop();
  });

  it('answers no_free_workers_code when no worker frees up in allocate_timeout', async () => {
    const busy = request(`${rr.url}/sleep?ms=1500`);
    await sleep(300);
    const r = await request(`${rr.url}/hello`);
    assert.equal(r.status, 503);
    assert.equal((await busy).status, 200);
  });

  it('answers exec_ttl_code when the job runs past exec_ttl', async () => {
    const r = await request(`${rr.url}/sleep?ms=5000`);
    assert.equal(r.status, 504);
    await rr.waitFor(() => rr.workerPids().length === 1, 'the worker to be replaced');
    const next = await request(`${rr.url}/hello`);
    assert.equal(next.status, 200);
  });
});

describe('http.internal_error_code stays the default for both', () => {
  it('uses internal_error_code when the extension keys are absent', async () => {
    const rr = await startRrts({ workers: 1, config: { http: { internal_error_code: 502, pool: { allocate_timeout: '200ms' } } } });
    try {
      const busy = request(`${rr.url}/sleep?ms=1500`);
      await sleep(300);
      assert.equal((await request(`${rr.url}/hello`)).status, 502);
      await busy;
    } finally {
      await rr.stop();
    }
  });
});
