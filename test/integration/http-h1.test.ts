// rrts's own HTTP/1.1 path on the wire, with a raw `net` client and real php workers: pipelined requests in one
// packet answered in order, Expect: 100-continue, bodies cut into many packets (Content-Length and chunked), a
// client that leaves in the middle of its body, and the keep-alive rules of HTTP/1.0 and Connection: close.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { sleep, startRrts, type RrtsInstance } from './harness.js';
import { request } from './client.js';
import { headerValues, RawConnection, type RawHead } from './raw-http.js';

interface Answer {
  head: RawHead;
  body: Buffer;
}

/** One answer framed by its Content-Length (or chunks); null if the connection ends first. */
async function readAnswer(conn: RawConnection): Promise<Answer | null> {
  const head = await conn.readHead();
  if (head === null) return null;
  if (headerValues(head, 'transfer-encoding').includes('chunked')) {
    const body = await conn.readChunked();
    return body === null ? null : { head, body };
  }
  const length = Number(headerValues(head, 'content-length')[0] ?? 0);
  const body = await conn.readBytes(length);
  return body.length === length ? { head, body } : null;
}

interface Echo {
  ctx: { uri: string; method: string; protocol: string };
  bodySha256: string;
}

function echoOf(answer: Answer | null): Echo {
  assert.ok(answer, 'an answer');
  assert.equal(answer.head.status, 200, answer.body.toString());
  return JSON.parse(answer.body.toString()) as Echo;
}

function sha256(data: Buffer | string): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

describe('HTTP/1.1 on the wire (2 workers)', () => {
  let rr: RrtsInstance;
  before(async () => {
    rr = await startRrts({ workers: 2, config: { http: { max_request_size: 1 } } });
  });
  after(async () => {
    await rr?.stop();
  });

  it('answers several pipelined requests sent in one packet, in order, on one connection', async () => {
    const conn = await RawConnection.open(rr.port);
    try {
      const body = 'x'.repeat(300);
      conn.send(
        'GET /echo?i=0 HTTP/1.1\r\nHost: a\r\n\r\n' +
          `POST /echo?i=1 HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}` +
          'GET /echo?i=2 HTTP/1.1\r\nHost: a\r\n\r\n' +
          'POST /echo?i=3 HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n' +
          'HEAD /hello HTTP/1.1\r\nHost: a\r\n\r\n' +
          'GET /echo?i=5 HTTP/1.1\r\nHost: a\r\n\r\n',
      );
      assert.equal(echoOf(await readAnswer(conn)).ctx.uri, 'http://a/echo?i=0');
      const second = echoOf(await readAnswer(conn));
      assert.equal(second.ctx.uri, 'http://a/echo?i=1');
      assert.equal(second.bodySha256, sha256(body));
      assert.equal(echoOf(await readAnswer(conn)).ctx.uri, 'http://a/echo?i=2');
      const fourth = echoOf(await readAnswer(conn));
      assert.equal(fourth.ctx.uri, 'http://a/echo?i=3');
      assert.equal(fourth.bodySha256, sha256('abc'));
      const head = await conn.readHead();
      assert.equal(head?.status, 200, 'HEAD answered without a body');
      assert.equal(echoOf(await readAnswer(conn)).ctx.uri, 'http://a/echo?i=5');
      assert.equal(conn.unread.length, 0);
      assert.equal(conn.closed, false, 'the connection stays open');
    } finally {
      conn.close();
    }
  });

  it('keeps pipelined answers whole and in order for a client that does not read (the socket fills up)', async () => {
    const conn = await RawConnection.open(rr.port);
    try {
      // ~5 MB of answers, more than loopback's buffers hold: the server's answer writes meet a full socket. Sizes
      // alternate between one-write answers (head and body copied together) and bigger ones (head and body by
      // writev), with small ones between.
      const sizes = Array.from({ length: 240 }, (_, i) => [15_000, 15_000, 40_000, 10][i % 4]!);
      conn.socket.pause();
      conn.send(sizes.map((size, i) => `GET /big?size=${size}&i=${i} HTTP/1.1\r\nHost: a\r\n\r\n`).join(''));
      await sleep(500); // let the server fill the socket while nothing is read
      conn.socket.resume();
      for (const [i, size] of sizes.entries()) {
        const answer = await readAnswer(conn);
        assert.ok(answer, `answer ${i}`);
        assert.equal(answer.head.status, 200);
        assert.equal(answer.body.length, size, `answer ${i}: its whole body`);
        assert.equal(answer.body.toString('latin1'), '0123456789abcdef'.repeat(Math.ceil(size / 16)).slice(0, size), `answer ${i}: its bytes`);
      }
      assert.equal(conn.unread.length, 0);
      assert.equal(conn.closed, false, 'the connection stays open');
    } finally {
      conn.close();
    }
  });

  it('sends 100 Continue when the body is wanted, then takes the body', async () => {
    const conn = await RawConnection.open(rr.port);
    try {
      const body = 'y'.repeat(5000);
      conn.send(`POST /echo HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nExpect: 100-continue\r\nContent-Length: ${body.length}\r\n\r\n`);
      const interim = await conn.readHead();
      assert.equal(interim?.statusLine, 'HTTP/1.1 100 Continue');
      conn.send(body);
      const echo = echoOf(await readAnswer(conn));
      assert.equal(echo.bodySha256, sha256(body));
    } finally {
      conn.close();
    }
  });

  it('answers 413 to an Expect: 100-continue body over max_request_size without asking for it, and closes', async () => {
    const conn = await RawConnection.open(rr.port);
    try {
      conn.send(`POST /echo HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nExpect: 100-continue\r\nContent-Length: ${2 * 1024 * 1024}\r\n\r\n`);
      const head = await conn.readHead();
      assert.equal(head?.status, 413, 'no 100 Continue first');
      assert.deepEqual(headerValues(head, 'connection'), ['close']);
      await conn.readToClose();
    } finally {
      conn.close();
    }
  });

  it('takes a body cut into many packets, with Content-Length and chunked', async () => {
    const body = crypto.randomBytes(4000).toString('hex'); // 8000 bytes
    for (const chunked of [false, true]) {
      const conn = await RawConnection.open(rr.port);
      try {
        const framing = chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${body.length}`;
        const wire = chunked
          ? body
              .match(/.{1,700}/g)!
              .map((part) => `${part.length.toString(16)}\r\n${part}\r\n`)
              .join('') + '0\r\n\r\n'
          : body;
        const all = `POST /echo HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\n${framing}\r\n\r\n${wire}`;
        // 40 packets, the head itself split too; each waits a moment so the server reads them one by one.
        const step = Math.ceil(all.length / 40);
        for (let at = 0; at < all.length; at += step) {
          conn.send(all.slice(at, at + step));
          await sleep(5);
        }
        const echo = echoOf(await readAnswer(conn));
        assert.equal(echo.bodySha256, sha256(body), chunked ? 'chunked' : 'Content-Length');
      } finally {
        conn.close();
      }
    }
  });

  it('closes an HTTP/1.0 connection after the answer unless it asked for keep-alive, and says keep-alive when kept', async () => {
    const plain = await RawConnection.open(rr.port);
    try {
      plain.send('GET /hello HTTP/1.0\r\n\r\n');
      const answer = await readAnswer(plain);
      assert.equal(answer?.head.status, 200);
      assert.deepEqual(headerValues(answer.head, 'connection'), ['close']);
      await plain.readToClose();
    } finally {
      plain.close();
    }
    const kept = await RawConnection.open(rr.port);
    try {
      kept.send('GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
      const first = await readAnswer(kept);
      assert.deepEqual(headerValues(first!.head, 'connection'), ['keep-alive']);
      assert.match(first!.body.toString(), /^hello from/);
      kept.send('GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
      const second = await readAnswer(kept);
      assert.equal(second?.head.status, 200, 'a second request on the kept connection');
    } finally {
      kept.close();
    }
  });

  it('sends a stream to an HTTP/1.0 client unchunked, ended by the close', async () => {
    const conn = await RawConnection.open(rr.port);
    try {
      conn.send('GET /stream?chunks=3 HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n');
      const head = await conn.readHead();
      assert.equal(head?.status, 200);
      assert.deepEqual(headerValues(head, 'transfer-encoding'), []);
      assert.equal((await conn.readToClose()).toString(), 'chunk 0\nchunk 1\nchunk 2\n');
    } finally {
      conn.close();
    }
  });

  it('closes after an HTTP/1.1 request with Connection: close and answers nothing pipelined behind it', async () => {
    const conn = await RawConnection.open(rr.port);
    try {
      conn.send('GET /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /hello HTTP/1.1\r\nHost: a\r\n\r\n');
      const answer = await readAnswer(conn);
      assert.deepEqual(headerValues(answer!.head, 'connection'), ['close']);
      assert.equal((await conn.readToClose()).length, 0);
    } finally {
      conn.close();
    }
  });
});

describe('a client that leaves in the middle of its body (1 worker)', () => {
  let rr: RrtsInstance;
  before(async () => {
    rr = await startRrts({ workers: 1 });
  });
  after(async () => {
    await rr?.stop();
  });

  it('never reaches the worker, and the server serves on', async () => {
    const count = async (): Promise<number> => Number((await request(`${rr.url}/count`)).body.toString());
    const before = await count();
    for (const framing of ['Content-Length: 1000', 'Transfer-Encoding: chunked']) {
      const conn = await RawConnection.open(rr.port);
      conn.send(`POST /echo HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\n${framing}\r\n\r\n${framing.startsWith('T') ? '64\r\n' : ''}partial`);
      await sleep(100);
      conn.close();
    }
    // a half-close mid-body as well: the client is gone for the server
    const halfClosed = await RawConnection.open(rr.port);
    halfClosed.send('POST /echo HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\npartial');
    await sleep(50);
    halfClosed.socket.end();
    await halfClosed.readToClose();
    assert.equal(await count(), before + 1, 'only /count reached the worker');
  });
});

describe('stop with keep-alive connections, idle and busy', () => {
  it('closes the idle one at once, lets the busy one finish with Connection: close, and exits 0', async () => {
    const rr = await startRrts({ workers: 1 });
    const idle = await RawConnection.open(rr.port);
    const busy = await RawConnection.open(rr.port);
    try {
      idle.send('GET /hello HTTP/1.1\r\nHost: a\r\n\r\n');
      assert.equal((await readAnswer(idle))?.head.status, 200);
      busy.send('GET /sleep?ms=1500 HTTP/1.1\r\nHost: a\r\n\r\n');
      await sleep(300); // the request is with the worker
      const stopped = rr.stop();
      const idleClosed = idle.readToClose(5000);
      const answer = await readAnswer(busy);
      assert.equal(idle.closed, true, 'the idle connection was closed before the busy answer came');
      await idleClosed;
      assert.equal(answer?.head.status, 200);
      assert.equal(answer?.body.toString(), 'slept 1500');
      assert.deepEqual(headerValues(answer.head, 'connection'), ['close']);
      await busy.readToClose(5000);
      assert.equal((await stopped).code, 0, rr.stderr.slice(-2000));
    } finally {
      idle.close();
      busy.close();
      await rr.stop();
    }
  });
});
