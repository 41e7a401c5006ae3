// Starting listeners the same way everywhere: resolve once listening (reject on EADDRINUSE and the like), and answer
// malformed HTTP/1.x with Go net/http's own refusals (400, 431, 501; byte for byte) instead of Node's.
import type http from 'node:http';
import type net from 'node:net';
import type { Logger } from 'pino';
import { splitAddress } from './address.js';

export function listenOn(server: net.Server, options: net.ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Listen on a RoadRunner `host:port` address (`:port` = every interface). */
export function listenOnAddress(server: net.Server, address: string): Promise<void> {
  const { host, port } = splitAddress(address);
  return listenOn(server, { host, port });
}

/** Stop listening and drop every connection at once (the metrics and status endpoints: nothing to finish). */
export function closeNow(server: http.Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  return closed;
}

/** The headers of every answer Go's (*conn).serve writes itself to a request it refuses (server.go). */
const GO_ERROR_HEADERS = '\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n';

/** Go's refusals, byte for byte: no handler (no worker) ever sees these requests. */
export const GO_REFUSAL = {
  /** Any request Go's ReadRequest rejects, "too many Host headers" included (its text is not sent). */
  badRequest: `HTTP/1.1 400 Bad Request${GO_ERROR_HEADERS}400 Bad Request`,
  missingHost: `HTTP/1.1 400 Bad Request: missing required Host header${GO_ERROR_HEADERS}400 Bad Request: missing required Host header`,
  /** Over Server.MaxHeaderBytes (+ 4096 bytes of bufio slack). */
  headerTooLarge: `HTTP/1.1 431 Request Header Fields Too Large${GO_ERROR_HEADERS}431 Request Header Fields Too Large`,
  /** A Transfer-Encoding other than exactly one `chunked` (the value is not echoed, as in Go). */
  unsupportedTransferEncoding: `HTTP/1.1 501 Not Implemented${GO_ERROR_HEADERS}Unsupported transfer encoding`,
} as const;

/** Go's DefaultMaxHeaderBytes (1 MiB) plus the 4096 bytes its reader allows on top (initialReadLimitSize). */
export const GO_MAX_HEADER_BYTES = (1 << 20) + 4096;

/** Go's rstAvoidanceDelay: the refused client gets time to read the answer before the socket is closed. */
const RST_AVOIDANCE_MS = 500;

const refused = new WeakSet<net.Socket>();

/** Write one of GO_REFUSAL and close the connection; nothing else is answered on it. */
export function refuseConnection(socket: net.Socket, answer: string): void {
  if (refused.has(socket)) return;
  refused.add(socket);
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  // A FIN after the answer, then a close a little later, as Go's closeWriteAndWait: closing at once with unread
  // request bytes would send a reset that can wipe the answer from the client's buffer.
  socket.end(answer);
  setTimeout(() => socket.destroy(), RST_AVOIDANCE_MS).unref();
}

/** The connection was refused (or answered and closing): later requests parsed from it are dropped. */
export function isRefused(socket: net.Socket | null | undefined): boolean {
  return socket !== null && socket !== undefined && (refused.has(socket) || socket.writableEnded);
}

/**
 * What Go answers to an HTTP/1.x request Node accepts but Go refuses: two Host headers, a Transfer-Encoding other
 * than exactly `chunked` (Node accepts `gzip, chunked` and hands over a still-compressed body), an HTTP/1.1 request
 * without Host. null for a request Go would hand to its handler.
 */
export function goRefusalOf(req: http.IncomingMessage): string | null {
  let hosts = 0;
  let codings: string[] | null = null;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 4 && name.toLowerCase() === 'host') hosts++;
    else if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') (codings ??= []).push(raw[i + 1]!);
  }
  const http11 = req.httpVersionMajor === 1 && req.httpVersionMinor >= 1;
  if (hosts > 1) return GO_REFUSAL.badRequest;
  // Go ignores Transfer-Encoding on HTTP/1.0 requests.
  if (http11 && codings !== null && (codings.length !== 1 || codings[0]!.trim().toLowerCase() !== 'chunked')) {
    return GO_REFUSAL.unsupportedTransferEncoding;
  }
  if (http11 && hosts === 0 && req.method !== 'CONNECT') return GO_REFUSAL.missingHost;
  return null;
}

/**
 * Answer malformed HTTP as Go does and close, logging at debug. A client too slow to send its headers
 * (headersTimeout) or its request (requestTimeout) gets the connection closed without an answer, as in Go.
 */
export function refuseMalformedRequests(server: http.Server, log: Logger, what: string): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => {
    const code = err.code ?? '';
    if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      socket.destroy();
      log.debug({ err: err.message }, `${what} request timed out: connection closed`);
      return;
    }
    const answer =
      code === 'HPE_HEADER_OVERFLOW'
        ? GO_REFUSAL.headerTooLarge
        : code === 'HPE_INVALID_TRANSFER_ENCODING'
          ? GO_REFUSAL.unsupportedTransferEncoding
          : GO_REFUSAL.badRequest;
    refuseConnection(socket, answer);
    log.debug({ err: err.message, code }, `malformed ${what} request refused`);
  });
}
