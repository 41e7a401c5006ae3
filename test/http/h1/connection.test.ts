// Tests of the prototype connection handler (src/http/h1/connection.ts) over real loopback sockets: pipelined
// answers in order and one write each, keep-alive and close, Go's refusal answers, 100-continue, half-close.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { createH1Server, type H1Handler } from '../../../src/http/h1/connection.js';

interface Running {
  port: number;
  writes: number[];
  close(): Promise<void>;
}

async function start(handler: H1Handler, options: Parameters<typeof createH1Server>[1] = {}): Promise<Running> {
  const server = createH1Server(handler, options);
  const writes: number[] = [];
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const index = writes.push(0) - 1;
    const write = socket.write.bind(socket);
    socket.write = function (this: net.Socket, ...args: unknown[]) {
      writes[index]!++;
      return (write as (...a: unknown[]) => boolean).apply(this, args);
    };
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    writes,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Send the parts in order (waiting for `waitFor` text before each later part), half-close, read to the end. */
async function exchange(port: number, parts: string[], waitFor: string[] = []): Promise<string> {
  const client = net.connect(port, '127.0.0.1');
  let received = '';
  const waiters: { text: string; resolve: () => void }[] = [];
  client.on('data', (chunk: Buffer) => {
    received += chunk.toString('latin1');
    for (const w of waiters.splice(0)) {
      if (received.includes(w.text)) w.resolve();
      else waiters.push(w);
    }
  });
  const closed = new Promise<void>((resolve, reject) => {
    const guard = setTimeout(() => reject(new Error(`no close; received ${JSON.stringify(received)}`)), 10_000);
    client.on('close', () => {
      clearTimeout(guard);
      resolve();
    });
    client.on('error', reject);
  });
  await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  for (let i = 0; i < parts.length; i++) {
    const text = waitFor[i - 1];
    if (i > 0 && text !== undefined && !received.includes(text)) {
      await new Promise<void>((resolve) => waiters.push({ text, resolve }));
    }
    client.write(parts[i]!, 'latin1');
  }
  client.end();
  await closed;
  return received;
}

const echo: H1Handler = (request, respond) => {
  respond({
    status: 200,
    headers: ['Content-Type', 'text/plain', 'X-Request', `${request.head.method} ${request.head.target}`],
    body: request.body,
  });
};

function statuses(answers: string): string[] {
  return [...answers.matchAll(/HTTP\/1\.1 (\d{3})[^\r]*\r\n/g)].map((m) => m[1]!);
}

describe('H1 connection handler', () => {
  let server: Running;
  before(async () => {
    server = await start(echo, { maxHeaderBytes: 2048, maxBodyBytes: 1000 });
  });
  after(() => server.close());

  it('answers pipelined requests in order, each with one write', async () => {
    const answers = await exchange(server.port, [
      'GET /1 HTTP/1.1\r\nHost: h\r\n\r\nPOST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET /3 HTTP/1.1\r\nHost: h\r\n\r\n',
    ]);
    assert.deepEqual(statuses(answers), ['200', '200', '200']);
    assert.deepEqual(
      [...answers.matchAll(/X-Request: ([^\r]*)/g)].map((m) => m[1]),
      ['GET /1', 'POST /2', 'GET /3'],
    );
    assert.match(answers, /Content-Length: 5\r\n\r\nhello/);
    assert.equal(server.writes.at(-1), 3);
  });

  it('closes after a Connection: close request and says so', async () => {
    const answers = await exchange(server.port, ['GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nGET /never HTTP/1.1\r\nHost: h\r\n\r\n']);
    assert.deepEqual(statuses(answers), ['200']);
    assert.match(answers, /Connection: close\r\n/);
  });

  it('keeps an HTTP/1.0 keep-alive connection and says so', async () => {
    const answers = await exchange(server.port, ['GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n']);
    assert.deepEqual(statuses(answers), ['200', '200']);
    assert.match(answers, /Connection: keep-alive\r\n/);
    assert.match(answers, /Connection: close\r\n/);
  });

  it('answers a malformed request as Go does: plain text status, Connection: close', async () => {
    const answers = await exchange(server.port, ['GET / HTTP/1.1\r\nHost: h\r\nBad Name: v\r\n\r\n']);
    assert.equal(answers, 'HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request');
  });

  it('answers 431 for a header section over the limit, 501 for a gzip transfer coding, 505 for HTTP/2.0', async () => {
    assert.deepEqual(statuses(await exchange(server.port, [`GET / HTTP/1.1\r\nHost: h\r\nX: ${'a'.repeat(4096)}\r\n\r\n`])), ['431']);
    assert.deepEqual(statuses(await exchange(server.port, ['POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n'])), ['501']);
    assert.deepEqual(statuses(await exchange(server.port, ['GET / HTTP/2.0\r\nHost: h\r\n\r\n'])), ['505']);
  });

  it('answers 413 for a body over the limit, 417 for an unknown expectation, 405 for CONNECT', async () => {
    assert.deepEqual(statuses(await exchange(server.port, ['POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5000\r\n\r\n'])), ['413']);
    assert.deepEqual(statuses(await exchange(server.port, ['GET / HTTP/1.1\r\nHost: h\r\nExpect: magic\r\n\r\n'])), ['417']);
    assert.deepEqual(statuses(await exchange(server.port, ['CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n'])), ['405']);
  });

  it('sends 100 Continue before the body of an Expect: 100-continue request', async () => {
    const answers = await exchange(
      server.port,
      ['PUT /up HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n', 'data'],
      ['HTTP/1.1 100 Continue\r\n\r\n'],
    );
    assert.deepEqual(statuses(answers), ['100', '200']);
    assert.match(answers, /\r\n\r\ndata$/);
  });

  it('answers 400 when the client stops in the middle of a request', async () => {
    assert.deepEqual(statuses(await exchange(server.port, ['POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc'])), ['400']);
  });
});

describe('H1 connection handler with a handler that answers later', () => {
  let server: Running;
  before(async () => {
    server = await start((request, respond) => {
      // Later requests answer sooner: the order on the wire must still be the requests' order.
      const delay = request.head.target === '/slow' ? 30 : 0;
      setTimeout(() => echo(request, respond), delay);
    });
  });
  after(() => server.close());

  it('keeps pipelined answers in order and finishes them after the client half-closes', async () => {
    const answers = await exchange(server.port, [
      'GET /slow HTTP/1.1\r\nHost: h\r\n\r\nGET /fast HTTP/1.1\r\nHost: h\r\n\r\nGET /fast2 HTTP/1.1\r\nHost: h\r\n\r\n',
    ]);
    assert.deepEqual(
      [...answers.matchAll(/X-Request: ([^\r]*)/g)].map((m) => m[1]),
      ['GET /slow', 'GET /fast', 'GET /fast2'],
    );
  });
});
