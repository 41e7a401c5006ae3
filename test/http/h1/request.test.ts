// Unit tests of src/http/h1/request.ts: its `headers` and `headersDistinct` are what node:http's IncomingMessage
// gives for the same bytes (checked against a real node:http server on loopback), and its body stream tells a
// reader that comes after the client left.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { H1Parser, type RequestHead } from '../../../src/http/h1/parser.js';
import { H1Request, type BodySource } from '../../../src/http/h1/request.js';

const REQUEST =
  'POST /a?b=1 HTTP/1.1\r\nHost: example.test\r\nCookie: a=1\r\nCookie: b=2\r\nSet-Cookie: x=1\r\nSet-Cookie: y=2\r\n' +
  'Content-Type: text/plain\r\nContent-Type: text/html\r\nX-Multi: one\r\nx-multi: two\r\nUser-Agent: first\r\nUser-Agent: second\r\n' +
  'Accept: */*\r\nContent-Length: 3\r\n\r\nabc';

function parseHead(raw: string): RequestHead {
  let found: RequestHead | null = null;
  const parser = new H1Parser({
    onRequest: (head) => (found = head),
    onBody: () => {},
    onRequestEnd: () => {},
    onError: (error) => assert.fail(error.message),
  });
  parser.execute(Buffer.from(raw, 'latin1'));
  assert.ok(found, 'a head');
  return found;
}

const noSource: BodySource = { bodyWanted: () => {}, bodyPaused: () => {} };

describe('H1Request headers, as node:http presents them', () => {
  let server: http.Server;
  let seen: Promise<http.IncomingMessage>;
  before(async () => {
    let resolveSeen: (req: http.IncomingMessage) => void = () => {};
    seen = new Promise((resolve) => (resolveSeen = resolve));
    server = http.createServer((req, res) => {
      resolveSeen(req);
      req.resume();
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it('joins, keeps the first of, and lists repeated headers as IncomingMessage does', async () => {
    const socket = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
    socket.on('error', () => {});
    try {
      socket.write(REQUEST);
      const node = await seen;
      const ours = new H1Request(parseHead(REQUEST), socket, noSource, '/a?b=1');
      assert.deepEqual({ ...ours.headers }, { ...node.headers });
      assert.deepEqual({ ...ours.headersDistinct }, { ...node.headersDistinct });
      assert.deepEqual(ours.rawHeaders, node.rawHeaders);
      assert.equal(ours.header('content-type'), 'text/plain');
      assert.equal(ours.header('x-absent'), '');
    } finally {
      socket.destroy();
    }
  });
});

describe('H1Request body', () => {
  it('a reader that comes after the client left gets close, and never end', () => {
    const head = parseHead('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n');
    const req = new H1Request(head, new net.Socket(), noSource, '/');
    req.pushBody(Buffer.from('12345'));
    req.abort();
    const events: string[] = [];
    req.on('data', () => events.push('data'));
    req.on('end', () => events.push('end'));
    req.on('close', () => events.push('close'));
    req.resume();
    assert.deepEqual(events, ['close']);
    assert.equal(req.readableEnded, false);
  });

  it('hands out buffered body on resume, then end; a request without a body has ended from the start', () => {
    const head = parseHead('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\n');
    const req = new H1Request(head, new net.Socket(), noSource, '/');
    req.pushBody(Buffer.from('ab'));
    req.pushBody(Buffer.from('cd'));
    req.endBody();
    const parts: string[] = [];
    req.on('data', (chunk: Buffer) => parts.push(chunk.toString()));
    req.on('end', () => parts.push('<end>'));
    req.resume();
    assert.deepEqual(parts, ['ab', 'cd', '<end>']);
    const bodiless = new H1Request(parseHead('GET / HTTP/1.1\r\nHost: a\r\n\r\n'), new net.Socket(), noSource, '/');
    assert.equal(bodiless.readableEnded, true);
  });
});
