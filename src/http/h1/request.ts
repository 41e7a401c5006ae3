// The request object of rrts's own HTTP/1.1 path: the part of node's IncomingMessage the middleware, request.ts and
// response.ts use, over a parsed RequestHead. The header object is only built when something reads it.
import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import type net from 'node:net';
import type { RequestHead } from './parser.js';

/** What the request asks of its connection: stop or restart reading the socket, send 100 Continue. */
export interface BodySource {
  bodyWanted(request: H1Request): void;
  bodyPaused(request: H1Request): void;
}

/** Buffered body bytes beyond which the connection stops reading until the body is consumed. */
export const BODY_BUFFER_LIMIT = 64 * 1024;

// Node's IncomingMessage keeps the first of these when a request repeats them (matchKnownFields in _http_incoming).
const FIRST_WINS = new Set([
  'age',
  'authorization',
  'content-length',
  'content-type',
  'etag',
  'expires',
  'from',
  'host',
  'if-modified-since',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'referer',
  'retry-after',
  'server',
  'user-agent',
]);

export class H1Request extends EventEmitter {
  readonly method: string;
  url: string;
  readonly httpVersion: string;
  readonly httpVersionMajor = 1;
  readonly httpVersionMinor: number;
  /** name, value, ... as sent; the middleware may append (addRequestHeader). */
  readonly rawHeaders: string[];
  /** The whole body has been handed out ('end' was emitted), or the request has none. */
  readableEnded: boolean;
  /** The body has been read from the socket to its end. */
  private received: boolean;
  private flowing = false;
  private explicitlyPaused = false;
  private buffered: Buffer[] | null = null;
  private bufferedBytes = 0;
  private headerObject: IncomingHttpHeaders | null = null;
  private distinctObject: Record<string, string[]> | null = null;
  /** The answer came before the body was read: later body bytes are dropped. */
  discarding = false;
  /** 100 Continue went out (or is not needed). */
  continueSent: boolean;
  aborted = false;

  constructor(
    readonly head: RequestHead,
    readonly socket: net.Socket,
    private readonly source: BodySource,
    /** The request-target the worker sees: the head's, or an absolute URI for CONNECT. */
    target: string,
  ) {
    super();
    this.method = head.method;
    this.url = target;
    this.httpVersionMinor = head.versionMinor;
    this.httpVersion = head.versionMinor === 0 ? '1.0' : '1.1';
    this.rawHeaders = head.rawHeaders;
    const noBody = head.contentLength === 0;
    this.received = noBody;
    this.readableEnded = noBody;
    this.continueSent = !head.expectContinue;
  }

  /** node's `headers`: lower-case names, repeated headers joined as IncomingMessage joins them. */
  get headers(): IncomingHttpHeaders {
    if (this.headerObject !== null) return this.headerObject;
    const out: Record<string, string | string[]> = {};
    const raw = this.rawHeaders;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i]!.toLowerCase();
      const value = raw[i + 1]!;
      const existing = out[name];
      if (existing === undefined) out[name] = name === 'set-cookie' ? [value] : value;
      else if (name === 'set-cookie') (existing as string[]).push(value);
      else if (name === 'cookie') out[name] = `${existing as string}; ${value}`;
      else if (!FIRST_WINS.has(name)) out[name] = `${existing as string}, ${value}`;
    }
    this.headerObject = out;
    return out;
  }

  /** node's `headersDistinct`: every value of each header, one per line. */
  get headersDistinct(): Record<string, string[]> {
    if (this.distinctObject !== null) return this.distinctObject;
    const out: Record<string, string[]> = {};
    const raw = this.rawHeaders;
    for (let i = 0; i + 1 < raw.length; i += 2) (out[raw[i]!.toLowerCase()] ??= []).push(raw[i + 1]!);
    this.distinctObject = out;
    return out;
  }

  /** The first value of a header (name in lower case) without building `headers`; '' when absent. */
  header(lower: string): string {
    const raw = this.rawHeaders;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i]!;
      if (name.length === lower.length && name.toLowerCase() === lower) return raw[i + 1]!;
    }
    return '';
  }

  get readableFlowing(): boolean {
    return this.flowing;
  }

  /** Start (or go on) handing out the body through 'data', then 'end'. */
  resume(): this {
    this.explicitlyPaused = false;
    if (this.readableEnded) return this;
    if (this.aborted) {
      // The client went before anyone read the body: a reader that comes later learns it now.
      this.emit('close');
      return this;
    }
    this.flowing = true;
    const buffered = this.buffered;
    if (buffered !== null) {
      this.buffered = null;
      this.bufferedBytes = 0;
      for (const chunk of buffered) this.emit('data', chunk);
    }
    if (this.received) {
      if (this.flowing) this.finishBody();
    } else this.source.bodyWanted(this);
    return this;
  }

  pause(): this {
    this.flowing = false;
    this.explicitlyPaused = true;
    if (!this.received) this.source.bodyPaused(this);
    return this;
  }

  /** The connection wants the socket paused: the body is not being consumed. */
  get backedUp(): boolean {
    return !this.received && !this.discarding && (this.explicitlyPaused || this.bufferedBytes > BODY_BUFFER_LIMIT);
  }

  /** Body bytes from the parser: a view of a read Node never reuses, or its copy of a read into the shared buffer. */
  pushBody(chunk: Buffer): void {
    if (this.discarding || this.aborted) return;
    if (this.flowing) {
      this.emit('data', chunk);
      return;
    }
    (this.buffered ??= []).push(chunk);
    this.bufferedBytes += chunk.length;
    if (this.bufferedBytes > BODY_BUFFER_LIMIT) this.source.bodyPaused(this);
  }

  /** The parser reached the end of the body. */
  endBody(): void {
    this.received = true;
    if (this.flowing && this.buffered === null) this.finishBody();
  }

  /** The client went away (or broke the protocol) before the body ended. */
  abort(): void {
    if (this.aborted || this.readableEnded) return;
    this.aborted = true;
    this.buffered = null;
    this.emit('aborted');
    this.emit('close');
  }

  private finishBody(): void {
    if (this.readableEnded) return;
    this.readableEnded = true;
    this.emit('end');
  }
}
