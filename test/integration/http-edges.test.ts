// The HTTP front at the edges, on real sockets with real php workers, checked byte for byte against Go net/http
// (what RoadRunner users get): a worker's Content-Length is never trusted (no response splitting, no hang, in exec
// and fork mode), its Transfer-Encoding and Connection headers are applied as Go applies a handler's, and requests
// Go refuses get Go's own answers (431, 400, 501), CONNECT reaches the worker, a header timeout closes silently.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import path from 'node:path';
import zlib from 'node:zlib';
import { MODES, ROOT, startRrts, type RrtsInstance } from './harness.js';
import { request } from './client.js';
import { exchangeToClose, headerValues, RawConnection, type RawHead } from './raw-http.js';

const FRAMING_WORKER = path.join(ROOT, 'test', 'fixtures', 'php', 'framing-worker.php');

/** Go's answers to requests it refuses before any handler runs (net/http server.go, (*conn).serve). */
const GO_HEADERS = '\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n';
const GO_431 = `HTTP/1.1 431 Request Header Fields Too Large${GO_HEADERS}431 Request Header Fields Too Large`;
const GO_400 = `HTTP/1.1 400 Bad Request${GO_HEADERS}400 Bad Request`;
const GO_400_NO_HOST = `HTTP/1.1 400 Bad Request: missing required Host header${GO_HEADERS}400 Bad Request: missing required Host header`;
const GO_501 = `HTTP/1.1 501 Not Implemented${GO_HEADERS}Unsupported transfer encoding`;

interface Answer {
  headers?: Record<string, string[]>;
  body?: string;
  chunks?: string[];
  status?: number;
}

/** The framing worker's path for an answer made of exactly these headers and body (or stream of chunks). */
function answerPath(answer: Answer): string {
  const query = new URLSearchParams();
  if (answer.headers) query.set('headers', JSON.stringify(answer.headers));
  if (answer.body !== undefined) query.set('body', answer.body);
  if (answer.chunks) query.set('chunks', JSON.stringify(answer.chunks));
  if (answer.status !== undefined) query.set('status', String(answer.status));
  return `/answer?${query.toString()}`;
}

function get(target: string, extraHeaders = ''): string {
  return `GET ${target} HTTP/1.1\r\nHost: x\r\n${extraHeaders}\r\n`;
}

function pidOf(head: RawHead): number {
  return Number(headerValues(head, 'x-pid')[0]);
}

/** Waits for the log record with this message fragment about this request, and returns it. */
async function logLine(rr: RrtsInstance, fragment: string, target: string): Promise<Record<string, unknown>> {
  const find = () => rr.logs().find((l) => String(l.msg ?? '').includes(fragment) && l.request === `GET ${target}`);
  await rr.waitFor(() => find() !== undefined, `a log line with "${fragment}" for GET ${target}`);
  return find()!;
}

/**
 * After an answer whose body was cut at its Content-Length, the connection must carry nothing the client would read
 * as the start of the next answer: either the server closed it, or the next request gets its own correct answer.
 */
async function assertNoForgedAnswer(conn: RawConnection): Promise<void> {
  conn.send(get(answerPath({ body: 'next' })));
  const head = await conn.readHead();
  if (head === null) {
    assert.ok(conn.closed, 'no answer and still open');
    assert.equal(conn.unread.toString('latin1'), '', 'bytes after the declared body');
    return;
  }
  assert.equal(head.statusLine, 'HTTP/1.1 200 OK');
  assert.equal((await conn.readBytes(4)).toString(), 'next');
}

/** One HTTP/2 request over a new h2c session: status, head, body, trailers, and the stream's error if it broke. */
function h2get(
  url: string,
  target: string,
): Promise<{ status: number; headers: http2.IncomingHttpHeaders; trailers: http2.IncomingHttpHeaders; body: string; error: string | null }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url);
    session.on('error', () => {});
    const stream = session.request({ ':path': target });
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    let body = '';
    stream.on('response', (h) => (headers = h));
    stream.on('trailers', (t) => (trailers = t));
    stream.on('data', (c: Buffer) => (body += c.toString()));
    const timer = setTimeout(() => reject(new Error(`no end of ${target} over HTTP/2`)), 10_000);
    const done = (error: string | null) => {
      clearTimeout(timer);
      session.close();
      resolve({ status: Number(headers[':status']), headers, trailers, body, error });
    };
    stream.on('end', () => done(null));
    stream.on('error', (err: Error) => done(err.message));
  });
}

for (const mode of MODES) {
  describe(`a worker's Content-Length is not trusted (${mode} mode)`, () => {
    let rr: RrtsInstance;
    before(async () => {
      rr = await startRrts({ mode, workers: 1, config: { server: { command: `php ${FRAMING_WORKER}` } } });
    });
    after(async () => {
      await rr?.stop();
    });

    it('sends exactly the declared bytes of a longer whole body; nothing forged follows on the keep-alive connection', async () => {
      const target = answerPath({ headers: { 'Content-Length': ['3'] }, body: '0123456789' });
      const conn = await RawConnection.open(rr.port);
      try {
        conn.send(get(target));
        const head = await conn.readHead();
        assert.ok(head);
        assert.equal(head.status, 200);
        assert.deepEqual(headerValues(head, 'content-length'), ['3']);
        assert.equal((await conn.readBytes(3)).toString(), '012');
        await assertNoForgedAnswer(conn);
        const line = await logLine(rr, 'more body than its Content-Length of 3', target);
        assert.equal(line.pid, pidOf(head));
        assert.equal(line.level, 'warn');
      } finally {
        conn.close();
      }
    });

    it('sends exactly the declared bytes of a longer streamed body, and the worker serves on', async () => {
      const target = answerPath({ headers: { 'Content-Length': ['5'] }, chunks: ['abc', 'defgh', 'ij'] });
      const conn = await RawConnection.open(rr.port);
      try {
        conn.send(get(target));
        const head = await conn.readHead();
        assert.ok(head);
        assert.deepEqual(headerValues(head, 'content-length'), ['5']);
        assert.equal((await conn.readBytes(5)).toString(), 'abcde');
        await assertNoForgedAnswer(conn);
        const line = await logLine(rr, 'more body than its Content-Length of 5', target);
        assert.equal(line.pid, pidOf(head));
      } finally {
        conn.close();
      }
      const after = await request(`${rr.url}${answerPath({ body: 'still here' })}`);
      assert.equal(after.body.toString(), 'still here');
    });

    it('closes the connection after a shorter whole body: truncated, no hang, the next answer is not swallowed', async () => {
      const target = answerPath({ headers: { 'Content-Length': ['10'] }, body: 'abc' });
      const conn = await RawConnection.open(rr.port);
      let head: RawHead | null;
      try {
        conn.send(get(target));
        head = await conn.readHead();
        assert.ok(head);
        assert.deepEqual(headerValues(head, 'content-length'), ['10']);
        conn.send(get(answerPath({ body: 'next' })));
        assert.equal((await conn.readToClose()).toString(), 'abc');
      } finally {
        conn.close();
      }
      const line = await logLine(rr, 'body bytes for a Content-Length of 10', target);
      assert.equal(line.pid, pidOf(head));
      assert.equal(line.level, 'error');
      const fresh = await request(`${rr.url}${answerPath({ body: 'fresh' })}`);
      assert.equal(fresh.body.toString(), 'fresh');
    });

    it('closes the connection after a shorter streamed body: truncated, no hang', async () => {
      const target = answerPath({ headers: { 'Content-Length': ['10'] }, chunks: ['ab', 'cd'] });
      const conn = await RawConnection.open(rr.port);
      let head: RawHead | null;
      try {
        conn.send(get(target));
        head = await conn.readHead();
        assert.ok(head);
        assert.equal((await conn.readToClose()).toString(), 'abcd');
      } finally {
        conn.close();
      }
      const line = await logLine(rr, 'body bytes for a Content-Length of 10', target);
      assert.equal(line.pid, pidOf(head));
      const fresh = await request(`${rr.url}${answerPath({ body: 'fresh' })}`);
      assert.equal(fresh.body.toString(), 'fresh');
    });
  });
}

describe("a worker's framing headers, applied as Go applies a handler's", () => {
  let rr: RrtsInstance;
  before(async () => {
    rr = await startRrts({ workers: 1, config: { server: { command: `php ${FRAMING_WORKER}` } } });
  });
  after(async () => {
    await rr?.stop();
  });

  /** One request on a fresh keep-alive connection: the head, and the connection to read the rest from. */
  async function ask(answer: Answer): Promise<{ head: RawHead; conn: RawConnection }> {
    const conn = await RawConnection.open(rr.port);
    conn.send(get(answerPath(answer)));
    const head = await conn.readHead();
    assert.ok(head, 'an answer');
    return { head, conn };
  }

  it('drops an invalid Content-Length (logged) and frames the body itself; the connection stays usable', async () => {
    for (const bad of ['-1', 'abc', ' 5', '99999999999999999999']) {
      const { head, conn } = await ask({ headers: { 'Content-Length': [bad] }, body: 'hello' });
      try {
        assert.deepEqual(headerValues(head, 'content-length'), ['5'], `for ${JSON.stringify(bad)}`);
        assert.equal((await conn.readBytes(5)).toString(), 'hello');
        await assertNoForgedAnswer(conn);
        assert.equal(conn.closed, false);
      } finally {
        conn.close();
      }
    }
    await rr.waitFor(() => rr.logs().some((l) => String(l.msg).includes('sent an invalid Content-Length "-1"')), 'the invalid Content-Length warning');
  });

  it('says Connection: close on a cut answer even when the worker said keep-alive', async () => {
    const { head, conn } = await ask({ headers: { Connection: ['keep-alive'], 'Content-Length': ['3'] }, body: '0123456789' });
    try {
      assert.deepEqual(headerValues(head, 'connection'), ['close']);
      assert.equal((await conn.readToClose()).toString(), '012');
    } finally {
      conn.close();
    }
  });

  it('holds the body to the first of conflicting Content-Length values and sends that one only', async () => {
    const { head, conn } = await ask({ headers: { 'Content-Length': ['3', '10'] }, body: '0123456789' });
    try {
      assert.deepEqual(headerValues(head, 'content-length'), ['3']);
      assert.equal((await conn.readBytes(3)).toString(), '012');
      await assertNoForgedAnswer(conn);
    } finally {
      conn.close();
    }
  });

  it('Transfer-Encoding chunked with a Content-Length: the Content-Length is dropped, the body still held to it', async () => {
    const { head, conn } = await ask({ headers: { 'Transfer-Encoding': ['chunked'], 'Content-Length': ['3'] }, body: '0123456789' });
    try {
      assert.deepEqual(headerValues(head, 'transfer-encoding'), ['chunked']);
      assert.deepEqual(headerValues(head, 'content-length'), []);
      assert.equal((await conn.readChunked())?.toString(), '012');
      await assertNoForgedAnswer(conn);
    } finally {
      conn.close();
    }
  });

  it('Transfer-Encoding identity with a Content-Length: the Transfer-Encoding is dropped', async () => {
    const { head, conn } = await ask({ headers: { 'Transfer-Encoding': ['identity'], 'Content-Length': ['5'] }, body: 'hello' });
    try {
      assert.deepEqual(headerValues(head, 'transfer-encoding'), []);
      assert.deepEqual(headerValues(head, 'content-length'), ['5']);
      assert.equal((await conn.readBytes(5)).toString(), 'hello');
      await assertNoForgedAnswer(conn);
    } finally {
      conn.close();
    }
  });

  it('Transfer-Encoding identity alone: no chunks, the body ends with the connection', async () => {
    const { head, conn } = await ask({ headers: { 'Transfer-Encoding': ['identity'] }, body: 'hello' });
    try {
      assert.deepEqual(headerValues(head, 'transfer-encoding'), ['identity']);
      assert.deepEqual(headerValues(head, 'connection'), ['close']);
      assert.equal((await conn.readToClose()).toString(), 'hello');
    } finally {
      conn.close();
    }
  });

  it('another Transfer-Encoding gets chunked added after it, and the body is chunked', async () => {
    const { head, conn } = await ask({ headers: { 'Transfer-Encoding': ['gzip'] }, body: 'hello' });
    try {
      assert.deepEqual(headerValues(head, 'transfer-encoding'), ['gzip, chunked']);
      assert.equal((await conn.readChunked())?.toString(), 'hello');
    } finally {
      conn.close();
    }
  });

  it('takes framing names in any case, and other names of their lengths as plain headers', async () => {
    const { head, conn } = await ask({
      headers: { 'content-LENGTH': ['3'], 'X-Token': ['t'], 'Keep-Alive': ['timeout=5'], 'X-Abcdefghijklmno': ['17'] },
      body: '0123456789',
    });
    try {
      assert.deepEqual(headerValues(head, 'content-length'), ['3']);
      assert.deepEqual(headerValues(head, 'x-token'), ['t']);
      assert.deepEqual(headerValues(head, 'keep-alive'), ['timeout=5']);
      assert.deepEqual(headerValues(head, 'x-abcdefghijklmno'), ['17']);
      assert.equal((await conn.readBytes(3)).toString(), '012');
      await assertNoForgedAnswer(conn);
    } finally {
      conn.close();
    }
  });

  it('Connection: close from the worker closes the connection after the answer', async () => {
    const { head, conn } = await ask({ headers: { Connection: ['close'] }, body: 'bye' });
    try {
      assert.deepEqual(headerValues(head, 'connection'), ['close']);
      assert.equal((await conn.readToClose()).toString(), 'bye');
    } finally {
      conn.close();
    }
  });
});

describe('a cut answer through the gzip middleware', () => {
  let rr: RrtsInstance;
  before(async () => {
    rr = await startRrts({ workers: 1, config: { server: { command: `php ${FRAMING_WORKER}` }, http: { middleware: ['gzip'] } } });
  });
  after(async () => {
    await rr?.stop();
  });

  it('compresses the declared bytes completely before the connection closes', async () => {
    const target = answerPath({ headers: { 'Content-Length': ['5'] }, chunks: ['abc', 'defgh', 'ij'] });
    const r = await request(`${rr.url}${target}`, { headers: { 'Accept-Encoding': 'gzip' } });
    assert.equal(r.headers['content-encoding'], 'gzip');
    assert.equal(zlib.gunzipSync(r.body).toString(), 'abcde');
  });
});

describe('HTTP/2: a worker body is held to its content-length too', () => {
  let rr: RrtsInstance;
  before(async () => {
    rr = await startRrts({ workers: 1, config: { server: { command: `php ${FRAMING_WORKER}` }, http: { http2: { h2c: true } } } });
  });
  after(async () => {
    await rr?.stop();
  });

  it('sends exactly the declared bytes of a longer body', async () => {
    const r = await h2get(rr.url, answerPath({ headers: { 'Content-Length': ['3'] }, body: '0123456789' }));
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-length'], '3');
    assert.equal(r.body, '012');
  });

  it('takes Connection: close from the worker as a GOAWAY, as Go does', async () => {
    const session = http2.connect(rr.url);
    try {
      session.on('error', () => {});
      const goaway = new Promise<boolean>((resolve) => {
        session.once('goaway', () => resolve(true));
        setTimeout(() => resolve(false), 10_000).unref();
      });
      const stream = session.request({ ':path': answerPath({ headers: { Connection: ['close'] }, body: 'bye' }) });
      let body = '';
      stream.on('data', (c: Buffer) => (body += c.toString()));
      await new Promise<void>((resolve, reject) => {
        stream.on('end', resolve);
        stream.on('error', reject);
      });
      assert.equal(body, 'bye');
      assert.equal(await goaway, true, 'no GOAWAY');
    } finally {
      session.destroy();
    }
  });

  it('resets the stream after a shorter body instead of ending it as complete', async () => {
    const r = await h2get(rr.url, answerPath({ headers: { 'Content-Length': ['10'] }, body: 'abc' }));
    assert.notEqual(r.error, null, `the stream ended normally with ${JSON.stringify(r.body)}`);
  });
});

describe("requests at Go's edges", () => {
  let rr: RrtsInstance;
  before(async () => {
    rr = await startRrts({ workers: 1, config: { server: { command: `php ${FRAMING_WORKER}` }, http: { read_header_timeout: '500ms' } } });
  });
  after(async () => {
    await rr?.stop();
  });

  it('takes a header section of 1 MB (a big cookie RoadRunner takes)', async () => {
    const cookie = `big=${'c'.repeat(1_000_000)}`;
    const r = await request(`${rr.url}/`, { headers: { Cookie: cookie } });
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body.toString()).cookieLength, cookie.length);
  });

  it("answers a header section over Go's limit with Go's 431", async () => {
    const text = await exchangeToClose(rr.port, `GET / HTTP/1.1\r\nHost: x\r\nCookie: big=${'c'.repeat((1 << 20) + 65536)}\r\n\r\n`);
    assert.equal(text, GO_431);
  });

  it("answers two Host headers with Go's 400", async () => {
    assert.equal(await exchangeToClose(rr.port, 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'), GO_400);
  });

  it("answers an HTTP/1.1 request without Host with Go's 400", async () => {
    assert.equal(await exchangeToClose(rr.port, 'GET / HTTP/1.1\r\n\r\n'), GO_400_NO_HOST);
  });

  it("answers a Transfer-Encoding other than exactly chunked with Go's 501", async () => {
    for (const te of ['gzip, chunked', 'identity', 'chunked\r\nTransfer-Encoding: chunked']) {
      const text = await exchangeToClose(rr.port, `POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ${te}\r\n\r\n3\r\nabc\r\n0\r\n\r\n`);
      assert.equal(text, GO_501, `for Transfer-Encoding: ${te}`);
    }
  });

  it('hands CONNECT to the worker, answers it and closes the connection', async () => {
    const text = await exchangeToClose(rr.port, 'CONNECT host:22 HTTP/1.1\r\nHost: host:22\r\n\r\n');
    assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
    const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4));
    assert.equal(body.method, 'CONNECT');
    assert.equal(body.uri, 'http://host:22');
  });

  it('closes a connection whose headers do not come within read_header_timeout, without an answer', async () => {
    const conn = await RawConnection.open(rr.port);
    try {
      conn.send('GET / HTTP/1.1\r\nHost: x\r\n');
      assert.equal((await conn.readToClose()).toString(), '');
    } finally {
      conn.close();
    }
  });
});

describe('trailers: headers the worker names in Trailer come after the body, as RoadRunner sends them', () => {
  let rr: RrtsInstance;
  before(async () => {
    rr = await startRrts({ workers: 1, config: { server: { command: `php ${FRAMING_WORKER}` }, http: { http2: { h2c: true } } } });
  });
  after(async () => {
    await rr?.stop();
  });
  const headers = { Trailer: ['X-Checksum, X-Absent'], 'X-Checksum': ['abc'], 'X-Kept': ['in the head'] };

  const shapes: Array<[string, Answer, string]> = [
    ['a whole answer', { headers, body: 'hello' }, '5\r\nhello\r\n0\r\nX-Checksum: abc\r\n\r\n'],
    ['a streamed answer', { headers, chunks: ['hel', 'lo'] }, '3\r\nhel\r\n2\r\nlo\r\n0\r\nX-Checksum: abc\r\n\r\n'],
  ];
  for (const [shape, answer, wire] of shapes) {
    it(`HTTP/1.1, ${shape}: chunked, the trailer after the last chunk, nothing announced in the head`, async () => {
      const conn = await RawConnection.open(rr.port);
      try {
        conn.send(get(answerPath(answer)));
        const head = await conn.readHead();
        assert.ok(head, 'an answer');
        assert.equal(head.status, 200);
        assert.deepEqual(headerValues(head, 'transfer-encoding'), ['chunked']);
        assert.deepEqual(headerValues(head, 'content-length'), []);
        assert.deepEqual(headerValues(head, 'trailer'), [], 'RoadRunner deletes the Trailer header');
        assert.deepEqual(headerValues(head, 'x-checksum'), [], 'the trailer is not in the head');
        assert.deepEqual(headerValues(head, 'x-kept'), ['in the head']);
        // the chunked body up to the blank line that ends the trailer section (or the body, without trailers)
        let body = '';
        for (let i = 0; i < 500 && !body.endsWith('\r\n\r\n') && !conn.closed; i++) body += (await conn.readBytes(1)).toString('latin1');
        assert.equal(body, wire);
      } finally {
        conn.close();
      }
    });
  }

  it('HTTP/2: the trailer arrives as trailing headers', async () => {
    const r = await h2get(rr.url, answerPath({ headers, body: 'hello' }));
    assert.equal(r.error, null);
    assert.equal(r.body, 'hello');
    assert.equal(r.headers['x-checksum'], undefined);
    assert.equal(r.trailers['x-checksum'], 'abc');
  });
});
