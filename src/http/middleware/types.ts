// The one shape every HTTP middleware has: a function that wraps the next handler. A middleware answers the
// request itself (static files, CORS preflight) or changes the request/response and calls `next`.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';

export type AnyRequest = IncomingMessage | Http2ServerRequest;
export type AnyResponse = ServerResponse | Http2ServerResponse;

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
