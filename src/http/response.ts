// Turns a worker's answer (JSON context `{"status":…,"headers":{…}}` plus body, one frame or a stream of frames)
// into the HTTP response: 1xx as informational responses, status and headers once, each body chunk written as it comes
// (the last one by end(), when the server ends the response). The worker's framing headers (Content-Length,
// Transfer-Encoding, Connection) are applied the way Go's net/http applies a handler's, and its body is held to the
// Content-Length it declared (docs/http.md, "Answers from the worker").
import type { ServerResponse } from 'node:http';
import http2, { type Http2ServerResponse } from 'node:http2';
import type { Logger } from 'pino';
import { AnswerCutError, ResponseError } from '../errors.js';
import type { ReplyChunk, ReplySink } from '../worker/worker.js';
import type { AnyRequest, AnyResponse } from './middleware/types.js';

interface ResponseContext {
  status: number;
  headers: Record<string, string[]>;
}

/**
 * The last context that could be shared, and its bytes: an app answers most requests with the same context bytes
 * (the same status and headers), and a compare costs far less than JSON.parse (callgrind: ~6,000 instructions for
 * a one-header context). Shared only when nothing of it reaches a response as an object: a status of 200 or more,
 * one value per header, no header head() treats apart. Frozen all the same.
 */
let sharedBytes: Buffer | null = null;
let sharedContext: ResponseContext | null = null;
/** Longer contexts are not kept (a big one is rarely repeated byte for byte). */
const SHARED_CONTEXT_MAX = 2048;

/** Decode a JSON response context (PHP sends flags 0x00 or 0x08). */
export function parseResponseContext(bytes: Buffer): ResponseContext {
  if (sharedBytes !== null && bytes.equals(sharedBytes)) return sharedContext!;
  const ctx = decodeResponseContext(bytes);
  if (bytes.length <= SHARED_CONTEXT_MAX && shareable(ctx)) {
    for (const name in ctx.headers) Object.freeze(ctx.headers[name]);
    Object.freeze(ctx.headers);
    sharedContext = Object.freeze(ctx);
    sharedBytes = Buffer.from(bytes); // a copy: the frame's chunk is not kept alive for it
  }
  return ctx;
}

function shareable(ctx: ResponseContext): boolean {
  if (ctx.status < 200) return false;
  const headers = ctx.headers;
  for (const name in headers) {
    if (headers[name]!.length !== 1) return false;
    if (SPECIAL_NAME_LENGTH[name.length] === 1 && SPECIAL_NAMES.has(name.toLowerCase())) return false;
  }
  return true;
}

function decodeResponseContext(bytes: Buffer): ResponseContext {
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
  return { status, headers: validHeaders(headers) };
}

/**
 * The worker's headers object itself when every entry is a non-empty list of strings under a token name (what the
 * SDK sends), else a copy with the lenient values converted and the others left out.
 */
function validHeaders(headers: unknown): Record<string, string[]> {
  if (!headers || typeof headers !== 'object' || Array.isArray(headers)) return {};
  const given = headers as Record<string, unknown>;
  // for-in over JSON.parse's object: its own keys in Object.keys' order (the prototype has no enumerable key), no array.
  for (const name in given) {
    if (!isStringList(given[name]) || !isHeaderName(name) || name === '__proto__') return copyValidHeaders(given);
  }
  return given as Record<string, string[]>;
}

function isStringList(value: unknown): boolean {
  if (!Array.isArray(value) || value.length === 0) return false;
  for (const v of value) if (typeof v !== 'string') return false;
  return true;
}

/** The headers that can be sent, values as lists of strings; a `__proto__` header is lost as a plain object loses it. */
function copyValidHeaders(headers: Record<string, unknown>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const name of Object.keys(headers)) {
    const values = headerValues(headers[name]);
    if (values.length > 0 && isHeaderName(name)) out[name] = values;
  }
  return out;
}

/** RoadRunner wants a list of strings; numbers and a bare string are accepted too (lenient), anything else dropped. */
function headerValues(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (!Array.isArray(value)) return [];
  // The usual list of strings is used as it is.
  if (value.every((v) => typeof v === 'string')) return value;
  return value.filter((v): v is string | number => typeof v === 'string' || typeof v === 'number').map(String);
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
function isHeaderName(name: string): boolean {
  return TOKEN.test(name);
}

const CONNECTION_HEADERS = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);
/** The names head() treats apart: Trailer, the framing headers and HTTP/2's connection headers. */
const SPECIAL_NAMES = new Set(['trailer', 'content-length', ...CONNECTION_HEADERS]);
/** 1 at the lengths of SPECIAL_NAMES. */
const SPECIAL_NAME_LENGTH = new Uint8Array(32);
for (const name of SPECIAL_NAMES) SPECIAL_NAME_LENGTH[name.length] = 1;

/** Go's strconv.ParseInt(v, 10, 64) >= 0, as (*response).WriteHeader reads a handler's Content-Length; -1 if invalid. */
export function parseContentLength(value: string): number {
  if (!/^[+-]?[0-9]+$/.test(value)) return -1;
  const n = BigInt(value);
  return n < 0n || n > 0x7fffffffffffffffn ? -1 : Number(n);
}

/** Connection, Content-Length and Transfer-Encoding as the worker sent them (every value, in order). */
interface FramingHeaders {
  connection: string[] | null;
  contentLength: string[] | null;
  transferEncoding: string[] | null;
}

/** The framing of an answer without any of the three headers (most answers); never written to. */
const NO_FRAMING: Readonly<FramingHeaders> = Object.freeze({ connection: null, contentLength: null, transferEncoding: null });

export class ResponseWriter implements ReplySink {
  private statusSent = false;
  /** The last frame's body: end() writes it, with the head when it is a whole answer (one socket write). */
  private lastBody: Buffer | null = null;
  bytesWritten = 0;
  status = 0;
  /** An HTTP/2 response (Http2ServerResponse has `stream`). */
  private readonly http2: boolean;
  private readonly isHead: boolean;
  /** The Content-Length the worker declared (valid ones only), -1 without: the body is held to it. */
  private declaredLength = -1;
  /** The status allows a body and the request is not HEAD: the declared length is enforced. */
  private bodyCounts = false;
  /** The body overran the declared length: the answer was ended early, later frames are dropped. */
  private cut = false;
  private workerPid = 0;
  /** Headers the worker named in its `Trailer` header: sent after the body, as RoadRunner moves them to Go's trailers. */
  private trailers: Record<string, string[]> | null = null;

  constructor(
    private readonly res: AnyResponse,
    private readonly req: AnyRequest,
    private readonly log: Logger,
  ) {
    this.http2 = 'stream' in res;
    this.isHead = req.method === 'HEAD';
  }

  get headersSent(): boolean {
    return this.statusSent;
  }

  chunk(reply: ReplyChunk, workerPid = 0): void {
    if (this.cut) return;
    this.workerPid = workerPid;
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
    const body = this.withinDeclaredLength(reply.body);
    if (this.res.destroyed) return;
    if (!reply.more) {
      this.lastBody = body;
      this.bytesWritten += body.length;
    } else if (body.length > 0) {
      (this.res as ServerResponse).write(body);
      this.bytesWritten += body.length;
    }
    if (this.cut && reply.more) {
      this.finish(null, true);
      throw new AnswerCutError(`worker ${workerPid}: the answer was cut at its Content-Length of ${this.declaredLength}`);
    }
  }

  /** The job is over: end the response, with the last frame's body. */
  end(): void {
    const body = this.lastBody;
    this.lastBody = null;
    if (this.res.writableEnded) return;
    const short = this.bodyCounts && this.declaredLength >= 0 && this.bytesWritten < this.declaredLength;
    if (short) {
      this.log.error(
        { pid: this.workerPid, request: this.where() },
        `worker ${this.workerPid} sent ${this.bytesWritten} body bytes for a Content-Length of ${this.declaredLength}: the connection was closed after the short body`,
      );
    }
    if (this.trailers && this.bodyCounts && !this.cut && !short && !this.res.destroyed) this.res.addTrailers(this.trailers);
    this.finish(body, this.cut || short, short);
  }

  /**
   * Ends the response with `body`. `close`: the connection is not reused (Go does not reuse it after a body that
   * did not match its Content-Length). `broken`: the body is short; HTTP/2 resets the stream instead of ending it.
   */
  private finish(body: Buffer | null, close: boolean, broken = false): void {
    const res = this.res;
    const hasBody = body !== null && body.length > 0 && !res.destroyed;
    if (this.http2) {
      if (broken) {
        if (hasBody) (res as Http2ServerResponse).write(body);
        (res as Http2ServerResponse).stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      } else if (hasBody) (res as Http2ServerResponse).end(body);
      else res.end();
      return;
    }
    const http1 = res as ServerResponse;
    if (close) {
      if (!http1.headersSent) {
        // The head says Connection: close; a worker's other Connection value would make Node keep the connection.
        http1.shouldKeepAlive = false;
        if (!/close/i.test(String(http1.getHeader('connection') ?? 'close'))) http1.setHeader('Connection', 'close');
      }
      // Once the answer is out (the gzip middleware ends it later): the client sees the end of what was sent, then
      // the close, never a next answer.
      const socket = http1.socket;
      http1.once('finish', () => socket?.destroySoon());
    }
    if (hasBody) http1.end(body);
    else http1.end();
  }

  /** The part of `body` that fits in the declared Content-Length; past it the answer is cut (logged once). */
  private withinDeclaredLength(body: Buffer): Buffer {
    if (!this.bodyCounts || this.declaredLength < 0) return body;
    const room = this.declaredLength - this.bytesWritten;
    if (body.length <= room) return body;
    this.cut = true;
    this.log.warn(
      { pid: this.workerPid, request: this.where() },
      `worker ${this.workerPid} sent more body than its Content-Length of ${this.declaredLength}: the answer was cut there and the connection closed`,
    );
    return body.subarray(0, room);
  }

  private where(): string {
    return `${this.req.method} ${this.req.url}`;
  }

  private informational(ctx: ResponseContext): void {
    if (ctx.status === 103) {
      // Node only sends hints found under lower-case names (it looks for `link`).
      const hints: Record<string, string[]> = {};
      for (const [name, values] of Object.entries(ctx.headers)) hints[name.toLowerCase()] = values;
      this.res.writeEarlyHints(hints);
    } else if (ctx.status === 100) this.res.writeContinue();
    else if (ctx.status === 102 && 'writeProcessing' in this.res) (this.res as ServerResponse).writeProcessing();
    // other 1xx codes have no Node API; they are dropped
  }

  private head(ctx: ResponseContext, reply: ReplyChunk): void {
    const res = this.res;
    const headers = ctx.headers;
    let framing: FramingHeaders | null = null;
    let trailerLists: string[] | null = null;
    for (const name in headers) {
      const values = headers[name]!;
      // Only a name as long as one of these is lower-cased: most are not, and each lower-casing is a new string.
      const lower = SPECIAL_NAME_LENGTH[name.length] === 1 ? name.toLowerCase() : '';
      if (lower === '') res.setHeader(name, values.length === 1 ? values[0]! : values);
      else if (lower === 'trailer') {
        // RoadRunner announces nothing: the headers it names come after the body (moved there below)
        trailerLists = trailerLists === null ? values : [...trailerLists, ...values];
      } else if (lower === 'content-length' || lower === 'transfer-encoding' || lower === 'connection') {
        framing ??= { connection: null, contentLength: null, transferEncoding: null };
        const key = lower === 'content-length' ? 'contentLength' : lower === 'transfer-encoding' ? 'transferEncoding' : 'connection';
        const before = framing[key];
        framing[key] = before === null ? values : [...before, ...values];
      } else if (this.http2 && CONNECTION_HEADERS.has(lower))
        continue; // illegal in HTTP/2: Node would throw
      else res.setHeader(name, values.length === 1 ? values[0]! : values);
    }
    if (trailerLists) this.moveToTrailers(trailerLists, headers);
    this.applyFraming(ctx.status, framing ?? NO_FRAMING, reply);
    res.statusCode = ctx.status;
    this.status = ctx.status;
    // A stream's head goes out at once; a whole answer leaves with its body in one end().
    if (reply.more) (res as ServerResponse).flushHeaders(); // Http2ServerResponse has it too (untyped)
    this.statusSent = true;
  }

  /**
   * The headers named in the worker's `Trailer` header(s) (comma lists, trimmed; matched by the exact name, as
   * RoadRunner's handler finds them) leave the head for the trailer section.
   */
  private moveToTrailers(lists: string[], headers: Record<string, string[]>): void {
    for (const list of lists) {
      for (const item of list.split(',')) {
        const name = item.replace(/^[\t ]+|[\t ]+$/g, '');
        if (name === '' || !Object.hasOwn(headers, name) || !this.res.hasHeader(name)) continue;
        (this.trailers ??= {})[name] = headers[name]!;
        this.res.removeHeader(name);
      }
    }
  }

  /** Go's rules for a handler's Content-Length, Transfer-Encoding and Connection ((*response).WriteHeader, chunkWriter.writeHeader). */
  private applyFraming(status: number, framing: FramingHeaders, reply: ReplyChunk): void {
    const res = this.res;
    const pid = this.workerPid;
    const bodyAllowed = status !== 204 && status !== 304;
    this.bodyCounts = bodyAllowed && !this.isHead;
    if (!bodyAllowed) {
      // Go drops these on 204 and 304 (and Content-Type on 304): such answers never have a body.
      if (status === 304) res.removeHeader('content-type');
      return;
    }
    const declaredText = framing.contentLength?.[0];
    let declared = -1;
    if (declaredText !== undefined) {
      declared = parseContentLength(declaredText);
      if (declared < 0) {
        this.log.warn({ pid, request: this.where() }, `worker ${pid} sent an invalid Content-Length ${JSON.stringify(declaredText)}: it was dropped`);
      }
    }
    this.declaredLength = declared;
    let sendLength = declared >= 0;
    const codings = this.http2 ? null : framing.transferEncoding;
    const te = codings?.[0]?.trim().toLowerCase() ?? '';
    let transferEncoding: string | null = null;
    let closeAfter = false;
    if (sendLength && codings !== null && te !== 'identity') {
      // Go keeps the Transfer-Encoding and drops the Content-Length (still holding the body to it).
      this.log.warn(
        { pid, request: this.where() },
        `worker ${pid} sent both Transfer-Encoding ${JSON.stringify(codings.join(', '))} and Content-Length ${declared}: the Content-Length was dropped`,
      );
      sendLength = false;
    }
    if (this.isHead || sendLength || codings === null || this.req.httpVersion === '1.0') {
      // the worker's Transfer-Encoding is dropped: HEAD has no body, a Content-Length frames it, HTTP/1.0 has no chunks
    } else if (te === 'identity') {
      // Go: no chunks, the body ends with the connection (the Server-Sent Events setup)
      transferEncoding = 'identity';
      closeAfter = true;
    } else {
      const joined = codings.join(', ');
      transferEncoding = /(?:^|,)\s*chunked\s*$/i.test(joined) ? joined : `${joined}, chunked`;
    }
    if (sendLength) res.setHeader('Content-Length', declared);
    else if (transferEncoding !== null) res.setHeader('Transfer-Encoding', transferEncoding);
    else if (this.trailers && !this.http2 && !this.isHead && this.req.httpVersion !== '1.0') {
      // trailers need chunks (Go sets no Content-Length when a handler has trailers)
      res.setHeader('Transfer-Encoding', 'chunked');
    } else if (!this.trailers && !reply.more && !(this.isHead && reply.body.length === 0) && !res.hasHeader('content-length')) {
      // A whole answer in one frame gets a Content-Length instead of chunked encoding.
      res.setHeader('Content-Length', reply.body.length);
    }
    const connection = framing.connection;
    if (this.http2) {
      // Go's HTTP/2 server takes a handler's `Connection: close` as a GOAWAY: running streams finish, then it closes.
      if (connection?.[0] === 'close') (res as Http2ServerResponse).stream.session?.close();
      return;
    }
    const http1 = res as ServerResponse;
    const wantsClose = connection !== null && connection.some((v) => /(?:^|[\s,])close(?:$|[\s,])/i.test(v));
    if (wantsClose || closeAfter) {
      // Node then writes Connection: close and closes the connection after the answer, as Go does.
      http1.shouldKeepAlive = false;
      if (wantsClose) http1.setHeader('Connection', connection);
    } else if (connection !== null && http1.shouldKeepAlive) {
      http1.setHeader('Connection', connection); // when the connection closes anyway, Go writes Connection: close instead
    }
  }
}
