// Prototype HTTP/1.1 connection handler on raw sockets: H1Parser on the socket's reads, requests handled one at a
// time in order (as Go's server does, pipelined ones wait), each answer written with one socket.write.
// Not wired into the HTTP plugin yet: it exists to measure the path (test/bench/h1-connection.mjs).
import net from 'node:net';
import { STATUS_CODES } from 'node:http';
import { H1Parser, type H1Limits, type H1ParseError, type RequestHead } from './parser.js';

export interface H1Request {
  head: RequestHead;
  /** The whole body (requests are answered after their body has arrived, in this prototype). */
  body: Buffer;
  socket: net.Socket;
}

export interface H1Answer {
  status: number;
  /** name, value, name, value, ... as they go on the wire; Content-Length, Date and Connection are added. */
  headers?: readonly string[];
  body?: Buffer | string;
}

export type H1Handler = (request: H1Request, respond: (answer: H1Answer) => void) => void;

export interface H1ConnectionOptions extends H1Limits {
  /** A body over this many bytes is answered 413 and the connection closed; 0: no limit. */
  maxBodyBytes?: number;
}

let dateSecond = -1;
let dateLine = '';

/** `Date: ...\r\n`, made once a second (as node:http caches it). */
function currentDateLine(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateLine = `Date: ${new Date(now).toUTCString()}\r\n`;
  }
  return dateLine;
}

function reason(status: number): string {
  return STATUS_CODES[status] ?? 'status code ' + status;
}

/** Serve one connection until it closes. The socket should allow half-open (createH1Server sets allowHalfOpen). */
export function serveH1Connection(socket: net.Socket, handler: H1Handler, options: H1ConnectionOptions = {}): void {
  const maxBody = options.maxBodyBytes ?? 0;
  let current: RequestHead | null = null;
  let bodyParts: Buffer[] = [];
  let bodyLength = 0;
  let closing = false;
  /** A request is with the handler. */
  let busy = false;
  /** The client has half-closed: finish the answers owed, then close. */
  let peerEnded = false;

  const fail = (status: number, text: string): void => {
    // Go's answer to a request it cannot read: plain text, then the connection is closed.
    const body = `${status} ${text}`;
    socket.end(`HTTP/1.1 ${status} ${reason(status)}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n${body}`, 'latin1');
    closing = true;
    // Then close for good, as Go does after half a second (closeWriteAndWait), even if the client never closes.
    socket.once('finish', () => setTimeout(() => socket.destroy(), 500).unref());
  };

  const parser: H1Parser = new H1Parser(
    {
      onRequest(head) {
        current = head;
        bodyParts = [];
        bodyLength = 0;
        if (head.expectUnsupported) {
          parser.pause();
          fail(417, 'Expectation Failed');
          return;
        }
        if (head.method === 'CONNECT') {
          parser.pause();
          fail(405, 'Method Not Allowed');
          return;
        }
        if (maxBody > 0 && head.contentLength > maxBody) {
          parser.pause();
          fail(413, 'Request Entity Too Large');
          return;
        }
        if (head.expectContinue) socket.write('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
      },
      onBody(chunk) {
        if (closing) return;
        bodyLength += chunk.length;
        if (maxBody > 0 && bodyLength > maxBody) {
          parser.pause();
          fail(413, 'Request Entity Too Large');
          return;
        }
        bodyParts.push(chunk);
      },
      onRequestEnd() {
        if (closing) return;
        const head = current!;
        const body = bodyParts.length === 0 ? EMPTY : bodyParts.length === 1 ? bodyParts[0]! : Buffer.concat(bodyParts, bodyLength);
        // One request at a time: later pipelined input waits in the parser until this one is answered.
        parser.pause();
        busy = true;
        let answered = false;
        handler({ head, body, socket }, (answer) => {
          if (answered || socket.destroyed) return;
          answered = true;
          busy = false;
          writeAnswer(socket, head, answer);
          if (!head.keepAlive) {
            socket.end();
            closing = true;
            return;
          }
          parser.resume();
          if (busy || closing) return;
          if (peerEnded) finish();
          else if (socket.isPaused()) socket.resume();
        });
      },
      onError(error: H1ParseError) {
        fail(error.status, reason(error.status));
      },
    },
    options,
  );

  socket.on('data', (chunk: Buffer) => {
    parser.execute(chunk);
    // Stop reading while a request is being handled and more input waits (pipelining back-pressure).
    if (parser.isPaused && parser.heldBytes > 64 * 1024) socket.pause();
  });
  const finish = (): void => {
    if (closing) return;
    if (parser.inRequest) fail(400, 'Bad Request');
    else socket.end();
  };
  socket.on('end', () => {
    peerEnded = true;
    if (!busy) finish();
  });
  socket.on('error', () => socket.destroy());
}

const EMPTY = Buffer.alloc(0);

/** Status line, headers and body in one write. */
export function writeAnswer(socket: net.Socket, request: RequestHead, answer: H1Answer): void {
  const status = answer.status;
  let head = `HTTP/1.1 ${status} ${reason(status)}\r\n${currentDateLine()}`;
  const headers = answer.headers ?? [];
  for (let i = 0; i + 1 < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
  const body = answer.body ?? EMPTY;
  const bodyIsString = typeof body === 'string';
  const length = bodyIsString ? Buffer.byteLength(body) : body.length;
  const noBody = status === 204 || status === 304 || (status >= 100 && status < 200);
  if (!noBody) head += `Content-Length: ${length}\r\n`;
  if (!request.keepAlive) head += 'Connection: close\r\n';
  else if (request.versionMinor === 0) head += 'Connection: keep-alive\r\n';
  head += '\r\n';
  if (request.method === 'HEAD' || noBody || length === 0) {
    socket.write(head, 'latin1');
  } else if (bodyIsString) {
    const out = Buffer.allocUnsafe(head.length + length);
    out.write(head, 0, 'latin1');
    out.write(body, head.length, 'utf8');
    socket.write(out);
  } else {
    const out = Buffer.allocUnsafe(head.length + length);
    out.write(head, 0, 'latin1');
    out.set(body, head.length);
    socket.write(out);
  }
}

/** A TCP server whose connections are served by serveH1Connection. */
export function createH1Server(handler: H1Handler, options: H1ConnectionOptions = {}): net.Server {
  // allowHalfOpen: a client that half-closes after its requests still gets every answer owed.
  return net.createServer({ noDelay: true, allowHalfOpen: true }, (socket) => serveH1Connection(socket, handler, options));
}
