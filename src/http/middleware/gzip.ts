// The `gzip` middleware: compresses a response when the client accepts gzip, the response has a body (not HEAD,
// 1xx, 204, 304), is not already encoded and is not tiny (a whole answer under MIN_SIZE bytes is sent as is).
// Streamed answers are compressed too, each chunk flushed so the stream stays a stream. Adds Vary: Accept-Encoding.
import zlib from 'node:zlib';
import type { AnyRequest, AnyResponse, Middleware } from './types.js';

/** Below this (by Content-Length) compression costs more than it saves; RoadRunner's gzip handler uses 1 KiB too. */
export const MIN_SIZE = 1024;

export function gzip(): Middleware {
  return (next) => async (req, res, state) => {
    if (acceptsGzip(req) && req.method !== 'HEAD') compressResponse(res);
    else varyOnAcceptEncoding(res);
    await next(req, res, state);
  };
}

/** True unless the client refuses gzip (q=0) or does not name it (or `*`). */
export function acceptsGzip(req: AnyRequest): boolean {
  const header = req.headers['accept-encoding'];
  if (!header) return false;
  for (const part of String(header).split(',')) {
    const [coding = '', ...params] = part.trim().toLowerCase().split(';');
    if (coding.trim() !== 'gzip' && coding.trim() !== '*') continue;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    return q === undefined || Number(q.slice(2)) > 0;
  }
  return false;
}

function varyOnAcceptEncoding(res: AnyResponse): void {
  const vary = res.getHeader('vary');
  const current = Array.isArray(vary) ? vary.join(', ') : vary === undefined ? '' : String(vary);
  if (/(^|,)\s*(accept-encoding|\*)\s*(,|$)/i.test(current)) return;
  res.setHeader('Vary', current === '' ? 'Accept-Encoding' : `${current}, Accept-Encoding`);
}

type Write = (chunk: unknown, encoding?: unknown, callback?: unknown) => boolean;
type End = (chunk?: unknown, encoding?: unknown, callback?: unknown) => unknown;

/** Wraps write/end/flushHeaders of `res`: the decision is taken when the head is about to go out. */
function compressResponse(res: AnyResponse): void {
  const target = res as unknown as { write: Write; end: End; flushHeaders: () => void; writeHead: (...args: unknown[]) => unknown };
  const write = target.write.bind(res);
  const end = target.end.bind(res);
  const flushHeaders = target.flushHeaders.bind(res);
  const writeHead = target.writeHead.bind(res);
  let decided = false;
  let stream: zlib.Gzip | null = null;

  const decide = (streaming: boolean): void => {
    if (decided) return;
    decided = true;
    varyOnAcceptEncoding(res);
    const status = res.statusCode;
    if (status < 200 || status === 204 || status === 304) return;
    if (res.getHeader('content-encoding') !== undefined) return;
    const length = res.getHeader('content-length');
    if (!streaming && length !== undefined && Number(length) < MIN_SIZE) return;
    res.removeHeader('content-length');
    res.setHeader('Content-Encoding', 'gzip');
    stream = zlib.createGzip();
    stream.on('data', (chunk: Buffer) => write(chunk));
    stream.on('end', () => end());
    stream.on('error', () => res.destroy());
  };

  target.writeHead = (...args: unknown[]): unknown => {
    // Node's writeHead freezes the head; the head must stay open until decide(), so it becomes setHeader calls.
    // After decide(), Node itself calls writeHead (implicit head on the first write): that one goes through.
    if (decided) return writeHead(...args);
    const [status, maybeHeaders, maybeMore] = args as [number, unknown, unknown];
    const headers = typeof maybeHeaders === 'object' && maybeHeaders !== null ? maybeHeaders : maybeMore;
    res.statusCode = status;
    if (headers && typeof headers === 'object' && !Array.isArray(headers)) {
      for (const [name, value] of Object.entries(headers as Record<string, string | number | string[]>)) res.setHeader(name, value);
    }
    return res;
  };
  target.flushHeaders = (): void => {
    decide(true);
    flushHeaders();
  };
  target.write = (chunk: unknown, encoding?: unknown, callback?: unknown): boolean => {
    decide(false);
    if (!stream) return write(chunk, encoding, callback);
    stream.write(chunk, callback as () => void);
    stream.flush(zlib.constants.Z_SYNC_FLUSH);
    return true;
  };
  target.end = (chunk?: unknown, encoding?: unknown, callback?: unknown): unknown => {
    if (typeof chunk === 'function') return target.end(undefined, undefined, chunk);
    if (!decided && chunk !== undefined && chunk !== null && !res.hasHeader('content-length')) {
      res.setHeader('Content-Length', Buffer.byteLength(chunk as Buffer));
    }
    decide(false);
    if (!stream) return end(chunk, encoding, callback);
    if (chunk !== undefined && chunk !== null) stream.end(chunk as Buffer);
    else stream.end();
    if (typeof callback === 'function') res.once('finish', callback as () => void);
    return res;
  };
}
