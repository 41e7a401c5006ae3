// A strict, incremental HTTP/1.x request parser over the socket's Buffers, following Go's net/http server at the
// edges (test/http/h1/corpus.ts names each rule where it differs from llhttp). Pure: no sockets.
import { H1ParseError } from '../../errors.js';
import type { H1ErrorCode } from './errors.js';

export { H1ParseError } from '../../errors.js';
export { H1_ERROR_STATUS, type H1ErrorCode } from './errors.js';

/** How the request-target is written (RFC 9112 §3.2). */
export type TargetForm = 'origin' | 'absolute' | 'authority' | 'asterisk';

export interface H1Limits {
  /** Bytes of the request line and header section together; Go's DefaultMaxHeaderBytes plus its 4096 of slack. */
  maxHeaderBytes?: number;
  /** Header lines allowed in one request; 0: no count limit beyond the bytes (as Go). */
  maxHeaderCount?: number;
}

export const DEFAULT_MAX_HEADER_BYTES = (1 << 20) + 4096;
/** Go's maxLineLength for a chunk-size line (chunk extensions included). */
export const MAX_CHUNK_LINE = 4096;
/** A trailer section fits the 4 KiB buffer Go peeks into (body.readTrailer). */
export const MAX_TRAILER_BYTES = 4096;

/** One parsed request head. Strings are latin1 decodes of the wire bytes, as node:http gives them. */
export class RequestHead {
  constructor(
    readonly method: string,
    /** The request-target exactly as sent. */
    readonly target: string,
    readonly targetForm: TargetForm,
    readonly versionMajor: number,
    readonly versionMinor: number,
    /** name, value, name, value, ...: names as sent, values without surrounding white space; node's rawHeaders. */
    readonly rawHeaders: string[],
    /** The Host header's value; '' when absent. */
    readonly host: string,
    /** Content-Length of the body; -1 when chunked. 0 for a request without either (Go: no body). */
    readonly contentLength: number,
    /** The connection may carry another request after this one (Go's shouldClose, inverted). */
    readonly keepAlive: boolean,
    /** `Expect: 100-continue` on HTTP/1.1 with a body to come: answer 100 Continue before reading it. */
    readonly expectContinue: boolean,
    /** An Expect header other than 100-continue: Go answers 417 Expectation Failed without calling the handler. */
    readonly expectUnsupported: boolean,
    /** Bytes of the request line and header section. */
    readonly headBytes: number,
  ) {}

  get chunked(): boolean {
    return this.contentLength === -1;
  }
}

export interface H1Handlers {
  /** A request head was parsed; its body (if any) follows through onBody. */
  onRequest(head: RequestHead): void;
  /**
   * Body bytes as they arrive (chunked framing removed). A view of execute()'s input (copy it to keep it past the
   * call), or a copy of executeTransient()'s.
   */
  onBody(chunk: Buffer): void;
  /** The request is complete. `trailers` as name, value pairs after a chunked body that had any, else null. */
  onRequestEnd(trailers: string[] | null): void;
  /** The input broke the protocol; nothing more is parsed. Answer `error.status` and close. */
  onError(error: H1ParseError): void;
}

const enum State {
  Head,
  Body,
  ChunkLine,
  ChunkData,
  ChunkDataEnd,
  Trailers,
  /** The request said it was the last (Connection: close, HTTP/1.0, CONNECT): later bytes are not requests. */
  Closed,
  Failed,
}

const enum TrailerScan {
  LineStart,
  LineStartCr,
  InLine,
  InLineCr,
}

// Scanning for the empty line that ends a header section, across reads.
const enum Scan {
  InLine,
  LineStart,
  LineStartCr,
}

/** RFC 9110 tchar: methods and header names. */
const TOKEN = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TOKEN[c.charCodeAt(0)] = 1;

/** Go's validHeaderValueByte: HTAB, SP, VCHAR and obs-text; no other control byte and no DEL. */
const VALUE = new Uint8Array(256);
for (let c = 0; c < 256; c++) VALUE[c] = c === 9 || (c >= 0x20 && c !== 0x7f) ? 1 : 0;

/** httpguts.ValidHostHeader's bytes. */
const HOST_HEADER = new Uint8Array(256);
for (const c of "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!$%&'()*+,-.:;=[]_~") HOST_HEADER[c.charCodeAt(0)] = 1;

/** Bytes below 0x80 that net/url leaves unescaped in a host (shouldEscape(c, encodeHost) is false). */
const URL_HOST = new Uint8Array(256);
for (const c of '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-._~!$&\'()*+,;=:[]<>"%') URL_HOST[c.charCodeAt(0)] = 1;
for (let c = 0x80; c < 256; c++) URL_HOST[c] = 1;

/** net/url's validUserinfo bytes. */
const USERINFO = new Uint8Array(256);
for (const c of "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-._:~!$&'()*+,;=%@") USERINFO[c.charCodeAt(0)] = 1;

const HEX = new Int8Array(256).fill(-1);
for (let c = 0; c < 10; c++) HEX[48 + c] = c;
for (let c = 0; c < 6; c++) {
  HEX[65 + c] = 10 + c;
  HEX[97 + c] = 10 + c;
}

const EMPTY = Buffer.alloc(0);

interface Latin1Buffer {
  latin1Slice(start: number, end: number): string;
}

// Buffer's own latin1 decoder without toString()'s encoding dispatch: the hot path makes ~20 strings a request.
function latin1(buf: Buffer, start: number, end: number): string {
  return (buf as unknown as Latin1Buffer).latin1Slice(start, end);
}

function fail(code: H1ErrorCode, message: string): never {
  throw new H1ParseError(code, message);
}

/** ASCII case-insensitive comparison of buf[start, end) with a lower-case literal. */
function bytesEqualLower(buf: Buffer, start: number, end: number, lower: string): boolean {
  if (end - start !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) if ((buf[start + i]! | 0x20) !== lower.charCodeAt(i)) return false;
  return true;
}

function methodString(buf: Buffer, start: number, end: number): string {
  const n = end - start;
  const c = buf[start];
  if (n === 3 && c === 71 && buf[start + 1] === 69 && buf[start + 2] === 84) return 'GET';
  if (n === 4 && c === 80 && buf[start + 1] === 79 && buf[start + 2] === 83 && buf[start + 3] === 84) return 'POST';
  return buf.toString('latin1', start, end);
}

/** Does a comma-separated header value list contain `token` (lower-case)? Go's HeaderValuesContainsToken. */
function containsToken(values: string[], token: string): boolean {
  for (const value of values) {
    let from = 0;
    while (from <= value.length) {
      let to = value.indexOf(',', from);
      if (to === -1) to = value.length;
      let a = from;
      let b = to;
      while (a < b && (value.charCodeAt(a) === 32 || value.charCodeAt(a) === 9)) a++;
      while (b > a && (value.charCodeAt(b - 1) === 32 || value.charCodeAt(b - 1) === 9)) b--;
      if (b - a === token.length && equalsLower(value, a, token)) return true;
      from = to + 1;
    }
  }
  return false;
}

function equalsLower(s: string, at: number, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) {
    let c = s.charCodeAt(at + i);
    if (c >= 65 && c <= 90) c |= 0x20;
    if (c !== lower.charCodeAt(i)) return false;
  }
  return true;
}

function validEscapes(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    if (buf[i] === 37 /* % */ && (i + 2 >= end || HEX[buf[i + 1]!]! < 0 || HEX[buf[i + 2]!]! < 0)) return false;
  }
  return true;
}

/** An authority as net/url's parseAuthority accepts it: [userinfo@]host[:port], host maybe an [IPv6] literal. */
function validAuthority(buf: Buffer, start: number, end: number): boolean {
  let at = -1;
  for (let i = end - 1; i >= start; i--) {
    if (buf[i] === 64 /* @ */) {
      at = i;
      break;
    }
  }
  if (at !== -1) {
    for (let i = start; i < at; i++) if (USERINFO[buf[i]!] !== 1) return false;
    start = at + 1;
  }
  let portStart = -1;
  if (buf[start] === 91 /* [ */) {
    let close = -1;
    for (let i = end - 1; i > start; i--) {
      if (buf[i] === 93 /* ] */) {
        close = i;
        break;
      }
    }
    if (close === -1) return false;
    if (close + 1 < end) {
      if (buf[close + 1] !== 58 /* : */) return false;
      portStart = close + 2;
    }
  } else {
    for (let i = end - 1; i >= start; i--) {
      if (buf[i] === 58) {
        portStart = i + 1;
        break;
      }
    }
  }
  if (portStart !== -1) {
    for (let i = portStart; i < end; i++) if (buf[i]! < 48 || buf[i]! > 57) return false;
  }
  for (let i = start; i < end; i++) if (URL_HOST[buf[i]!] !== 1) return false;
  return validEscapes(buf, start, end);
}

/**
 * The request-target, checked as Go's url.ParseRequestURI checks it (CONNECT to a host is parsed as
 * "http://" + target, as Go's readRequest does). Returns its form; throws INVALID_TARGET.
 */
function checkTarget(buf: Buffer, start: number, end: number, connect: boolean): TargetForm {
  if (start === end) fail('INVALID_TARGET', 'empty request-target');
  for (let i = start; i < end; i++) {
    const c = buf[i]!;
    if (c < 0x20 || c === 0x7f) fail('INVALID_TARGET', 'control byte in the request-target');
  }
  const first = buf[start];
  if (first === 47 /* / */ && !connect) {
    if (!validEscapes(buf, start, queryStart(buf, start, end))) fail('INVALID_TARGET', 'invalid %-escape in the request-target');
    return 'origin';
  }
  if (connect) {
    if (first === 47) return checkTarget(buf, start, end, false);
    const path = pathStart(buf, start, queryStart(buf, start, end));
    if (!validAuthority(buf, start, path) || !validEscapes(buf, path, queryStart(buf, start, end))) {
      fail('INVALID_TARGET', 'invalid authority in the CONNECT request-target');
    }
    return 'authority';
  }
  if (end - start === 1 && first === 42 /* * */) return 'asterisk';
  // absolute-form: scheme ":" ...; anything else is "invalid URI for request".
  let colon = -1;
  for (let i = start; i < end; i++) {
    const c = buf[i]!;
    const letter = (c | 0x20) >= 97 && (c | 0x20) <= 122;
    if (letter) continue;
    if (c === 58 && i > start) {
      colon = i;
      break;
    }
    if (i > start && ((c >= 48 && c <= 57) || c === 43 || c === 45 || c === 46)) continue;
    break;
  }
  if (colon === -1) fail('INVALID_TARGET', 'the request-target is not a path, * or an absolute URI');
  const query = queryStart(buf, colon + 1, end);
  let rest = colon + 1;
  if (query - rest >= 2 && buf[rest] === 47 && buf[rest + 1] === 47) {
    const path = pathStart(buf, rest + 2, query);
    if (!validAuthority(buf, rest + 2, path)) fail('INVALID_TARGET', 'invalid host in the request-target');
    rest = path;
  }
  if (buf[rest] === 47 && !validEscapes(buf, rest, query)) fail('INVALID_TARGET', 'invalid %-escape in the request-target');
  return 'absolute';
}

function queryStart(buf: Buffer, start: number, end: number): number {
  for (let i = start; i < end; i++) if (buf[i] === 63 /* ? */) return i;
  return end;
}

function pathStart(buf: Buffer, start: number, end: number): number {
  for (let i = start; i < end; i++) if (buf[i] === 47) return i;
  return end;
}

/**
 * Incremental request parser for one connection: feed every read to execute(); requests, body bytes and the end
 * of each request come out through the handlers, in order, pipelined requests included. pause() from a handler
 * stops after the current event and keeps the unparsed bytes for resume().
 */
export class H1Parser {
  private state = State.Head;
  private readonly maxHeaderBytes: number;
  private readonly maxHeaderCount: number;
  // Head in progress across reads: the reads so far, their length, and where the end-of-section scan stands.
  private headParts: Buffer[] = [];
  private headLength = 0;
  private scan = Scan.LineStart;
  /** CR/LF bytes still to skip before a request line (Go skips up to 4 after a POST, for old clients). */
  private skipCrLf = 0;
  private remaining = 0;
  /** Go's chunkedReader.excess: framing bytes beyond 16 per chunk plus twice its data. */
  private chunkExcess = 0;
  private lineParts: Buffer[] = [];
  private lineLength = 0;
  private chunkEndSeen = 0;
  private trailerScan = TrailerScan.LineStart;
  /** Header field offsets of the head being parsed, reused from request to request. */
  private readonly offsets: number[] = [];
  /** Where the last head parsed by parseHead ended. */
  private parsedEnd = 0;
  /** The keep-alive decision of the request being read. */
  private lastKeepAlive = true;
  private paused = false;
  private held: Buffer = EMPTY;
  /** The input being parsed is a buffer read into again after execute returns (executeTransient). */
  private transient = false;

  constructor(
    private readonly handlers: H1Handlers,
    limits: H1Limits = {},
  ) {
    this.maxHeaderBytes = limits.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
    this.maxHeaderCount = limits.maxHeaderCount ?? 0;
  }

  /** Stop delivering events after the current one; later input is held until resume(). */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    const held = this.held;
    this.held = EMPTY;
    if (held.length > 0) this.execute(held);
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** A request is partly read (head, body or trailers): end of input now means the client broke off. */
  get inRequest(): boolean {
    return this.state === State.Head ? this.headLength > 0 : this.state !== State.Closed && this.state !== State.Failed;
  }

  /** No more requests will be parsed: the last one asked to close, or the input was refused. */
  get finished(): boolean {
    return this.state === State.Closed || this.state === State.Failed;
  }

  /** Bytes held while paused (the caller should stop reading when this grows). */
  get heldBytes(): number {
    return this.held.length;
  }

  /**
   * As execute(), for a chunk whose memory is reused once this returns (a socket's `onread` buffer): what the parser
   * keeps past the call (a cut head, chunk line or trailer section, bytes held while paused) and every body chunk
   * handed to onBody are copies; everything else is parsed in place.
   */
  executeTransient(chunk: Buffer): void {
    this.transient = true;
    try {
      this.execute(chunk);
    } finally {
      this.transient = false;
    }
  }

  /** A view of the input the parser keeps past this call: a copy when the input is transient. */
  private keep(view: Buffer): Buffer {
    return this.transient ? Buffer.from(view) : view;
  }

  execute(chunk: Buffer): void {
    if (this.paused) {
      this.held = this.held.length === 0 ? this.keep(chunk) : Buffer.concat([this.held, chunk]);
      return;
    }
    try {
      this.run(chunk);
    } catch (error) {
      if (!(error instanceof H1ParseError)) throw error;
      this.state = State.Failed;
      this.headParts = [];
      this.lineParts = [];
      this.handlers.onError(error);
    }
  }

  private run(buf: Buffer): void {
    let pos = 0;
    const end = buf.length;
    while (pos < end) {
      if (this.paused) {
        this.held = this.keep(buf.subarray(pos));
        return;
      }
      switch (this.state) {
        case State.Head:
          pos = this.head(buf, pos);
          break;
        case State.Body: {
          const n = Math.min(this.remaining, end - pos);
          this.remaining -= n;
          const body = this.keep(buf.subarray(pos, pos + n));
          pos += n;
          this.handlers.onBody(body);
          if (this.remaining === 0) this.requestEnd(null);
          break;
        }
        case State.ChunkLine:
          pos = this.chunkLine(buf, pos);
          break;
        case State.ChunkData: {
          const n = Math.min(this.remaining, end - pos);
          this.remaining -= n;
          const body = this.keep(buf.subarray(pos, pos + n));
          pos += n;
          if (this.remaining === 0) {
            this.state = State.ChunkDataEnd;
            this.chunkEndSeen = 0;
          }
          this.handlers.onBody(body);
          break;
        }
        case State.ChunkDataEnd: {
          // Exactly CRLF after chunk data (Go reads two bytes and compares).
          const c = buf[pos++];
          if (c !== (this.chunkEndSeen === 0 ? 13 : 10)) fail('INVALID_CHUNK_END', 'chunk data not followed by CRLF');
          if (++this.chunkEndSeen === 2) this.state = State.ChunkLine;
          break;
        }
        case State.Trailers:
          pos = this.trailers(buf, pos);
          break;
        case State.Closed:
        case State.Failed:
          return;
      }
    }
  }

  /** Scan for the end of the header section; parse it once it is whole. Returns the position after it. */
  private head(buf: Buffer, pos: number): number {
    const end = buf.length;
    if (this.skipCrLf > 0 && this.headLength === 0) {
      while (this.skipCrLf > 0 && pos < end && (buf[pos] === 13 || buf[pos] === 10)) {
        pos++;
        this.skipCrLf--;
      }
      if (pos === end) return pos;
      this.skipCrLf = 0;
    }
    const start = pos;
    if (this.headLength === 0) {
      // Most reads hold a whole head: parse it in place, and only gather reads when it is cut.
      const head = this.parseHead(buf, start, end);
      if (head !== null) {
        this.startBody(head);
        return this.parsedEnd;
      }
      if (end - start > this.maxHeaderBytes) fail('HEADERS_TOO_LARGE', `request header section over ${this.maxHeaderBytes} bytes`);
      this.scan = Scan.LineStart;
    }
    let i = pos;
    let s = this.scan;
    let found = -1;
    while (i < end) {
      if (s === Scan.InLine) {
        const lf = buf.indexOf(10, i);
        if (lf === -1) {
          i = end;
          break;
        }
        i = lf + 1;
        s = Scan.LineStart;
        continue;
      }
      const c = buf[i];
      if (c === 10) {
        found = i + 1;
        break;
      }
      if (s === Scan.LineStart && c === 13) {
        s = Scan.LineStartCr;
        i++;
        continue;
      }
      s = Scan.InLine;
    }
    const taken = (found === -1 ? end : found) - start;
    if (this.headLength + taken > this.maxHeaderBytes) {
      fail('HEADERS_TOO_LARGE', `request header section over ${this.maxHeaderBytes} bytes`);
    }
    if (found === -1) {
      this.scan = s;
      this.headParts.push(this.keep(buf.subarray(start, end)));
      this.headLength += taken;
      return end;
    }
    this.headParts.push(buf.subarray(start, found));
    const whole = Buffer.concat(this.headParts, this.headLength + taken);
    this.headParts = [];
    this.headLength = 0;
    this.scan = Scan.LineStart;
    const head = this.parseHead(whole, 0, whole.length);
    if (head === null) throw new Error('H1Parser: a header section that scanned whole did not parse whole');
    this.startBody(head);
    return found;
  }

  private startBody(head: RequestHead): void {
    this.lastKeepAlive = head.keepAlive;
    this.skipCrLf = head.method === 'POST' ? 4 : 0;
    if (head.method === 'CONNECT') {
      // What follows a CONNECT is tunnel data, never another request; the caller answers and closes.
      this.handlers.onRequest(head);
      this.requestEnd(null, true);
      return;
    }
    this.handlers.onRequest(head);
    if (head.contentLength === -1) {
      this.state = State.ChunkLine;
      this.lineParts = [];
      this.lineLength = 0;
      this.chunkExcess = 0;
    } else if (head.contentLength > 0) {
      this.state = State.Body;
      this.remaining = head.contentLength;
    } else {
      this.requestEnd(null);
    }
  }

  private requestEnd(trailers: string[] | null, close = false): void {
    // Set the state before the handler runs: it may pause, and resume() re-enters run().
    this.state = close || !this.lastKeepAlive ? State.Closed : State.Head;
    if (close) this.lastKeepAlive = false;
    this.handlers.onRequestEnd(trailers);
  }

  private chunkLine(buf: Buffer, pos: number): number {
    const lf = buf.indexOf(10, pos);
    const stop = lf === -1 ? buf.length : lf + 1;
    if (this.lineLength + (stop - pos) > MAX_CHUNK_LINE + 2) fail('CHUNK_LINE_TOO_LONG', 'chunk-size line too long');
    if (lf === -1) {
      this.lineParts.push(this.keep(buf.subarray(pos)));
      this.lineLength += buf.length - pos;
      return buf.length;
    }
    let line = buf;
    let start = pos;
    let end = lf + 1;
    if (this.lineLength > 0) {
      this.lineParts.push(buf.subarray(pos, end));
      line = Buffer.concat(this.lineParts, this.lineLength + end - pos);
      start = 0;
      end = line.length;
      this.lineParts = [];
      this.lineLength = 0;
    }
    const size = parseChunkLine(line, start, end);
    this.chunkExcess += end - start - 16 - 2 * size;
    if (this.chunkExcess < 0) this.chunkExcess = 0;
    if (this.chunkExcess > 16 * 1024) fail('CHUNK_OVERHEAD', 'chunked encoding contains too much non-data');
    if (size === 0) {
      this.state = State.Trailers;
    } else {
      this.state = State.ChunkData;
      this.remaining = size;
    }
    return lf + 1;
  }

  /** Trailer section after the last chunk: CRLF alone, or field lines each ending in CRLF then CRLF. */
  private trailers(buf: Buffer, pos: number): number {
    const end = buf.length;
    let i = pos;
    let s = this.trailerScan;
    let found = -1;
    while (i < end) {
      const c = buf[i++]!;
      if (c === 10) {
        if (s === TrailerScan.LineStartCr) {
          found = i;
          break;
        }
        if (s !== TrailerScan.InLineCr) fail('INVALID_TRAILER', 'a trailer line ends with bare LF');
        s = TrailerScan.LineStart;
      } else if (c === 13) {
        if (s === TrailerScan.LineStart) s = TrailerScan.LineStartCr;
        else if (s === TrailerScan.InLine) s = TrailerScan.InLineCr;
        else fail('INVALID_TRAILER', 'CR not followed by LF after the last chunk');
      } else {
        if (s === TrailerScan.LineStartCr || s === TrailerScan.InLineCr) fail('INVALID_TRAILER', 'CR not followed by LF after the last chunk');
        s = TrailerScan.InLine;
      }
    }
    const taken = (found === -1 ? end : found) - pos;
    if (this.lineLength + taken > MAX_TRAILER_BYTES) fail('INVALID_TRAILER', 'trailer section too long');
    if (found === -1) {
      this.trailerScan = s;
      this.lineParts.push(this.keep(buf.subarray(pos, end)));
      this.lineLength += taken;
      return end;
    }
    this.trailerScan = TrailerScan.LineStart;
    let fields: string[] | null = null;
    if (this.lineLength + taken > 2) {
      this.lineParts.push(buf.subarray(pos, found));
      const section = Buffer.concat(this.lineParts, this.lineLength + taken);
      fields = parseTrailerFields(section, 0, section.length);
    }
    this.lineParts = [];
    this.lineLength = 0;
    this.requestEnd(fields);
    return found;
  }

  /**
   * Parse the header section starting at buf[start], reading no further than `limit`. Returns null when it is
   * not whole yet (the caller then gathers more reads); else the head, with `parsedEnd` just past its empty line.
   * Lines are checked in order, so a bad line is refused as soon as it is seen, as Go's line reader does.
   */
  private parseHead(buf: Buffer, start: number, limit: number): RequestHead | null {
    // Request line: METHOD SP target SP version, split on the first two spaces as Go does.
    let lineEnd = start;
    while (lineEnd < limit && buf[lineEnd] !== 10) lineEnd++;
    if (lineEnd === limit) return null;
    const afterLine = lineEnd + 1;
    if (lineEnd > start && buf[lineEnd - 1] === 13) lineEnd--;
    let sp1 = start;
    while (sp1 < lineEnd && buf[sp1] !== 32) sp1++;
    if (sp1 === lineEnd) fail('INVALID_REQUEST_LINE', 'malformed request line');
    let sp2 = sp1 + 1;
    while (sp2 < lineEnd && buf[sp2] !== 32) sp2++;
    if (sp2 === lineEnd) {
      if (sp1 > start && sp2 > sp1 + 1) fail('HTTP_09', 'request line without an HTTP version (HTTP/0.9)');
      fail('INVALID_REQUEST_LINE', 'malformed request line');
    }
    const v = sp2 + 1;
    if (
      lineEnd - v !== 8 ||
      buf[v] !== 72 ||
      buf[v + 1] !== 84 ||
      buf[v + 2] !== 84 ||
      buf[v + 3] !== 80 ||
      buf[v + 4] !== 47 ||
      buf[v + 5]! < 48 ||
      buf[v + 5]! > 57 ||
      buf[v + 6] !== 46 ||
      buf[v + 7]! < 48 ||
      buf[v + 7]! > 57
    ) {
      fail('INVALID_VERSION', 'malformed HTTP version');
    }
    const major = buf[v + 5]! - 48;
    const minor = buf[v + 7]! - 48;
    if (sp1 === start) fail('INVALID_METHOD', 'empty method');
    for (let i = start; i < sp1; i++) if (TOKEN[buf[i]!] !== 1) fail('INVALID_METHOD', 'invalid method');
    const method = methodString(buf, start, sp1);
    const connect = method === 'CONNECT';
    const targetForm = checkTarget(buf, sp1 + 1, sp2, connect);

    // Header lines: offsets first (name start, name end, value start, value end), strings once the section is
    // known to be whole.
    const offsets = this.offsets;
    let n = 0;
    let hostLine = -1;
    let hostCount = 0;
    let framing = false;
    let connectionSeen = false;
    let expectLine = -1;
    let pos = afterLine;
    if (pos < limit && (buf[pos] === 32 || buf[pos] === 9)) fail('INVALID_HEADER_NAME', 'header section starts with white space');
    for (;;) {
      if (pos >= limit) return null;
      const c0 = buf[pos]!;
      if (c0 === 10) {
        pos += 1;
        break;
      }
      if (c0 === 13) {
        if (pos + 1 >= limit) return null;
        if (buf[pos + 1] === 10) {
          pos += 2;
          break;
        }
        fail('BARE_CR', 'CR not followed by LF in the header section');
      }
      if (c0 === 32 || c0 === 9) fail('OBS_FOLD', 'header line continued on the next line (obs-fold)');
      const nameStart = pos;
      while (pos < limit && TOKEN[buf[pos]!] === 1) pos++;
      if (pos === limit) return null;
      if (buf[pos] !== 58 /* : */ || pos === nameStart) fail('INVALID_HEADER_NAME', 'malformed header line');
      const nameEnd = pos++;
      while (pos < limit && (buf[pos] === 32 || buf[pos] === 9)) pos++;
      const valueStart = pos;
      while (pos < limit && VALUE[buf[pos]!] === 1) pos++;
      if (pos === limit) return null;
      let valueEnd = pos;
      if (buf[pos] === 13) {
        if (pos + 1 >= limit) return null;
        if (buf[pos + 1] !== 10) fail('INVALID_HEADER_VALUE', 'control byte in a header value');
        pos += 2;
      } else if (buf[pos] === 10) {
        pos += 1;
      } else {
        fail('INVALID_HEADER_VALUE', 'control byte in a header value');
      }
      while (valueEnd > valueStart && (buf[valueEnd - 1] === 32 || buf[valueEnd - 1] === 9)) valueEnd--;
      if (this.maxHeaderCount > 0 && n / 4 >= this.maxHeaderCount) {
        fail('TOO_MANY_HEADERS', `more than ${this.maxHeaderCount} header lines`);
      }
      // The headers that frame the request, by length then case-insensitively.
      switch (nameEnd - nameStart) {
        case 4:
          if (bytesEqualLower(buf, nameStart, nameEnd, 'host')) {
            hostLine = n;
            hostCount++;
          }
          break;
        case 6:
          if (expectLine === -1 && bytesEqualLower(buf, nameStart, nameEnd, 'expect')) expectLine = n;
          break;
        case 10:
          if (bytesEqualLower(buf, nameStart, nameEnd, 'connection')) connectionSeen = true;
          break;
        case 14:
          if (bytesEqualLower(buf, nameStart, nameEnd, 'content-length')) framing = true;
          break;
        case 17:
          if (bytesEqualLower(buf, nameStart, nameEnd, 'transfer-encoding')) framing = true;
          break;
      }
      offsets[n] = nameStart;
      offsets[n + 1] = nameEnd;
      offsets[n + 2] = valueStart;
      offsets[n + 3] = valueEnd;
      n += 4;
    }
    if (pos - start > this.maxHeaderBytes) fail('HEADERS_TOO_LARGE', `request header section over ${this.maxHeaderBytes} bytes`);
    this.parsedEnd = pos;

    // One decode of the whole section; every string is a slice of it (latin1: one char per byte), which costs
    // far less than a native call per field.
    const text = latin1(buf, start, pos);
    const target = text.slice(sp1 + 1 - start, sp2 - start);
    const raw = new Array<string>(n / 2);
    for (let i = 0; i < n; i += 4) {
      raw[i / 2] = text.slice(offsets[i]! - start, offsets[i + 1]! - start);
      raw[i / 2 + 1] = text.slice(offsets[i + 2]! - start, offsets[i + 3]! - start);
    }

    if (method === 'PRI' && major === 2 && minor === 0 && target === '*') {
      fail('H2_PREFACE', 'HTTP/2 connection preface on an HTTP/1 connection');
    }
    const atLeast11 = major > 1 || (major === 1 && minor >= 1);
    let contentLength = 0;
    if (framing) contentLength = bodyLength(buf, offsets, n, raw, atLeast11);
    if (major !== 1) fail('UNSUPPORTED_VERSION', `unsupported protocol version HTTP/${major}.${minor}`);
    if (hostCount === 0 && atLeast11 && !connect) fail('MISSING_HOST', 'missing required Host header');
    if (hostCount > 1) fail('DUPLICATE_HOST', 'too many Host headers');
    let host = '';
    if (hostCount === 1) {
      host = raw[hostLine / 2 + 1]!;
      for (let i = 0; i < host.length; i++) {
        if (HOST_HEADER[host.charCodeAt(i)] !== 1) fail('INVALID_HOST', 'malformed Host header');
      }
    }

    // Go's shouldClose: HTTP/1.0 keeps the connection only when asked to, HTTP/1.1 unless asked not to.
    let keepAlive = minor !== 0;
    if (connectionSeen) {
      const values = valuesOf(buf, offsets, n, raw, 'connection');
      keepAlive = !containsToken(values, 'close') && (minor !== 0 || containsToken(values, 'keep-alive'));
    }
    if (connect) keepAlive = false;

    let expectContinue = false;
    let expectUnsupported = false;
    if (expectLine !== -1) {
      const expect = raw[expectLine / 2 + 1]!;
      if (containsToken([expect], '100-continue')) expectContinue = atLeast11 && contentLength !== 0;
      else if (expect !== '') expectUnsupported = true;
    }
    return new RequestHead(method, target, targetForm, major, minor, raw, host, contentLength, keepAlive, expectContinue, expectUnsupported, pos - start);
  }
}

/** The values of the header lines named `lower` (a lower-case name), in order. */
function valuesOf(buf: Buffer, offsets: number[], n: number, raw: string[], lower: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i += 4) {
    if (bytesEqualLower(buf, offsets[i]!, offsets[i + 1]!, lower)) out.push(raw[i / 2 + 1]!);
  }
  return out;
}

/**
 * Body length from Transfer-Encoding and Content-Length, as Go's readTransfer: -1 for chunked. Transfer-Encoding
 * is ignored on HTTP/1.0 (Go, issue 12785); otherwise it must be exactly one line saying chunked, which overrides
 * any Content-Length. Several Content-Length lines must agree.
 */
function bodyLength(buf: Buffer, offsets: number[], n: number, raw: string[], atLeast11: boolean): number {
  const transferEncodings = valuesOf(buf, offsets, n, raw, 'transfer-encoding');
  if (transferEncodings.length > 0 && atLeast11) {
    if (transferEncodings.length !== 1) fail('UNSUPPORTED_TRANSFER_ENCODING', 'too many transfer encodings');
    if (transferEncodings[0]!.toLowerCase() !== 'chunked') {
      fail('UNSUPPORTED_TRANSFER_ENCODING', `unsupported transfer encoding: ${JSON.stringify(transferEncodings[0])}`);
    }
    return -1;
  }
  const contentLengths = valuesOf(buf, offsets, n, raw, 'content-length');
  if (contentLengths.length === 0) return 0;
  const first = contentLengths[0]!;
  for (let i = 1; i < contentLengths.length; i++) {
    if (contentLengths[i] !== first) fail('CONFLICTING_CONTENT_LENGTH', 'several Content-Length headers with different values');
  }
  return parseContentLength(first);
}

/** Go's parseContentLength: decimal digits only (after trimming), not empty; here also at most 2^53 - 1. */
function parseContentLength(value: string): number {
  if (value === '') fail('INVALID_CONTENT_LENGTH', 'empty Content-Length');
  let n = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 48 || c > 57) fail('INVALID_CONTENT_LENGTH', `bad Content-Length ${JSON.stringify(value)}`);
    n = n * 10 + (c - 48);
  }
  if (n > Number.MAX_SAFE_INTEGER) fail('INVALID_CONTENT_LENGTH', 'Content-Length too large');
  return n;
}

/**
 * Go's readChunkLine and parseHexUint on buf[start, end) (end just past LF): the line ends in CRLF with no other
 * CR, white space before the end and a `;extension` are dropped, the rest is 1 to 13 hex digits.
 */
function parseChunkLine(buf: Buffer, start: number, end: number): number {
  if (end - start < 2 || buf[end - 2] !== 13) fail('INVALID_CHUNK_SIZE', 'chunk-size line ends with bare LF');
  let stop = end - 2;
  if (stop - start >= MAX_CHUNK_LINE) fail('CHUNK_LINE_TOO_LONG', 'chunk-size line too long');
  for (let i = start; i < stop; i++) if (buf[i] === 13) fail('INVALID_CHUNK_SIZE', 'CR inside a chunk-size line');
  while (stop > start && (buf[stop - 1] === 32 || buf[stop - 1] === 9)) stop--;
  for (let i = start; i < stop; i++) {
    if (buf[i] === 59 /* ; */) {
      stop = i;
      break;
    }
  }
  if (stop === start) fail('INVALID_CHUNK_SIZE', 'empty chunk size');
  if (stop - start > 13) fail('INVALID_CHUNK_SIZE', 'chunk size too large');
  let n = 0;
  for (let i = start; i < stop; i++) {
    const d = HEX[buf[i]!]!;
    if (d < 0) fail('INVALID_CHUNK_SIZE', 'invalid byte in chunk size');
    n = n * 16 + d;
  }
  if (n > Number.MAX_SAFE_INTEGER) fail('INVALID_CHUNK_SIZE', 'chunk size too large');
  return n;
}

/** Trailer lines (each ending in CRLF, as checked by the scan) as name, value pairs, validated like headers. */
function parseTrailerFields(buf: Buffer, start: number, end: number): string[] {
  const out: string[] = [];
  let pos = start;
  while (pos < end) {
    if (buf[pos] === 13) break;
    if (buf[pos] === 32 || buf[pos] === 9) fail('INVALID_TRAILER', 'trailer line starts with white space');
    const nameStart = pos;
    while (TOKEN[buf[pos]!] === 1) pos++;
    if (buf[pos] !== 58 || pos === nameStart) fail('INVALID_TRAILER', 'malformed trailer line');
    const nameEnd = pos++;
    while (buf[pos] === 32 || buf[pos] === 9) pos++;
    const valueStart = pos;
    while (VALUE[buf[pos]!] === 1) pos++;
    if (buf[pos] !== 13) fail('INVALID_TRAILER', 'control byte in a trailer value');
    let valueEnd = pos;
    while (valueEnd > valueStart && (buf[valueEnd - 1] === 32 || buf[valueEnd - 1] === 9)) valueEnd--;
    out.push(latin1(buf, nameStart, nameEnd), latin1(buf, valueStart, valueEnd));
    pos += 2;
  }
  return out;
}
