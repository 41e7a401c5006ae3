// Turns one HTTP request into the payload a PHP worker gets: RoadRunner's JSON request context (RR <= 2023.3,
// docs/protocol.md §4.2) and the body: raw bytes, or the parsed form tree with multipart files streamed to temp files.

import { Http2ServerRequest } from 'node:http2';
import type { UploadsConfig } from '../config/types.js';
import {
  FormTreeError,
  MultipartError,
  MultipartTooLargeError,
  RequestAbortedError,
  RequestError,
  RequestFormingError,
  RequestTooLargeError,
} from '../errors.js';
import { NO_COOKIES, parseCookies } from './cookies.js';
import { buildTree, parseUrlencoded, type Tree } from './form-tree.js';
import { collectHeaders, firstHeader, latin1ToUtf8, NO_HEADERS, parseMediaType, type HeaderMap } from './headers.js';
import { multipartBoundary, receiveMultipart, UploadSession } from './uploads.js';
import { H1Request } from './h1/request.js';
import type { AnyRequest } from './middleware/types.js';

export interface RequestPayloadOptions {
  /** http.raw_body: send url-encoded and multipart bodies as raw bytes, unparsed. */
  rawBody: boolean;
  /** http.max_request_size in bytes; 0 (or less) means no limit. */
  maxRequestSize: number;
  uploads: UploadsConfig;
  /** Who gets the upload temp files (server.user), or null: rrts's own user keeps them. */
  uploadOwner?: { uid: number; gid: number } | null;
  /** The connection is TLS: `uri` starts with https://. */
  tls: boolean;
  /** The client IP as found by proxy_ip_parser; default the peer address. */
  remoteAddr?: string;
}

export interface RequestPayload {
  /** The JSON request context (goridge CODEC_JSON). */
  context: Buffer;
  body: Buffer;
  /** Deletes the upload temp files. Idempotent, never needs to be awaited before another call. */
  cleanup(): Promise<void>;
}

const BODY_TOO_LARGE = 'http: request body too large';

function tooLarge(): RequestError {
  return new RequestTooLargeError(BODY_TOO_LARGE);
}

function formingError(message: string, cause?: unknown): RequestError {
  return new RequestFormingError(`request forming error: ${message}`, { cause });
}

/** The RequestError a body parser's error becomes: 413 for a multipart part over a limit, 500 for a malformed form. */
function asRequestError(error: unknown): unknown {
  if (error instanceof MultipartTooLargeError) return new RequestTooLargeError(error.message, { cause: error });
  if (error instanceof MultipartError || error instanceof FormTreeError) return formingError(error.message, error);
  return error;
}

const EMPTY = Buffer.alloc(0);
const noCleanup = (): Promise<void> => Promise.resolve();
/** The JSON request context's fields, in the wire's key order (`attributes`, always `{}` from rrts, comes last). */
export interface ContextFields {
  remoteAddr: string;
  protocol: string;
  method: string;
  uri: string;
  headers: HeaderMap;
  cookies: Record<string, string>;
  rawQuery: string;
  parsed: boolean;
  uploads: Tree | null;
}

function encodeContext(fields: ContextFields, parsed: boolean, uploads: Tree | null): Buffer {
  fields.parsed = parsed;
  fields.uploads = uploads;
  return Buffer.from(contextJson(fields));
}

// What JSON.stringify writes escaped: '"', '\\', control characters, and lone surrogates (any surrogate here).
// eslint-disable-next-line no-control-regex
const JSON_ESCAPED = /["\\\u0000-\u001f\ud800-\udfff]/;

/** A string JSON.stringify writes as it is, between quotes. */
function plainJson(s: string): boolean {
  return !JSON_ESCAPED.test(s);
}

/**
 * The context's JSON text: exactly JSON.stringify of the fields followed by `"attributes":{}`, written as a template
 * around the strings (JSON.stringify's walk of the object costs twice as much: ~5,400 instructions against ~12,300
 * for a GET's, callgrind); strings with something to escape (rare) go through JSON.stringify.
 */
export function contextJson(f: ContextFields): string {
  const headers = f.headers === NO_HEADERS ? '{}' : JSON.stringify(f.headers);
  const cookies = f.cookies === NO_COOKIES ? '{}' : JSON.stringify(f.cookies);
  const uploads = f.uploads === null ? 'null' : JSON.stringify(f.uploads);
  const parsed = f.parsed ? 'true' : 'false';
  if (plainJson(f.remoteAddr) && plainJson(f.protocol) && plainJson(f.method) && plainJson(f.uri) && plainJson(f.rawQuery)) {
    return (
      `{"remoteAddr":"${f.remoteAddr}","protocol":"${f.protocol}","method":"${f.method}","uri":"${f.uri}",` +
      `"headers":${headers},"cookies":${cookies},"rawQuery":"${f.rawQuery}","parsed":${parsed},"uploads":${uploads},"attributes":{}}`
    );
  }
  const json = JSON.stringify;
  return (
    `{"remoteAddr":${json(f.remoteAddr)},"protocol":${json(f.protocol)},"method":${json(f.method)},"uri":${json(f.uri)},` +
    `"headers":${headers},"cookies":${cookies},"rawQuery":${json(f.rawQuery)},"parsed":${parsed},"uploads":${uploads},"attributes":{}}`
  );
}

/** The payload, as a promise (errors as rejections). */
export async function buildRequestPayload(req: AnyRequest, opts: RequestPayloadOptions): Promise<RequestPayload> {
  return requestPayload(req, opts);
}

/**
 * The payload: at once when the body needs no read (a GET, a HEAD, an empty form), else a promise. May throw (a
 * declared length over the limit, a malformed form type). The hot path's form: a request without a body costs no
 * promise and no microtask turn before its job is sent.
 */
export function requestPayload(req: AnyRequest, opts: RequestPayloadOptions): RequestPayload | Promise<RequestPayload> {
  const http2 = req.httpVersionMajor === 2;
  const method = req.method ?? 'GET';
  const url = req.url ?? '/';
  const headers = collectHeaders(req.rawHeaders, http2);
  // Key order is the wire format (RoadRunner's Go struct order); one object per request, its last two keys set
  // by encodeContext.
  const fields: ContextFields = {
    remoteAddr: opts.remoteAddr ?? clientIp(req.socket?.remoteAddress),
    protocol: req.httpVersion === '1.1' ? 'HTTP/1.1' : `HTTP/${req.httpVersion}`,
    method,
    uri: requestUri(req, url, opts.tls),
    headers,
    cookies: parseCookies(headers['Cookie']),
    rawQuery: rawQuery(url),
    parsed: false,
    uploads: null,
  };

  // Body classification, in RoadRunner's order (docs/protocol.md §4.3).
  if (method === 'HEAD' || method === 'OPTIONS') {
    return { context: encodeContext(fields, false, null), body: EMPTY, cleanup: noCleanup };
  }
  const limit = opts.maxRequestSize > 0 ? opts.maxRequestSize : Infinity;
  // rrts's own HTTP/1.1 requests answer without building a header object (most requests need no other header).
  const contentType = req instanceof H1Request ? req.header('content-type') : firstHeader(req.headers, 'content-type');
  const form = contentType.includes('application/x-www-form-urlencoded');
  const multipart = !form && contentType.includes('multipart/form-data');

  if ((!form && !multipart) || opts.rawBody) {
    if (hasNoBody(req)) return { context: encodeContext(fields, false, null), body: EMPTY, cleanup: noCleanup };
    return rawPayload(req, limit, fields);
  }

  if (form) {
    // Go's ParseForm only reads the body of POST, PUT and PATCH, and only for exactly this media type.
    const readable = (method === 'POST' || method === 'PUT' || method === 'PATCH') && parseMediaType(contentType).type === 'application/x-www-form-urlencoded';
    if (!readable) return { context: encodeContext(fields, true, null), body: Buffer.from('{}'), cleanup: noCleanup };
    return formPayload(req, limit, fields);
  }

  // multipart/form-data. `uploads` is {} (not null) when the form has no files: RoadRunner sets the uploads tree
  // for every multipart request and only leaves it null for other bodies.
  let boundary: string;
  try {
    boundary = multipartBoundary(contentType);
  } catch (error) {
    throw asRequestError(error);
  }
  checkContentLength(req, limit);
  return multipartPayload(req, opts, boundary, limit, fields);
}

// The paths that wait for a body are functions of their own: a closure over the context's fields in
// requestPayload would cost every request (a GET too) a context object.
async function rawPayload(req: AnyRequest, limit: number, fields: ContextFields): Promise<RequestPayload> {
  const body = await readRawBody(req, limit);
  return { context: encodeContext(fields, false, null), body, cleanup: noCleanup };
}

async function formPayload(req: AnyRequest, limit: number, fields: ContextFields): Promise<RequestPayload> {
  const raw = await readRawBody(req, limit);
  let tree: Tree;
  try {
    tree = buildTree(parseUrlencoded(raw), 'last');
  } catch (error) {
    throw asRequestError(error);
  }
  return { context: encodeContext(fields, true, null), body: Buffer.from(JSON.stringify(tree)), cleanup: noCleanup };
}

async function multipartPayload(req: AnyRequest, opts: RequestPayloadOptions, boundary: string, limit: number, fields: ContextFields): Promise<RequestPayload> {
  const session = new UploadSession(opts.uploads, opts.uploadOwner ?? null);
  const cleanup = (): Promise<void> => session.cleanup();
  const receiver = receiveMultipart(boundary, session);
  const pump = pumpBody(req, limit, receiver.sink);
  try {
    const [, parts] = await Promise.all([pump.done, receiver.done]);
    const data = buildTree(parts.values, 'last');
    const uploads = buildTree(parts.files, 'first');
    return { context: encodeContext(fields, true, uploads), body: Buffer.from(JSON.stringify(data)), cleanup };
  } catch (error) {
    pump.stop();
    receiver.abort();
    await session.cleanup().catch(() => {});
    throw asRequestError(error);
  }
}

/** Client IP without port; an IPv4-mapped IPv6 address is shown as IPv4 (as Go does). */
export function clientIp(address: string | undefined): string {
  if (address === undefined) return '';
  if (address.startsWith('::ffff:') && address.includes('.')) return address.slice(7);
  return address;
}

function requestUri(req: AnyRequest, url: string, tls: boolean): string {
  let uri: string;
  if (isAbsoluteTarget(url)) {
    uri = url;
  } else {
    const host = req instanceof H1Request ? req.head.host : req instanceof Http2ServerRequest ? (req.authority ?? '') : (req.headers.host ?? '');
    uri = (tls ? 'https://' : 'http://') + host + url;
  }
  return stripCrLf(latin1ToUtf8(uri));
}

function rawQuery(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? '' : stripCrLf(latin1ToUtf8(url.slice(q + 1)));
}

function stripCrLf(s: string): string {
  if (s.indexOf('\r') === -1 && s.indexOf('\n') === -1) return s;
  return s.replaceAll('\r', '').replaceAll('\n', '');
}

/** A request-target in absolute form (`http://host/path`, a proxy request) already carries scheme and host. */
function isAbsoluteTarget(url: string): boolean {
  const first = url.charCodeAt(0);
  if (first === 47 /* '/' */ || first === 42 /* '*' */) return false;
  const colon = url.indexOf('://');
  if (colon <= 0) return false;
  for (let i = 0; i < colon; i++) {
    const c = url.charCodeAt(i) | 0x20;
    const letter = c >= 97 && c <= 122;
    if (i === 0 ? !letter : !(letter || (c >= 48 && c <= 57) || c === 0x2b || c === 0x2d || c === 0x2e)) return false;
  }
  return colon + 3 < url.length && url.charCodeAt(colon + 3) !== 47;
}

/**
 * An HTTP/1 request without Content-Length and Transfer-Encoding, or with Content-Length 0, has no body (RFC 9112
 * §6.3): nothing to wait for. Most requests are like that, and skipping the read saves a stream round. (HTTP/2 may
 * send DATA without a length.) The unread request is dumped by Node's server when the response ends.
 */
function hasNoBody(req: AnyRequest): boolean {
  if (req instanceof H1Request) return req.head.contentLength === 0;
  if (req.httpVersionMajor !== 1) return false;
  const headers = req.headers;
  const length = headers['content-length'];
  return (length === undefined || length === '0') && headers['transfer-encoding'] === undefined;
}

/** A declared Content-Length over the limit is refused before a byte is read. */
function checkContentLength(req: AnyRequest, limit: number): void {
  if (limit === Infinity) return;
  if (req instanceof H1Request) {
    if (req.head.contentLength > limit) throw tooLarge();
    return;
  }
  const declared = firstHeader(req.headers, 'content-length');
  if (declared !== '' && Number(declared) > limit) throw tooLarge();
}

async function readRawBody(req: AnyRequest, limit: number): Promise<Buffer> {
  if (hasNoBody(req)) return EMPTY;
  checkContentLength(req, limit);
  const chunks: Buffer[] = [];
  let size = 0;
  const sink: BodySink = {
    write(chunk: Buffer): boolean {
      chunks.push(chunk);
      size += chunk.length;
      return true;
    },
    end(): void {},
  };
  await pumpBody(req, limit, sink).done;
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
}

interface BodySink {
  /** false: wait for 'drain' before writing more. */
  write(chunk: Buffer): boolean;
  end(): void;
  once?(event: 'drain' | 'finish', listener: () => void): unknown;
}

/**
 * Moves the request body into `sink`, honouring its backpressure and counting bytes. Past `limit` it stops
 * reading (nothing past the limit is kept) and fails with 413; the unread rest is left to the server, which should
 * close the connection after answering.
 */
function pumpBody(req: AnyRequest, limit: number, sink: BodySink): { done: Promise<void>; stop(): void } {
  let stop = (): void => {};
  const done = new Promise<void>((resolve, reject) => {
    if (req.readableEnded) {
      sink.end();
      resolve();
      return;
    }
    let received = 0;
    let settled = false;
    // busboy's Dicer emits 'finish' on the closing boundary, before end(): after that it takes no more bytes and
    // never drains, so the epilogue is only counted, and a wait for 'drain' also ends on 'finish'.
    let sinkFinished = false;
    sink.once?.('finish', () => {
      sinkFinished = true;
      resume();
    });
    const finish = (error?: Error): void => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
      if (error === undefined) {
        sink.end();
        resolve();
      } else {
        req.pause();
        reject(error);
      }
    };
    const resume = (): void => {
      if (!settled) req.resume();
    };
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      if (received > limit) {
        finish(tooLarge());
        return;
      }
      if (sinkFinished) return;
      if (!sink.write(chunk) && sink.once !== undefined) {
        req.pause();
        sink.once('drain', resume);
      }
    };
    const onEnd = (): void => finish();
    const onError = (error: Error): void => finish(aborted(error));
    const onClose = (): void => {
      if (!req.readableEnded) finish(aborted());
    };
    stop = (): void => finish(new RequestFormingError('request forming error: body reading stopped'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
    req.resume();
  });
  done.catch(() => {}); // stop() after a failure elsewhere must not leave an unhandled rejection
  return { done, stop: () => stop() };
}

function aborted(cause?: Error): RequestError {
  return new RequestAbortedError('request forming error: client disconnected before the body was read', {
    cause,
  });
}
