// The response object of rrts's own HTTP/1.1 path: the part of node's ServerResponse the middleware and response.ts
// use (headers, writeHead, write, end, 1xx, trailers), framed as node frames it, with Go's Connection headers; the
// head and a whole body leave in one socket write, a chunk of a stream in one writev.
import { EventEmitter } from 'node:events';
import { STATUS_CODES, type OutgoingHttpHeaders } from 'node:http';
import type net from 'node:net';
import { writeWhole } from '../../native/direct-write.js';
import { canonicalHeaderKey } from '../headers.js';
import type { H1Request } from './request.js';

type HeaderValue = string | number | readonly string[];

/** What the response tells its connection. */
export interface ResponseSink {
  /** The whole answer has been handed to the socket; `close`: the connection is not reused. */
  responseFinished(response: H1Response, close: boolean): void;
}

let dateSecond = -1;
let dateLine = '';

/** `Date: ...\r\n`, made once a second (node:http caches it the same way). */
export function currentDateLine(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateLine = `Date: ${new Date(now).toUTCString()}\r\n`;
  }
  return dateLine;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** node's checkInvalidHeaderChar: a value may not hold CR, LF or other controls (no response splitting). */
const INVALID_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
const CHUNKED = /(?:^|\W)chunked(?:$|\W)/i;
const CLOSE = /(?:^|\W)close(?:$|\W)/i;
const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');
const CRLF = Buffer.from('\r\n', 'latin1');
/** Bodies up to this size are copied behind their head into one buffer (one write); bigger ones go by writev. */
const COPY_LIMIT = 16 * 1024;

/** Header slots made with each response: room for four headers before the array grows. */
const FIELD_SLOTS = 8;

/** Header names compared as HTTP compares them: ASCII letters in any case (names are tokens: ASCII only). */
function sameFieldName(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  if (a === b) return true;
  for (let i = 0; i < a.length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const lx = x | 0x20;
    if (lx !== (y | 0x20) || lx < 97 || lx > 122) return false;
  }
  return true;
}

/** `HTTP/1.1 <status> <reason>\r\n` for a status without a message of its own, made once per status. */
const statusLines: string[] = [];

function statusLine(status: number): string {
  const cached = statusLines[status];
  if (cached !== undefined) return cached;
  const line = `HTTP/1.1 ${status} ${STATUS_CODES[status] || `status code ${status}`}\r\n`;
  if (Number.isInteger(status) && status >= 100 && status <= 999) statusLines[status] = line;
  return line;
}

function invalidHeader(message: string, code: string): TypeError {
  return Object.assign(new TypeError(message), { code });
}

function checkHeader(name: string, value: HeaderValue): void {
  if (!TOKEN.test(name)) throw invalidHeader(`Header name must be a valid HTTP token ["${name}"]`, 'ERR_INVALID_HTTP_TOKEN');
  if (typeof value === 'number') return;
  if (value === undefined) throw invalidHeader(`Invalid value "undefined" for header "${name}"`, 'ERR_HTTP_INVALID_HEADER_VALUE');
  if (typeof value === 'string') {
    if (INVALID_VALUE.test(value)) throw invalidHeader(`Invalid character in header content ["${name}"]`, 'ERR_INVALID_CHAR');
    return;
  }
  for (const v of value) {
    if (INVALID_VALUE.test(String(v))) throw invalidHeader(`Invalid character in header content ["${name}"]`, 'ERR_INVALID_CHAR');
  }
}

function toBuffer(chunk: unknown, encoding: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (typeof chunk === 'string') return Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw invalidHeader('The "chunk" argument must be of type string or an instance of Buffer or Uint8Array', 'ERR_INVALID_ARG_TYPE');
}

export class H1Response extends EventEmitter {
  statusCode = 200;
  statusMessage = '';
  /** The connection may carry another request after this answer; response.ts and the drain clear it. */
  shouldKeepAlive: boolean;
  sendDate = true;
  /** writeHead() was called or the head is out: the headers can no longer change. */
  headersSent = false;
  writableEnded = false;
  writableFinished = false;
  destroyed = false;
  /**
   * The headers: name as set, value; two slots a header, in the order set, `fieldSlots` of them used. An array
   * made at its usual size, rather than a dictionary and a pair per header: it is made for every answer.
   */
  private fields: Array<string | HeaderValue | undefined> = new Array<string | HeaderValue | undefined>(FIELD_SLOTS);
  private fieldSlots = 0;
  /** A header's name is an array index ("123"): the head lists such names first, as a dictionary of them would. */
  private indexNames = false;
  private headWritten = false;
  private chunked = false;
  private hasBody = true;
  /** The connection closes after this answer. */
  private last = false;
  private trailerLines = '';
  private closeEmitted = false;

  constructor(
    readonly req: H1Request,
    readonly socket: net.Socket,
    private readonly sink: ResponseSink,
    keepAlive: boolean,
  ) {
    super();
    this.shouldKeepAlive = keepAlive;
  }

  setHeader(name: string, value: HeaderValue): this {
    if (this.headersSent) throw invalidHeader('Cannot set headers after they are sent to the client', 'ERR_HTTP_HEADERS_SENT');
    checkHeader(name, value);
    const fields = this.fields;
    const at = this.fieldIndex(name);
    if (at >= 0) {
      fields[at] = name;
      fields[at + 1] = value;
      return this;
    }
    const n = this.fieldSlots;
    fields[n] = name;
    fields[n + 1] = value;
    this.fieldSlots = n + 2;
    const first = name.charCodeAt(0);
    if (first >= 48 && first <= 57) this.indexNames = true;
    return this;
  }

  getHeader(name: string): HeaderValue | undefined {
    const at = this.fieldIndex(name);
    return at < 0 ? undefined : this.fields[at + 1];
  }

  hasHeader(name: string): boolean {
    return this.fieldIndex(name) >= 0;
  }

  removeHeader(name: string): void {
    if (this.headersSent) throw invalidHeader('Cannot remove headers after they are sent to the client', 'ERR_HTTP_HEADERS_SENT');
    const at = this.fieldIndex(name);
    if (at < 0) return;
    const fields = this.fields;
    const n = this.fieldSlots;
    for (let i = at; i + 2 < n; i++) fields[i] = fields[i + 2];
    fields[n - 2] = undefined;
    fields[n - 1] = undefined;
    this.fieldSlots = n - 2;
  }

  getHeaders(): Record<string, HeaderValue> {
    const out: Record<string, HeaderValue> = {};
    const fields = this.fields;
    for (let i = 0; i < this.fieldSlots; i += 2) out[(fields[i] as string).toLowerCase()] = fields[i + 1] as HeaderValue;
    return out;
  }

  getHeaderNames(): string[] {
    return Object.keys(this.getHeaders());
  }

  /** The slot of a header's name (any case), or -1. */
  private fieldIndex(name: string): number {
    const fields = this.fields;
    for (let i = 0; i < this.fieldSlots; i += 2) if (sameFieldName(fields[i] as string, name)) return i;
    return -1;
  }

  writeHead(statusCode: number, reasonOrHeaders?: string | OutgoingHttpHeaders, maybeHeaders?: OutgoingHttpHeaders): this {
    if (this.headersSent) throw invalidHeader('Cannot write headers after they are sent to the client', 'ERR_HTTP_HEADERS_SENT');
    let headers = maybeHeaders;
    if (typeof reasonOrHeaders === 'string') this.statusMessage = reasonOrHeaders;
    else headers = reasonOrHeaders;
    this.statusCode = statusCode;
    if (headers) {
      for (const name of Object.keys(headers)) {
        const value = headers[name];
        if (value !== undefined) this.setHeader(name, value);
      }
    }
    this.headersSent = true;
    return this;
  }

  /** Send the head now (a stream's head goes out before its first chunk). */
  flushHeaders(): void {
    if (this.headWritten || this.destroyed) return;
    this.socket.write(this.headText(-1), 'latin1');
  }

  write(chunk: unknown, encoding?: unknown, callback?: unknown): boolean {
    if (typeof encoding === 'function') callback = encoding;
    if (this.writableEnded || this.destroyed) return false;
    const head = this.headWritten ? '' : this.headText(-1);
    const body = toBuffer(chunk, encoding);
    const socket = this.socket;
    if (!this.hasBody || body.length === 0) {
      if (head !== '') socket.write(head, 'latin1');
      if (typeof callback === 'function') process.nextTick(callback);
      return true;
    }
    socket.cork();
    if (head !== '') socket.write(head, 'latin1');
    if (this.chunked) socket.write(`${body.length.toString(16)}\r\n`, 'latin1');
    socket.write(body);
    if (this.chunked) socket.write(CRLF);
    socket.uncork();
    if (typeof callback === 'function') process.nextTick(callback);
    return !socket.writableNeedDrain;
  }

  end(chunk?: unknown, encoding?: unknown, callback?: unknown): this {
    if (typeof chunk === 'function') {
      callback = chunk;
      chunk = undefined;
    } else if (typeof encoding === 'function') callback = encoding;
    if (this.writableEnded) return this;
    this.writableEnded = true;
    if (!this.destroyed) {
      const body = chunk === undefined || chunk === null ? null : toBuffer(chunk, encoding);
      if (!this.headWritten) this.endWithHead(body);
      else this.endAfterHead(body);
    }
    if (typeof callback === 'function') process.nextTick(callback);
    if (this.destroyed) return this; // 'close' was emitted when the connection went
    this.writableFinished = true;
    this.emit('finish');
    this.emit('close');
    this.sink.responseFinished(this, this.last || !this.shouldKeepAlive);
    return this;
  }

  /** Head and whole body in one write. */
  private endWithHead(body: Buffer | null): void {
    const head = this.headText(body === null ? 0 : body.length);
    const socket = this.socket;
    const length = body !== null && this.hasBody ? body.length : 0;
    if (length === 0) {
      socket.write(this.chunked ? `${head}0\r\n${this.trailerLines}\r\n` : head, 'latin1');
      return;
    }
    if (this.chunked) {
      socket.cork();
      socket.write(`${head}${length.toString(16)}\r\n`, 'latin1');
      socket.write(body!);
      socket.write(`\r\n0\r\n${this.trailerLines}\r\n`, 'latin1');
      socket.uncork();
      return;
    }
    if (length > COPY_LIMIT) {
      // A big body is not worth a copy: head and body leave in one writev.
      socket.cork();
      socket.write(head, 'latin1');
      socket.write(body!);
      socket.uncork();
      return;
    }
    const out = Buffer.allocUnsafe(head.length + length);
    out.write(head, 0, 'latin1');
    out.set(body!, head.length);
    writeWhole(socket, out);
  }

  private endAfterHead(body: Buffer | null): void {
    const socket = this.socket;
    const length = body !== null && this.hasBody ? body.length : 0;
    if (!this.chunked) {
      if (length > 0) writeWhole(socket, body!);
      return;
    }
    const last = this.trailerLines === '' ? LAST_CHUNK : Buffer.from(`0\r\n${this.trailerLines}\r\n`, 'latin1');
    if (length === 0) {
      socket.write(last);
      return;
    }
    socket.cork();
    socket.write(`${length.toString(16)}\r\n`, 'latin1');
    socket.write(body!);
    socket.write(CRLF);
    socket.write(last);
    socket.uncork();
  }

  addTrailers(headers: Record<string, HeaderValue>): void {
    let lines = '';
    for (const name of Object.keys(headers)) {
      const value = headers[name]!;
      checkHeader(name, value);
      if (typeof value === 'object') for (const v of value) lines += `${name}: ${v}\r\n`;
      else lines += `${name}: ${value}\r\n`;
    }
    this.trailerLines += lines;
  }

  writeContinue(): void {
    this.req.continueSent = true;
    this.writeInformational('HTTP/1.1 100 Continue\r\n\r\n');
  }

  writeProcessing(): void {
    this.writeInformational('HTTP/1.1 102 Processing\r\n\r\n');
  }

  /** 103 with the hints as header lines, one per value (as Go writes a handler's 1xx headers). */
  writeEarlyHints(hints: Record<string, string | string[]>, callback?: () => void): void {
    let head = 'HTTP/1.1 103 Early Hints\r\n';
    for (const name of Object.keys(hints)) {
      const value = hints[name]!;
      checkHeader(name, value);
      const canonical = canonicalHeaderKey(name);
      if (Array.isArray(value)) for (const v of value) head += `${canonical}: ${v}\r\n`;
      else head += `${canonical}: ${value}\r\n`;
    }
    this.writeInformational(head + '\r\n');
    if (callback) process.nextTick(callback);
  }

  private writeInformational(text: string): void {
    if (this.headWritten || this.destroyed) return;
    this.socket.write(text, 'latin1');
  }

  destroy(): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.socket.destroy();
    return this;
  }

  /** The connection closed under this response. */
  closedUnder(): void {
    if (this.writableFinished || this.closeEmitted) return;
    this.closeEmitted = true;
    this.destroyed = true;
    this.emit('close');
  }

  /**
   * The status line and headers, framing chosen as node's ServerResponse chooses it (`knownLength` >= 0: a whole
   * body of that many bytes follows) and Go's Connection headers: none on a kept HTTP/1.1 connection, `close` when
   * it is not kept, `keep-alive` on a kept HTTP/1.0 one.
   */
  private headText(knownLength: number): string {
    this.headWritten = true;
    this.headersSent = true;
    const status = this.statusCode;
    const req = this.req;
    let head = this.statusMessage === '' ? statusLine(status) : `HTTP/1.1 ${status} ${this.statusMessage}\r\n`;
    const fields = this.fields;
    const order = this.indexNames ? this.indexNamesFirst() : null;
    // The headers the framing below looks at are noted in the same pass (sameFieldName compares lengths first).
    let hasDate = false;
    let hasLength = false;
    let te: HeaderValue | undefined;
    let connection: HeaderValue | undefined;
    for (let k = 0; k < this.fieldSlots; k += 2) {
      const i = order === null ? k : order[k / 2]!;
      const name = fields[i] as string;
      const value = fields[i + 1] as HeaderValue;
      if (typeof value === 'object') for (const v of value) head += `${name}: ${v}\r\n`;
      else head += `${name}: ${value}\r\n`;
      if (sameFieldName(name, 'date')) hasDate = true;
      else if (sameFieldName(name, 'content-length')) hasLength = true;
      else if (sameFieldName(name, 'transfer-encoding')) te = value;
      else if (sameFieldName(name, 'connection')) connection = value;
    }
    if (this.sendDate && !hasDate) head += currentDateLine();
    const http10 = req.httpVersionMinor === 0;
    this.hasBody = req.method !== 'HEAD' && status !== 204 && status !== 304 && status >= 200;
    if (te !== undefined) {
      this.chunked = this.hasBody && CHUNKED.test(String(te));
      if (!this.chunked && !hasLength) this.last = true;
    } else if (!hasLength && this.hasBody) {
      if (http10) this.last = true;
      else if (knownLength >= 0 && this.trailerLines === '') head += `Content-Length: ${knownLength}\r\n`;
      else {
        head += 'Transfer-Encoding: chunked\r\n';
        this.chunked = true;
      }
    }
    if (connection !== undefined) {
      if (CLOSE.test(String(connection))) this.last = true;
      else if (!this.shouldKeepAlive) this.last = true;
    } else if (!this.shouldKeepAlive || this.last) {
      this.last = true;
      head += 'Connection: close\r\n';
    } else if (http10) head += 'Connection: keep-alive\r\n';
    return head + '\r\n';
  }

  /**
   * The header slots in the order a dictionary keyed by their lower-case names lists them (the order of the head
   * before the headers were kept in an array, and node's): array-index names first, ascending, then the others.
   */
  private indexNamesFirst(): number[] {
    const byName = Object.create(null) as Record<string, number>;
    for (let i = 0; i < this.fieldSlots; i += 2) byName[(this.fields[i] as string).toLowerCase()] = i;
    const order: number[] = [];
    for (const lower in byName) order.push(byName[lower]!);
    return order;
  }
}
