// Turns a worker's answer (JSON context `{"status":…,"headers":{…}}` plus body, one frame or a stream of frames)
// into the HTTP response: 1xx as informational responses, status and headers once, each body chunk written as it comes
// (the last one by end(), when the server ends the response).
import type { ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import { RrtsError } from '../errors.js';
import type { ReplyChunk, ReplySink } from '../worker/worker.js';

export class ResponseError extends RrtsError {
  constructor(message: string) {
    super('ERR_BAD_RESPONSE', message);
  }
}

interface ResponseContext {
  status: number;
  headers: Record<string, string[]>;
}

/** Decode a JSON response context (PHP sends flags 0x00 or 0x08). */
export function parseResponseContext(bytes: Buffer): ResponseContext {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new ResponseError(`worker sent a response context that is not JSON: ${bytes.subarray(0, 120).toString('utf8')}`);
  }
  if (parsed === null || typeof parsed !== 'object') throw new ResponseError('worker sent a response context that is not a JSON object');
  const { status, headers } = parsed as { status?: unknown; headers?: unknown };
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 599) {
    throw new ResponseError(`unknown status code from worker: ${JSON.stringify(status)}`);
  }
  const out: Record<string, string[]> = {};
  if (headers && typeof headers === 'object' && !Array.isArray(headers)) {
    for (const name of Object.keys(headers)) {
      const values = headerValues((headers as Record<string, unknown>)[name]);
      if (values.length > 0 && isHeaderName(name)) out[name] = values;
    }
  }
  return { status, headers: out };
}

/** RoadRunner wants a list of strings; numbers and a bare string are accepted too (lenient), anything else dropped. */
function headerValues(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (!Array.isArray(value)) return [];
  // The usual list of strings is used as it is.
  if (value.every((v) => typeof v === 'string')) return value as string[];
  return value.filter((v): v is string | number => typeof v === 'string' || typeof v === 'number').map(String);
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
function isHeaderName(name: string): boolean {
  return TOKEN.test(name);
}

const CONNECTION_HEADERS = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

export class ResponseWriter implements ReplySink {
  private statusSent = false;
  /** The last frame's body: end() writes it, with the head when it is a whole answer (one socket write). */
  private lastBody: Buffer | null = null;
  bytesWritten = 0;
  status = 0;
  /** An HTTP/2 response (Http2ServerResponse has `stream`). */
  private readonly http2: boolean;

  constructor(
    private readonly res: ServerResponse | Http2ServerResponse,
    private readonly isHead = false,
  ) {
    this.http2 = 'stream' in res;
  }

  get headersSent(): boolean {
    return this.statusSent;
  }

  chunk(reply: ReplyChunk): void {
    if (!this.statusSent && reply.context.length > 0) {
      const ctx = parseResponseContext(reply.context);
      if (ctx.status < 200) {
        this.informational(ctx);
        if (reply.body.length > 0) throw new ResponseError(`worker sent a body with informational status ${ctx.status}`);
        return;
      }
      this.head(ctx, reply);
    }
    if (!this.statusSent) {
      if (reply.body.length === 0 && reply.more) return; // nothing to send yet
      throw new ResponseError('worker sent a body before any status');
    }
    const body = reply.body;
    if (this.res.destroyed) return;
    if (!reply.more) {
      this.lastBody = body;
      this.bytesWritten += body.length;
    } else if (body.length > 0) {
      (this.res as ServerResponse).write(body);
      this.bytesWritten += body.length;
    }
  }

  /** The job is over: end the response, with the last frame's body. */
  end(): void {
    const body = this.lastBody;
    this.lastBody = null;
    if (this.res.writableEnded) return;
    if (body !== null && body.length > 0 && !this.res.destroyed) (this.res as ServerResponse).end(body);
    else this.res.end();
  }

  private informational(ctx: ResponseContext): void {
    if (ctx.status === 103) {
      // Node only sends hints found under lower-case names (it looks for `link`).
      const hints: Record<string, string[]> = {};
      for (const [name, values] of Object.entries(ctx.headers)) hints[name.toLowerCase()] = values;
      this.res.writeEarlyHints(hints);
    }
    else if (ctx.status === 100) this.res.writeContinue();
    else if (ctx.status === 102 && 'writeProcessing' in this.res) this.res.writeProcessing();
    // other 1xx codes have no Node API; they are dropped
  }

  private head(ctx: ResponseContext, reply: ReplyChunk): void {
    const res = this.res;
    for (const name of Object.keys(ctx.headers)) {
      const values = ctx.headers[name]!;
      const lower = name.toLowerCase();
      if (lower === 'trailer') continue; // trailers are not supported; never announce them
      if (this.http2 && CONNECTION_HEADERS.has(lower)) continue; // illegal in HTTP/2: Node would throw
      res.setHeader(name, values.length === 1 ? values[0]! : values);
    }
    // A whole answer in one frame gets a Content-Length instead of chunked encoding.
    const bodiless = ctx.status === 204 || ctx.status === 304 || (this.isHead && reply.body.length === 0);
    if (!reply.more && !bodiless && !res.hasHeader('content-length') && !res.hasHeader('transfer-encoding')) {
      res.setHeader('Content-Length', reply.body.length);
    }
    res.statusCode = ctx.status;
    this.status = ctx.status;
    // A stream's head goes out at once; a whole answer leaves with its body in one end().
    if (reply.more) (res as ServerResponse).flushHeaders(); // Http2ServerResponse has it too (untyped)
    this.statusSent = true;
  }
}
