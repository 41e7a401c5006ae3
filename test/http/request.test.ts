// End-to-end tests of buildRequestPayload: a real node:http server on loopback builds the payload for real requests
// and answers with {context, body (base64)}, so the bytes a PHP worker would get can be compared exactly.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { watch } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RequestAbortedError, RequestError, RequestTooLargeError } from '../../src/errors.js';
import { buildRequestPayload, requestPayload, type RequestPayload, type RequestPayloadOptions } from '../../src/http/request.js';
import { sleep } from '../support/sleep.js';

interface Answer {
  status: number;
  text: string;
  context: Record<string, unknown>;
  contextText: string;
  body: Buffer;
}

interface TestServer {
  port: number;
  payloads: RequestPayload[];
  errors: unknown[];
  close(): Promise<void>;
}

function handler(options: RequestPayloadOptions, payloads: RequestPayload[], errors: unknown[]): http.RequestListener {
  return (req, res) => {
    buildRequestPayload(req, options).then(
      (payload) => {
        payloads.push(payload);
        res.setHeader('Connection', 'close');
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify({ context: payload.context.toString('utf8'), body: payload.body.toString('base64') }));
      },
      (error: unknown) => {
        errors.push(error);
        // the statuses the HTTP plugin's fail() answers with
        res.statusCode = error instanceof RequestTooLargeError ? 413 : error instanceof RequestAbortedError ? 400 : error instanceof RequestError ? 500 : 599;
        res.setHeader('Connection', 'close');
        res.end(error instanceof Error ? error.message : String(error));
      },
    );
  };
}

async function startServer(options: Partial<RequestPayloadOptions> & { uploadsDir: string; host?: string }): Promise<TestServer> {
  const opts: RequestPayloadOptions = {
    rawBody: options.rawBody ?? false,
    maxRequestSize: options.maxRequestSize ?? 64 * 1024 * 1024,
    uploads: options.uploads ?? { dir: options.uploadsDir, forbid: ['.php'], allow: [] },
    tls: options.tls ?? false,
  };
  const payloads: RequestPayload[] = [];
  const errors: unknown[] = [];
  const server = http.createServer(handler(opts, payloads, errors));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, options.host ?? '127.0.0.1', resolve);
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    payloads,
    errors,
    async close() {
      await Promise.all(payloads.map((p) => p.cleanup()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function parseAnswer(status: number, raw: Buffer): Answer {
  const text = raw.toString('utf8');
  if (status !== 200 || text === '') return { status, text, context: {}, contextText: '', body: Buffer.alloc(0) };
  const json = JSON.parse(text) as { context: string; body: string };
  return {
    status,
    text,
    contextText: json.context,
    context: JSON.parse(json.context) as Record<string, unknown>,
    body: Buffer.from(json.body, 'base64'),
  };
}

/** Sends exact request bytes over TCP (so no client adds headers) and parses the server's answer. */
function rawRequest(port: number, request: Buffer | string, host = '127.0.0.1'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, host, () => socket.write(request));
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('end', () => {
      const all = Buffer.concat(chunks);
      const split = all.indexOf('\r\n\r\n');
      const head = all.subarray(0, split).toString('latin1');
      const status = Number(head.split(' ')[1]);
      let body: Buffer = all.subarray(split + 4);
      if (/\r\ntransfer-encoding: chunked/i.test(head)) body = dechunk(body);
      resolve(parseAnswer(status, body));
    });
  });
}

function dechunk(data: Buffer): Buffer {
  const out: Buffer[] = [];
  let pos = 0;
  for (;;) {
    const eol = data.indexOf('\r\n', pos);
    const size = parseInt(data.subarray(pos, eol).toString('latin1'), 16);
    if (!size) break;
    out.push(data.subarray(eol + 2, eol + 2 + size));
    pos = eol + 2 + size + 2;
  }
  return Buffer.concat(out);
}

/** A request through node:http's client; `body` may be written in several chunks (chunked transfer). */
function request(
  port: number,
  options: { method?: string; path?: string; headers?: http.OutgoingHttpHeaders; body?: Buffer | string | Buffer[] },
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: options.method ?? 'GET', path: options.path ?? '/', headers: options.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve(parseAnswer(res.statusCode ?? 0, Buffer.concat(chunks))));
      res.on('error', reject);
    });
    req.on('error', (error: NodeJS.ErrnoException) => {
      // The server may answer (413) and close before it read the whole upload.
      if (error.code === 'EPIPE' || error.code === 'ECONNRESET') return;
      reject(error);
    });
    const body = options.body;
    if (Array.isArray(body)) {
      for (const part of body) req.write(part);
      req.end();
    } else {
      req.end(body);
    }
  });
}

function form(port: number, body: string, method = 'POST'): Promise<Answer> {
  return request(port, {
    method,
    path: '/form',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body,
  });
}

interface Part {
  name: string;
  filename?: string;
  contentType?: string;
  data: Buffer | string;
}

const BOUNDARY = '----rrtsBoundary7MA4YWxkTrZu0gW';

function multipartBody(parts: Part[], boundary = BOUNDARY): Buffer {
  const chunks: Buffer[] = [];
  for (const part of parts) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${part.name}"`;
    if (part.filename !== undefined) head += `; filename="${part.filename}"`;
    head += '\r\n';
    if (part.contentType !== undefined) head += `Content-Type: ${part.contentType}\r\n`;
    chunks.push(Buffer.from(head + '\r\n'), Buffer.from(part.data), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

function splitChunks(data: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) out.push(data.subarray(i, i + size));
  return out;
}

function sendMultipart(port: number, parts: Part[], chunked = false): Promise<Answer> {
  const body = multipartBody(parts);
  return request(port, {
    method: 'POST',
    path: '/upload',
    headers: { 'Content-Type': `multipart/form-data; boundary=${BOUNDARY}` },
    body: chunked ? splitChunks(body, 64 * 1024) : body,
  });
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

const V41_CONTEXT =
  '{"remoteAddr":"127.0.0.1","protocol":"HTTP/1.1","method":"GET","uri":"http://localhost:8080/hello?x=1","headers":{"Accept":["*/*"],"User-Agent":["curl/8.5.0"]},"cookies":{},"rawQuery":"x=1","parsed":false,"uploads":null,"attributes":{}}';
const V42_CONTEXT =
  '{"remoteAddr":"10.0.0.5","protocol":"HTTP/1.1","method":"POST","uri":"http://example.com/form","headers":{"Content-Type":["application/x-www-form-urlencoded"],"Cookie":["sid=abc"]},"cookies":{"sid":"abc"},"rawQuery":"","parsed":true,"uploads":null,"attributes":{}}';

async function vectorHex(name: string): Promise<Buffer> {
  const url = new URL('../../../test/fixtures/protocol-vectors.json', import.meta.url);
  const vectors = JSON.parse(await readFile(url, 'utf8')) as Record<string, { hex: string }>;
  return Buffer.from(vectors[name]!.hex, 'hex');
}

describe('request context', () => {
  let dir: string;
  let server: TestServer;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rrts-request-'));
    server = await startServer({ uploadsDir: dir });
  });
  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('matches vector V4.1 byte for byte', async () => {
    const frame = await vectorHex('V4.1');
    assert.ok(frame.includes(Buffer.from(V41_CONTEXT)), 'the expected text is the one in protocol-vectors.json');
    const answer = await rawRequest(server.port, 'GET /hello?x=1 HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n');
    assert.equal(answer.status, 200);
    assert.equal(answer.contextText, V41_CONTEXT);
    assert.equal(answer.body.length, 0);
  });

  it('matches vector V4.2 (chunked url-encoded POST with a cookie)', async () => {
    const frame = await vectorHex('V4.2');
    assert.ok(frame.includes(Buffer.from(V42_CONTEXT)));
    const body = 'name=John&tags[]=a&tags[]=b';
    const answer = await rawRequest(
      server.port,
      'POST /form HTTP/1.1\r\nHost: example.com\r\nContent-Type: application/x-www-form-urlencoded\r\nCookie: sid=abc\r\n' +
        `Transfer-Encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`,
    );
    assert.equal(answer.contextText.replace('"remoteAddr":"127.0.0.1"', '"remoteAddr":"10.0.0.5"'), V42_CONTEXT);
    assert.equal(answer.body.toString(), '{"name":"John","tags":["a","b"]}');
    assert.ok(frame.includes(answer.body), 'the body is the one in the vector');
  });

  it('keeps repeated headers as separate elements, canonicalises names, drops Host', async () => {
    const answer = await rawRequest(
      server.port,
      'GET /h HTTP/1.1\r\nhost: example.org\r\nX-Multi: a\r\nx-multi: b, c\r\nx-forwarded-for: 1.2.3.4\r\n' +
        'content-TYPE: text/plain\r\nx_under_score: 1\r\nwww-authenticate: z\r\nCookie: a=1\r\ncookie: b=2\r\n\r\n',
    );
    const headers = answer.context['headers'] as Record<string, string[]>;
    assert.deepEqual(headers, {
      'Content-Type': ['text/plain'],
      Cookie: ['a=1', 'b=2'],
      'Www-Authenticate': ['z'],
      'X-Forwarded-For': ['1.2.3.4'],
      'X-Multi': ['a', 'b, c'],
      X_under_score: ['1'],
    });
    assert.deepEqual(Object.keys(headers), [...Object.keys(headers)].sort(), 'names are sorted like Go does');
    assert.equal(answer.context['uri'], 'http://example.org/h');
    assert.equal(answer.context['rawQuery'], '');
    assert.ok(!answer.contextText.includes('"Host"'));
  });

  it('passes UTF-8 header values through as text', async () => {
    const answer = await rawRequest(
      server.port,
      Buffer.concat([Buffer.from('GET / HTTP/1.1\r\nHost: h\r\nX-Name: '), Buffer.from('Grüße €', 'utf8'), Buffer.from('\r\n\r\n')]),
    );
    assert.deepEqual((answer.context['headers'] as Record<string, string[]>)['X-Name'], ['Grüße €']);
  });

  it('parses cookies: unescapes + and %xx, drops bad escapes, strips quotes, last wins', async () => {
    const answer = await rawRequest(
      server.port,
      'GET / HTTP/1.1\r\nHost: h\r\nCookie: a=1; b=hello+world; c=x%20y; bad=%zz; q="quoted"; e=; a=2\r\n' + 'Cookie: z=last; invalid name=1; semi="x\r\n\r\n',
    );
    assert.equal(JSON.stringify(answer.context['cookies']), '{"a":"2","b":"hello world","c":"x y","e":"","q":"quoted","z":"last"}');
  });

  it('serves HTTP/1.0, absolute request-targets, TLS schemes and strips nothing from the query', async () => {
    const old = await rawRequest(server.port, 'GET /p?a=%20b&c HTTP/1.0\r\nHost: h:81\r\n\r\n');
    assert.equal(old.context['protocol'], 'HTTP/1.0');
    assert.equal(old.context['uri'], 'http://h:81/p?a=%20b&c');
    assert.equal(old.context['rawQuery'], 'a=%20b&c');
    const proxy = await rawRequest(server.port, 'GET http://other.example:8000/x?y=1 HTTP/1.1\r\nHost: h\r\n\r\n');
    assert.equal(proxy.context['uri'], 'http://other.example:8000/x?y=1');
    assert.equal(proxy.context['rawQuery'], 'y=1');
    assert.equal(proxy.context['remoteAddr'], '127.0.0.1');

    const tlsDir = await mkdtemp(join(tmpdir(), 'rrts-request-'));
    const tlsServer = await startServer({ uploadsDir: tlsDir, tls: true });
    try {
      const answer = await rawRequest(tlsServer.port, 'GET /s HTTP/1.1\r\nHost: secure.example\r\n\r\n');
      assert.equal(answer.context['uri'], 'https://secure.example/s');
    } finally {
      await tlsServer.close();
      await rm(tlsDir, { recursive: true, force: true });
    }
  });

  it('reports the client IP without port; IPv4-mapped addresses as IPv4, IPv6 without brackets', async (t) => {
    const ipDir = await mkdtemp(join(tmpdir(), 'rrts-request-'));
    try {
      let dual: TestServer;
      try {
        dual = await startServer({ uploadsDir: ipDir, host: '::' });
      } catch {
        t.skip('no IPv6 on this host');
        return;
      }
      try {
        const mapped = await rawRequest(dual.port, 'GET / HTTP/1.1\r\nHost: h\r\n\r\n');
        assert.equal(mapped.context['remoteAddr'], '127.0.0.1');
        const v6 = await rawRequest(dual.port, 'GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n', '::1');
        assert.equal(v6.context['remoteAddr'], '::1');
        assert.equal(v6.context['uri'], 'http://[::1]:80/');
      } finally {
        await dual.close();
      }
    } finally {
      await rm(ipDir, { recursive: true, force: true });
    }
  });

  it('sends HEAD and OPTIONS without a body, parsed false', async () => {
    const head = await request(server.port, { method: 'HEAD', path: '/x' });
    assert.equal(head.status, 200);
    const headPayload = server.payloads.at(-1)!;
    const headContext = JSON.parse(headPayload.context.toString()) as Record<string, unknown>;
    assert.equal(headContext['method'], 'HEAD');
    assert.equal(headContext['parsed'], false);
    assert.equal(headContext['uploads'], null);
    assert.equal(headPayload.body.length, 0);

    const options = await request(server.port, {
      method: 'OPTIONS',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': '3' },
      body: 'a=1',
    });
    assert.equal(options.status, 200, options.text);
    assert.equal(options.context['parsed'], false);
    assert.equal(options.body.length, 0);
  });

  it('sends a raw JSON body byte for byte, parsed false', async () => {
    const json = Buffer.concat([Buffer.from('{"k":"välue","n":[1,2,3]}'), Buffer.from([0xff, 0x00, 0xfe])]);
    const answer = await request(server.port, {
      method: 'POST',
      path: '/api',
      headers: { 'Content-Type': 'application/json' },
      body: [json.subarray(0, 5), json.subarray(5)],
    });
    assert.equal(answer.context['parsed'], false);
    assert.equal(answer.context['uploads'], null);
    assert.deepEqual(answer.body, json);
  });

  it('sends an empty raw body for a GET without one', async () => {
    const answer = await request(server.port, { path: '/' });
    assert.equal(answer.body.length, 0);
    assert.equal(answer.context['parsed'], false);
  });

  it('gives the payload at once when there is no body to read, a promise when there is', async () => {
    // the HTTP plugin's hot path: a GET sends its job without waiting a microtask turn for its payload
    const kinds: string[] = [];
    const options: RequestPayloadOptions = { rawBody: false, maxRequestSize: 1024, uploads: { dir: '', forbid: [], allow: [] }, tls: false };
    const atOnce = http.createServer((req, res) => {
      const built = requestPayload(req, options);
      kinds.push(built instanceof Promise ? 'promise' : 'at once');
      void Promise.resolve(built).then((payload) =>
        res.end(JSON.stringify({ context: payload.context.toString('utf8'), body: payload.body.toString('base64') })),
      );
    });
    await new Promise<void>((resolve) => atOnce.listen(0, '127.0.0.1', resolve));
    const port = (atOnce.address() as net.AddressInfo).port;
    try {
      const send = (head: string, body = ''): Promise<Answer> => rawRequest(port, `${head}Host: h\r\nConnection: close\r\n\r\n${body}`);
      await send('GET / HTTP/1.1\r\n');
      await send('HEAD / HTTP/1.1\r\n');
      await send('GET / HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n');
      assert.equal((await send('POST / HTTP/1.1\r\nContent-Length: 3\r\n', 'abc')).body.toString(), 'abc');
      assert.deepEqual(kinds, ['at once', 'at once', 'at once', 'promise']);
    } finally {
      await new Promise<void>((resolve) => atOnce.close(() => resolve()));
    }
  });

  it('reads a body only when Content-Length or Transfer-Encoding announces one', async () => {
    const send = (head: string, body = ''): Promise<Answer> =>
      rawRequest(server.port, `${head}Host: h\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n${body}`);
    assert.equal((await send('GET / HTTP/1.1\r\nContent-Length: 3\r\n', 'abc')).body.toString(), 'abc');
    assert.equal((await send('POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n', '2\r\nxy\r\n0\r\n\r\n')).body.toString(), 'xy');
    assert.equal((await send('POST / HTTP/1.1\r\nContent-Length: 0\r\n')).body.length, 0);
    assert.equal((await send('DELETE / HTTP/1.1\r\n')).body.length, 0);
    assert.equal((await send('GET / HTTP/1.0\r\n')).body.length, 0);
  });
});

describe('url-encoded form tree', () => {
  let dir: string;
  let server: TestServer;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rrts-request-'));
    server = await startServer({ uploadsDir: dir });
  });
  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  const table: Array<[string, unknown]> = [
    ['name=John&age=30', { name: 'John', age: '30' }],
    ['a=1&a=2', { a: '2' }],
    ['b[]=1&b[]=2', { b: ['1', '2'] }],
    ['user[name]=John&user[tags][]=x&user[tags][]=y', { user: { name: 'John', tags: ['x', 'y'] } }],
    ['m[0][id]=7&m[1][id]=8', { m: { '0': { id: '7' }, '1': { id: '8' } } }],
    ['sp ace=1&k[ x ]=2', { k: { x: '2' }, space: '1' }],
    ['x=', { x: '' }],
    ['q=a+b%2Bc%20d&%C3%A9t%C3%A9=%E2%82%AC', { q: 'a b+c d', été: '€' }],
    ['a[b][c][d]=deep&a[b][e]=1', { a: { b: { c: { d: 'deep' }, e: '1' } } }],
    ['&&k=v&&', { k: 'v' }],
    ['opt=&opt[0][id]=9', { opt: { '0': { id: '9' } } }],
    ['opt[0][id]=9&opt=', { opt: { '0': { id: '9' } } }],
  ];
  for (const [input, expected] of table) {
    it(`${input} -> ${JSON.stringify(expected)}`, async () => {
      const answer = await form(server.port, input);
      assert.equal(answer.status, 200, answer.text);
      assert.equal(answer.context['parsed'], true);
      assert.equal(answer.context['uploads'], null);
      assert.deepEqual(JSON.parse(answer.body.toString()), expected);
    });
  }

  it('treats __proto__ as an ordinary name', async () => {
    const answer = await form(server.port, '__proto__[polluted]=1&constructor=2');
    assert.equal(answer.body.toString(), '{"__proto__":{"polluted":"1"},"constructor":"2"}');
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  });

  it('ignores names deeper than 127 levels', async () => {
    const ok = 'a' + '[b]'.repeat(126);
    const tooDeep = 'c' + '[d]'.repeat(127);
    const answer = await form(server.port, `${ok}=1&${tooDeep}=2`);
    const body = JSON.parse(answer.body.toString()) as Record<string, unknown>;
    assert.ok('a' in body);
    assert.ok(!('c' in body));
  });

  for (const input of ['a=1&a[b]=2', 'a[b]=2&a=1', 'a[]=1&a[b]=2', 'a=%zz', 'a=1;b=2']) {
    it(`${input} is a request forming error (500)`, async () => {
      const answer = await form(server.port, input);
      assert.equal(answer.status, 500);
      assert.match(answer.text, /^request forming error/);
    });
  }

  it('sends {} with parsed true for a GET with a form content type, and for an empty POST', async () => {
    const get = await request(server.port, {
      method: 'GET',
      path: '/?z=1',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(get.context['parsed'], true);
    assert.equal(get.body.toString(), '{}');
    const empty = await form(server.port, '');
    assert.equal(empty.context['parsed'], true);
    assert.equal(empty.body.toString(), '{}');
  });
});

describe('multipart uploads', () => {
  let dir: string;
  let server: TestServer;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rrts-request-'));
    server = await startServer({ uploadsDir: dir });
  });
  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  const cleanupLast = async (): Promise<void> => {
    await server.payloads.at(-1)!.cleanup();
  };

  it('streams a 10 MiB file to a 0600 temp file and puts fields in the body tree', async () => {
    const big = randomBytes(10 * 1024 * 1024);
    const answer = await sendMultipart(
      server.port,
      [
        { name: 'title', data: 'hello' },
        { name: 'meta[a]', data: '1' },
        { name: 'avatar', filename: 'big.bin', contentType: 'application/octet-stream', data: big },
        { name: 'meta[b][]', data: 'x' },
      ],
      true,
    );
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.context['parsed'], true);
    assert.deepEqual(JSON.parse(answer.body.toString()), { title: 'hello', meta: { a: '1', b: ['x'] } });
    const uploads = answer.context['uploads'] as Record<string, { tmpName: string }>;
    const tmpName = uploads['avatar']!.tmpName;
    assert.ok(
      answer.contextText.includes(
        `"uploads":{"avatar":{"name":"big.bin","mime":"application/octet-stream","size":10485760,"error":0,"tmpName":${JSON.stringify(tmpName)}}}`,
      ),
      answer.contextText.slice(0, 600),
    );
    assert.equal(join(dir, tmpName.slice(dir.length + 1)), tmpName);
    assert.match(tmpName.slice(dir.length + 1), /^upload\d+$/);
    assert.equal(sha256(await readFile(tmpName)), sha256(big));
    assert.equal((await stat(tmpName)).mode & 0o777, 0o600);
    await cleanupLast();
    await assert.rejects(stat(tmpName), { code: 'ENOENT' });
  });

  it('finishes every upload whose closing boundary arrives while the parser applies backpressure', { timeout: 20_000 }, async () => {
    // Regression: the parser emits 'finish' at the closing boundary; a write waiting for 'drain' then waited forever.
    for (let i = 0; i < 30; i++) {
      const answer = await sendMultipart(server.port, [
        { name: 'title', data: 'x' },
        { name: 'f', filename: 'f.bin', contentType: 'application/octet-stream', data: randomBytes(100_000) },
      ]);
      assert.equal(answer.status, 200, answer.text);
      await cleanupLast();
    }
  });

  it('puts `docs[]` files in an array and keeps only the first file of a plain name', async () => {
    const answer = await sendMultipart(server.port, [
      { name: 'docs[]', filename: 'a.pdf', contentType: 'application/pdf', data: 'AAAA' },
      { name: 'docs[]', filename: 'dir/b.txt', contentType: 'text/plain; charset=utf-8', data: 'BB' },
      { name: 'one', filename: 'first.txt', data: 'first' },
      { name: 'one', filename: 'second.txt', data: 'second' },
    ]);
    assert.equal(answer.status, 200, answer.text);
    const uploads = answer.context['uploads'] as Record<string, unknown>;
    const docs = uploads['docs'] as Array<Record<string, unknown>>;
    assert.equal(docs.length, 2);
    assert.deepEqual(Object.keys(docs[0]!), ['name', 'mime', 'size', 'error', 'tmpName']);
    assert.deepEqual(
      docs.map((d) => [d['name'], d['mime'], d['size'], d['error']]),
      [
        ['a.pdf', 'application/pdf', 4, 0],
        ['b.txt', 'text/plain; charset=utf-8', 2, 0],
      ],
    );
    assert.equal((await readFile(docs[1]!['tmpName'] as string)).toString(), 'BB');
    const one = uploads['one'] as Record<string, unknown>;
    assert.equal(one['name'], 'first.txt');
    assert.equal(one['mime'], '', 'no Content-Type in the part: empty, as Go reports it');
    assert.equal((await readFile(one['tmpName'] as string)).toString(), 'first');
    assert.equal(answer.body.toString(), '{}');
    const files = server.payloads.at(-1)!;
    await files.cleanup();
    await files.cleanup(); // idempotent
    assert.deepEqual(await readdir(dir), []);
  });

  it('refuses a forbidden extension with error 8 and writes nothing', async () => {
    const answer = await sendMultipart(server.port, [
      { name: 'ok', filename: 'fine.txt', data: 'fine' },
      { name: 'bad', filename: 'shell.PHP', contentType: 'text/plain', data: '<?php echo 1;' },
    ]);
    const uploads = answer.context['uploads'] as Record<string, Record<string, unknown>>;
    assert.equal(JSON.stringify(uploads['bad']), '{"name":"shell.PHP","mime":"text/plain","size":0,"error":8,"tmpName":""}');
    assert.deepEqual(await readdir(dir), [(uploads['ok']!['tmpName'] as string).slice(dir.length + 1)]);
    await cleanupLast();
    assert.deepEqual(await readdir(dir), []);
  });

  it('applies the allow list, forbid winning over allow', async () => {
    const allowDir = await mkdtemp(join(tmpdir(), 'rrts-request-'));
    const allowServer = await startServer({ uploadsDir: allowDir, uploads: { dir: allowDir, forbid: ['.exe'], allow: ['.png', '.exe'] } });
    try {
      const answer = await sendMultipart(allowServer.port, [
        { name: 'img', filename: 'pic.PNG', contentType: 'image/png', data: 'png' },
        { name: 'txt', filename: 'notes.txt', data: 'txt' },
        { name: 'exe', filename: 'tool.exe', data: 'MZ' },
        { name: 'none', filename: 'README', data: 'readme' },
      ]);
      const uploads = answer.context['uploads'] as Record<string, Record<string, unknown>>;
      assert.deepEqual(
        ['img', 'txt', 'exe', 'none'].map((k) => uploads[k]!['error']),
        [0, 8, 8, 8],
      );
      assert.equal((await readdir(allowDir)).length, 1);
    } finally {
      await allowServer.close();
      assert.deepEqual(await readdir(allowDir), []);
      await rm(allowDir, { recursive: true, force: true });
    }
  });

  it('sends uploads {} for a multipart form without files, and treats filename="" as a value', async () => {
    const answer = await sendMultipart(server.port, [
      { name: 'field', data: 'v' },
      { name: 'empty', filename: '', contentType: 'application/octet-stream', data: '' },
    ]);
    assert.equal(answer.status, 200, answer.text);
    assert.ok(answer.contextText.includes('"parsed":true,"uploads":{},"attributes":{}}'));
    assert.deepEqual(JSON.parse(answer.body.toString()), { field: 'v', empty: '' });
  });

  it('fails a malformed multipart body with 500 and leaves no temp file', async () => {
    const whole = multipartBody([
      { name: 'f', filename: 'a.bin', data: randomBytes(200 * 1024) },
      { name: 'g', filename: 'b.bin', data: randomBytes(1000) },
    ]);
    const truncated = whole.subarray(0, whole.length - 600);
    const answer = await request(server.port, {
      method: 'POST',
      headers: { 'Content-Type': `multipart/form-data; boundary=${BOUNDARY}` },
      body: truncated,
    });
    assert.equal(answer.status, 500);
    assert.match(answer.text, /^request forming error: multipart: /);
    assert.deepEqual(await readdir(dir), []);

    const noBoundary = await request(server.port, {
      method: 'POST',
      headers: { 'Content-Type': 'multipart/form-data' },
      body: 'x',
    });
    assert.equal(noBoundary.status, 500);
    assert.match(noBoundary.text, /no multipart boundary/);
  });

  it('removes temp files when the client disconnects mid-upload (400)', async () => {
    const errorsBefore = server.errors.length;
    const body = multipartBody([{ name: 'f', filename: 'partial.bin', data: randomBytes(512 * 1024) }]);
    const socket = net.connect(server.port, '127.0.0.1');
    socket.on('error', () => {});
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.write(`POST /upload HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; boundary=${BOUNDARY}\r\n` + `Content-Length: ${body.length}\r\n\r\n`);
    socket.write(body.subarray(0, 256 * 1024));
    for (let i = 0; i < 200 && (await readdir(dir)).length === 0; i++) await sleep(5);
    assert.equal((await readdir(dir)).length, 1, 'the upload is being written');
    socket.destroy();
    for (let i = 0; i < 200 && server.errors.length === errorsBefore; i++) await sleep(5);
    const error = server.errors.at(-1);
    assert.ok(error instanceof RequestAbortedError);
    assert.deepEqual(await readdir(dir), []);
  });

  it('sends multipart and url-encoded bodies raw with rawBody: true', async () => {
    const rawDir = await mkdtemp(join(tmpdir(), 'rrts-request-'));
    const rawServer = await startServer({ uploadsDir: rawDir, rawBody: true });
    try {
      const body = multipartBody([
        { name: 'a', data: '1' },
        { name: 'f', filename: 'x.txt', data: 'file' },
      ]);
      const answer = await request(rawServer.port, {
        method: 'POST',
        headers: { 'Content-Type': `multipart/form-data; boundary=${BOUNDARY}` },
        body,
      });
      assert.equal(answer.context['parsed'], false);
      assert.equal(answer.context['uploads'], null);
      assert.deepEqual(answer.body, body);
      assert.deepEqual(await readdir(rawDir), []);
      const urlencoded = await form(rawServer.port, 'a=1&b[]=2');
      assert.equal(urlencoded.context['parsed'], false);
      assert.equal(urlencoded.body.toString(), 'a=1&b[]=2');
    } finally {
      await rawServer.close();
      await rm(rawDir, { recursive: true, force: true });
    }
  });
});

describe('max_request_size', () => {
  let dir: string;
  let server: TestServer;
  const limit = 1024 * 1024;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rrts-request-'));
    server = await startServer({ uploadsDir: dir, maxRequestSize: limit });
  });
  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers 413 for a streamed multipart body over the limit and leaves no temp file', async () => {
    const created: string[] = [];
    const watcher = watch(dir, (_event, name) => {
      if (name !== null) created.push(name);
    });
    const answer = await sendMultipart(
      server.port,
      [
        { name: 'small', filename: 'small.bin', data: randomBytes(100 * 1024) },
        { name: 'big', filename: 'big.bin', data: randomBytes(2 * limit) },
      ],
      true,
    );
    assert.equal(answer.status, 413);
    assert.equal(answer.text, 'http: request body too large');
    watcher.close();
    assert.ok(created.length > 0, 'temp files were written before the limit was hit');
    assert.deepEqual(await readdir(dir), []);
    const error = server.errors.at(-1);
    assert.ok(error instanceof RequestTooLargeError);
  });

  it('answers 413 from Content-Length before reading, and for a chunked raw body', async () => {
    const declared = await request(server.port, {
      method: 'POST',
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(limit + 1) },
      body: Buffer.alloc(limit + 1),
    });
    assert.equal(declared.status, 413);
    const chunked = await request(server.port, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/json' },
      body: splitChunks(Buffer.alloc(limit + 10), 100 * 1024),
    });
    assert.equal(chunked.status, 413);
    const form = await request(server.port, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: splitChunks(Buffer.alloc(limit + 10, 'a'), 100 * 1024),
    });
    assert.equal(form.status, 413);
  });

  it('accepts a body of exactly the limit', async () => {
    const exact = randomBytes(limit);
    const answer = await request(server.port, {
      method: 'POST',
      headers: { 'Content-Type': 'application/octet-stream' },
      body: splitChunks(exact, 256 * 1024),
    });
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual(answer.body, exact);
  });
});

describe('HTTP/2', () => {
  it('uses :authority for uri, reports HTTP/2.0, drops pseudo-headers, joins cookie fields', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rrts-request-'));
    const opts: RequestPayloadOptions = {
      rawBody: false,
      maxRequestSize: 1024 * 1024,
      uploads: { dir, forbid: [], allow: [] },
      tls: false,
    };
    const payloads: RequestPayload[] = [];
    const server = http2.createServer((req, res) => {
      buildRequestPayload(req, opts).then(
        (payload) => {
          payloads.push(payload);
          res.end(JSON.stringify({ context: payload.context.toString(), body: payload.body.toString('base64') }));
        },
        (error: Error) => {
          res.statusCode = 599;
          res.end(error.message);
        },
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    const client = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const text = await new Promise<string>((resolve, reject) => {
        const stream = client.request({
          ':method': 'POST',
          ':path': '/h2?q=1',
          ':authority': 'h2.example:8443',
          'content-type': 'application/x-www-form-urlencoded',
          'x-custom': 'v',
          cookie: ['a=1', 'b=2'],
        });
        const chunks: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.on('end', () => resolve(Buffer.concat(chunks).toString()));
        stream.on('error', reject);
        stream.end('k[]=1&k[]=2');
      });
      const answer = JSON.parse(text) as { context: string; body: string };
      const context = JSON.parse(answer.context) as Record<string, unknown>;
      assert.equal(context['protocol'], 'HTTP/2.0');
      assert.equal(context['method'], 'POST');
      assert.equal(context['uri'], 'http://h2.example:8443/h2?q=1');
      assert.equal(context['rawQuery'], 'q=1');
      const headers = context['headers'] as Record<string, string[]>;
      assert.deepEqual(headers['X-Custom'], ['v']);
      assert.deepEqual(headers['Cookie'], ['a=1; b=2']);
      assert.ok(Object.keys(headers).every((name) => !name.startsWith(':') && name !== 'Host'));
      assert.deepEqual(context['cookies'], { a: '1', b: '2' });
      assert.equal(Buffer.from(answer.body, 'base64').toString(), '{"k":["1","2"]}');
    } finally {
      client.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all(payloads.map((p) => p.cleanup()));
      await rm(dir, { recursive: true, force: true });
    }
  });
});
