// H1Front (src/http/h1/connection.ts) on real loopback sockets: a plain connection that keeps alive is moved after
// its first answer into a socket read with `onread` into one buffer every connection shares, so what outlives a read
// must be a copy: a head cut between two reads, bytes of a pipelined request held while the one before is answered,
// body chunks a handler reads later. Each case makes the next read land on the bytes kept from the one before.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { H1Front } from '../../../src/http/h1/connection.js';
import type { H1Request } from '../../../src/http/h1/request.js';
import type { H1Response } from '../../../src/http/h1/response.js';
import { until } from '../../support/sleep.js';

/** What a test's handler does with each request; the default answers its method, url and body at once. */
type Handler = (req: H1Request, res: H1Response) => void;

let handler: Handler;
const seenSockets: net.Socket[] = [];
/** The server side of the current test's connection, once its first request was dispatched. */
let current: net.Socket | null = null;
let server: net.Server;
let port: number;
const clients: net.Socket[] = [];
/** The sockets the server accepted, in order. */
const acceptedSockets: net.Socket[] = [];

function answer(req: H1Request, res: H1Response, body: Buffer): void {
  res.setHeader('Content-Type', 'text/plain');
  res.end(`${req.method} ${req.url} ${body.length} ${body.toString('latin1')}`);
}

/** Reads the request's whole body, then answers with it. */
function echo(req: H1Request, res: H1Response): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => answer(req, res, Buffer.concat(chunks)));
  req.resume();
}

before(async () => {
  const front = new H1Front(
    (req, res) => {
      seenSockets.push(req.socket);
      current = req.socket;
      handler(req, res);
    },
    { tls: false, headersTimeoutMs: 30_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 30_000, maxHeaderBytes: 1 << 20, log: pino({ level: 'silent' }) },
  );
  server = net.createServer({ allowHalfOpen: true }, (socket) => {
    acceptedSockets.push(socket);
    front.serve(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
});

after(() => {
  for (const c of clients) c.destroy();
  for (const s of seenSockets) s.destroy();
  server.close();
});

/**
 * A client whose received text (after its warm-up answers) accumulates in `text()`. Two requests are answered
 * before it is returned: the server moved the connection to its own socket when the second began, so every byte the
 * test sends is read into the shared buffer (`current` is reset).
 */
async function client(): Promise<{ socket: net.Socket; text: () => string }> {
  const socket = net.connect(port, '127.0.0.1');
  clients.push(socket);
  socket.setNoDelay(true);
  await once(socket, 'connect');
  let got = '';
  socket.on('data', (c: Buffer) => (got += c.toString('latin1')));
  const test = handler;
  handler = (req, res) => answer(req, res, Buffer.alloc(0));
  socket.write('GET /warm-up HTTP/1.1\r\nHost: a\r\n\r\n');
  await until(() => bodies(got).length === 1, 'the first answer');
  socket.write('GET /warm-up-2 HTTP/1.1\r\nHost: a\r\n\r\n');
  await until(() => bodies(got).length === 2, 'the second answer');
  handler = test;
  got = '';
  current = null;
  return { socket, text: () => got };
}

/** The bodies of the answers in `text`, in order. */
function bodies(text: string): string[] {
  return [...text.matchAll(/Content-Length: (\d+)\r\n(?:[^\r]*\r\n)*?\r\n/g)].map((m) => text.substr(m.index + m[0].length, Number(m[1])));
}

const PAD = 'p'.repeat(300); // longer than what came before it in its read: it overwrites the kept bytes' place

describe('H1Front reads plain connections with onread into a shared buffer', { timeout: 30_000 }, () => {
  it('from its second request on, a keep-alive connection is read by onread on a socket of its own', async () => {
    handler = (req, res) => answer(req, res, Buffer.alloc(0));
    const c = await client();
    const accepted = acceptedSockets.at(-1)!;
    c.socket.write('GET /one HTTP/1.1\r\nHost: a\r\n\r\n');
    await until(() => bodies(c.text()).length === 1, 'the answer');
    assert.deepEqual(bodies(c.text()), ['GET /one 0 ']);
    assert.notEqual(current, accepted, 'the requests after the first came on another socket');
    assert.ok(accepted.destroyed);
    assert.equal(current!.listenerCount('data'), 0, 'no data listener: reads come by onread');
  });

  it('a connection that asks to close after its request stays on the accepted socket', async () => {
    handler = (req, res) => answer(req, res, Buffer.alloc(0));
    const socket = net.connect(port, '127.0.0.1');
    clients.push(socket);
    let got = '';
    socket.on('data', (chunk: Buffer) => (got += chunk.toString('latin1')));
    current = null;
    socket.write('GET /only HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    await once(socket, 'close');
    assert.deepEqual(bodies(got), ['GET /only 0 ']);
    assert.equal(current, acceptedSockets.at(-1), 'answered on the socket the server accepted');
  });

  it('a pipelined head cut between two reads, answered at once', async () => {
    handler = (req, res) => answer(req, res, Buffer.alloc(0));
    const c = await client();
    c.socket.write('GET /first HTTP/1.1\r\nHost: a\r\n\r\nGET /second-request-whose-head-is-cut HTTP/1.1\r\nHo');
    await until(() => bodies(c.text()).length === 1, 'the first answer');
    c.socket.write(`st: a\r\nX-Pad: ${PAD}\r\n\r\n`);
    await until(() => bodies(c.text()).length === 2, 'the second answer');
    assert.deepEqual(bodies(c.text()), ['GET /first 0 ', 'GET /second-request-whose-head-is-cut 0 ']);
  });

  it('pipelined bytes held while the request before them is answered later', async () => {
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => (release = resolve));
    handler = (req, res) => {
      if (req.url === '/slow') void released.then(() => answer(req, res, Buffer.alloc(0)));
      else answer(req, res, Buffer.alloc(0));
    };
    const c = await client();
    const first = 'GET /slow HTTP/1.1\r\nHost: a\r\n\r\nGET /held-while-slow-is-answered HTTP/1.1\r\nHost: a\r\n';
    c.socket.write(first);
    await until(() => current !== null && current.bytesRead >= first.length, 'the first read');
    const second = `X-Pad: ${PAD}\r\n\r\n`;
    c.socket.write(second);
    await until(() => current!.bytesRead >= first.length + second.length, 'the second read');
    release();
    await until(() => bodies(c.text()).length === 2, 'both answers');
    assert.deepEqual(bodies(c.text()), ['GET /slow 0 ', 'GET /held-while-slow-is-answered 0 ']);
  });

  it('body chunks a handler reads after later reads reused the buffer', async () => {
    const body = 'A'.repeat(100) + 'B'.repeat(400) + 'C'.repeat(400);
    let total = 0;
    handler = (req, res) => {
      // Read the body only once every byte of it went through the shared buffer.
      void until(() => req.socket.bytesRead >= total, 'the whole body read').then(() => echo(req, res));
    };
    const c = await client();
    const head = `POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: ${body.length}\r\n\r\n`;
    total = head.length + body.length;
    c.socket.write(head + body.slice(0, 100));
    await until(() => current?.bytesRead === head.length + 100, 'the first read', { tries: 4_000 });
    c.socket.write(body.slice(100, 500));
    await until(() => current!.bytesRead === head.length + 500, 'the second read');
    c.socket.write(body.slice(500));
    await until(() => bodies(c.text()).length === 1, 'the answer');
    assert.deepEqual(bodies(c.text()), [`POST /upload ${body.length} ${body}`]);
  });

  it('a chunked body whose chunk-size line is cut between reads', async () => {
    handler = echo;
    const c = await client();
    const first = 'POST /chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1';
    c.socket.write(first);
    await until(() => current?.bytesRead === first.length, 'the first read');
    c.socket.write(`2c\r\n${'x'.repeat(300)}\r\n0\r\n\r\n`);
    await until(() => bodies(c.text()).length === 1, 'the answer');
    assert.deepEqual(bodies(c.text()), [`POST /chunked 305 hello${'x'.repeat(300)}`]);
  });
});
