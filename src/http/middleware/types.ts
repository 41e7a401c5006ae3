// The one shape every HTTP middleware has: a function that wraps the next handler. A middleware answers the
// request itself (static files, CORS preflight) or changes the request/response and calls `next`.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type net from 'node:net';

/**
 * What the middleware, request.ts and response.ts use of a request: node's IncomingMessage and Http2ServerRequest
 * have it, and so does rrts's own HTTP/1.1 request (src/http/h1/request.ts).
 */
export interface AnyRequest {
  readonly method?: string | undefined;
  url?: string | undefined;
  readonly httpVersion: string;
  readonly httpVersionMajor: number;
  readonly httpVersionMinor: number;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: string[];
  readonly socket: net.Socket;
  readonly readableEnded: boolean;
  resume(): unknown;
  pause(): unknown;
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'end' | 'close', listener: () => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  off(event: 'data', listener: (chunk: Buffer) => void): unknown;
  off(event: 'end' | 'close', listener: () => void): unknown;
  off(event: 'error', listener: (error: Error) => void): unknown;
}

type HeaderValue = number | string | readonly string[];

/** What they use of a response: node's ServerResponse and Http2ServerResponse, and src/http/h1/response.ts's. */
export interface AnyResponse {
  statusCode: number;
  readonly headersSent: boolean;
  readonly writableEnded: boolean;
  readonly writableFinished: boolean;
  readonly destroyed: boolean;
  setHeader(name: string, value: HeaderValue): unknown;
  getHeader(name: string): HeaderValue | undefined;
  hasHeader(name: string): boolean;
  removeHeader(name: string): void;
  writeHead(statusCode: number, headers?: OutgoingHttpHeaders): unknown;
  write(chunk: Buffer | string): boolean;
  end(): unknown;
  end(chunk: Buffer | string): unknown;
  /** Http2ServerResponse has it too, untyped. */
  flushHeaders?(): void;
  addTrailers(headers: Record<string, string | string[]>): void;
  writeContinue(): void;
  writeEarlyHints(hints: Record<string, string | string[]>): void;
  destroy(): unknown;
  on(event: 'close' | 'finish' | 'drain', listener: () => void): unknown;
  once(event: 'close' | 'finish' | 'drain', listener: () => void): unknown;
  off(event: 'close' | 'finish' | 'drain', listener: () => void): unknown;
}

/** What the middleware learn about a request besides its headers, handed down the chain. */
export interface RequestState {
  /** The connection is TLS (uri scheme https). */
  readonly tls: boolean;
  /** The client IP PHP sees as remoteAddr; proxy_ip_parser may replace it. */
  remoteAddr: string;
}

export type HttpHandler = (req: AnyRequest, res: AnyResponse, state: RequestState) => Promise<void>;
export type Middleware = (next: HttpHandler) => HttpHandler;

/** Adds a header to a request as if the client had sent it (both `headers` and `rawHeaders`, which request.ts reads). */
export function addRequestHeader(req: AnyRequest, name: string, value: string): void {
  const lower = name.toLowerCase();
  const headers = req.headers as Record<string, string | string[] | undefined>;
  const existing = headers[lower];
  headers[lower] = existing === undefined ? value : Array.isArray(existing) ? [...existing, value] : `${existing}, ${value}`;
  req.rawHeaders.push(name, value);
}
