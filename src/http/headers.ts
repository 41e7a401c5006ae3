// Request headers the way RoadRunner (Go net/http) presents them to PHP: Go-canonical names, one element per header
// line, and Go's mime.ParseMediaType for Content-Type / Content-Disposition values.

import type { IncomingHttpHeaders } from 'node:http';

/** Header name -> values, one per header line, in arrival order; null prototype (names are client input). */
export type HeaderMap = Record<string, string[]>;

// RFC 7230 tchar: the bytes Go accepts in a header name (validHeaderFieldByte) and in a MIME token.
const TOKEN = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TOKEN[c.charCodeAt(0)] = 1;

export function isTokenCode(c: number): boolean {
  return c < 128 && TOKEN[c] === 1;
}

const NON_ASCII = /[\u0080-\uffff]/;

/**
 * Node decodes header bytes as latin1; Go keeps the bytes, which reach PHP as UTF-8. Re-decode so a UTF-8 value
 * sent by the client arrives as the same text (invalid sequences become U+FFFD, as Go's JSON encoder does).
 */
export function latin1ToUtf8(s: string): string {
  return NON_ASCII.test(s) ? Buffer.from(s, 'latin1').toString('utf8') : s;
}

const canonicalCache = new Map<string, string>();
const CANONICAL_CACHE_MAX = 1024;

/**
 * Go's textproto.CanonicalMIMEHeaderKey: first letter and every letter after '-' upper-cased, the rest lower-cased;
 * a name with a byte that is not a token character is returned unchanged.
 */
export function canonicalHeaderKey(name: string): string {
  const cached = canonicalCache.get(name);
  if (cached !== undefined) return cached;
  const canonical = canonicalize(name);
  if (canonicalCache.size < CANONICAL_CACHE_MAX) canonicalCache.set(name, canonical);
  return canonical;
}

function canonicalize(name: string): string {
  let upper = true;
  let change = false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (!isTokenCode(c)) return name;
    if (upper ? c >= 97 && c <= 122 : c >= 65 && c <= 90) change = true;
    upper = c === 45;
  }
  if (!change) return name;
  let out = '';
  upper = true;
  for (let i = 0; i < name.length; i++) {
    let c = name.charCodeAt(i);
    if (upper && c >= 97 && c <= 122) c -= 32;
    else if (!upper && c >= 65 && c <= 90) c += 32;
    out += String.fromCharCode(c);
    upper = c === 45;
  }
  return out;
}

/**
 * The `headers` object of the request context, from Node's rawHeaders (name, value, name, value, ...).
 * Like Go's server: HTTP/2 pseudo-headers and `Host` are left out (Host is only part of `uri`); on HTTP/1
 * `Transfer-Encoding` is removed (Go moves it to r.TransferEncoding) and so is Content-Length when it is present;
 * on HTTP/2 several `cookie` fields are joined with "; " into one line. Names are sorted, as Go's JSON encoder
 * sorts map keys.
 */
export function collectHeaders(rawHeaders: readonly string[], http2: boolean): HeaderMap {
  // Made on the first header kept: most requests of a load test carry only Host, and an empty dictionary costs.
  let map: HeaderMap | null = null;
  let count = 0;
  let chunked = false;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const rawName = rawHeaders[i]!;
    if (rawName.charCodeAt(0) === 58 /* ':' */) continue;
    const name = canonicalHeaderKey(rawName);
    if (name === 'Host') continue;
    if (name === 'Transfer-Encoding' && !http2) {
      chunked = true;
      continue;
    }
    const value = latin1ToUtf8(rawHeaders[i + 1]!);
    map ??= Object.create(null) as HeaderMap;
    const list = map[name];
    if (list === undefined) {
      map[name] = [value];
      count++;
    } else {
      list.push(value);
    }
  }
  if (map === null) return NO_HEADERS;
  if (chunked && map['Content-Length'] !== undefined) {
    delete map['Content-Length'];
    count--;
  }
  if (http2) {
    const cookies = map['Cookie'];
    if (cookies !== undefined && cookies.length > 1) map['Cookie'] = [cookies.join('; ')];
  }
  if (count < 2) return map;
  const sorted = Object.create(null) as HeaderMap;
  for (const name of Object.keys(map).sort()) sorted[name] = map[name]!;
  return sorted;
}

/** collectHeaders' answer for a request without any header it keeps; frozen, as it is shared. */
export const NO_HEADERS: HeaderMap = Object.freeze(Object.create(null) as HeaderMap);

/** The first value of a header in Node's parsed header object (duplicates of Content-Type are already dropped). */
export function firstHeader(headers: IncomingHttpHeaders, name: string): string {
  const value = headers[name];
  if (value === undefined) return '';
  return Array.isArray(value) ? (value[0] ?? '') : value;
}

export interface MediaType {
  /** Lower-cased `type/subtype` (or disposition type); '' when the value could not be parsed at all. */
  type: string;
  /** Lower-cased parameter names -> values; null when the parameters were malformed (Go returns an error). */
  params: Record<string, string> | null;
}

function isSpaceCode(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13) || c === 0x85 || c === 0xa0;
}

function skipSpace(s: string, i: number): number {
  while (i < s.length && isSpaceCode(s.charCodeAt(i))) i++;
  return i;
}

function tokenEnd(s: string, i: number): number {
  while (i < s.length && isTokenCode(s.charCodeAt(i))) i++;
  return i;
}

// tspecials of RFC 2045: a backslash before one of them in a quoted string is an escape, otherwise a literal (MSIE).
const TSPECIALS = '()<>@,;:\\"/[]?=';

/**
 * Go's mime.ParseMediaType, including RFC 2231 `name*=utf-8''%e2%82%ac` values and `name*0`, `name*1` continuations.
 */
export function parseMediaType(v: string): MediaType {
  const semi = v.indexOf(';');
  const type = (semi === -1 ? v : v.slice(0, semi)).toLowerCase().trim();
  if (!validMediaType(type)) return { type: '', params: null };
  const params = Object.create(null) as Record<string, string>;
  let continuation: Map<string, Map<string, string>> | null = null;
  let i = semi === -1 ? v.length : semi;
  while (i < v.length) {
    i = skipSpace(v, i);
    if (i >= v.length) break;
    const param = consumeMediaParam(v, i);
    if (param === null) {
      if (v.slice(i).trim() === ';') break; // a trailing semicolon is ignored
      return { type, params: null };
    }
    let target: Map<string, string> | Record<string, string> = params;
    const star = param.key.indexOf('*');
    if (star !== -1) {
      continuation ??= new Map();
      const base = param.key.slice(0, star);
      let pieces = continuation.get(base);
      if (pieces === undefined) continuation.set(base, (pieces = new Map<string, string>()));
      target = pieces;
    }
    const existing = target instanceof Map ? target.get(param.key) : target[param.key];
    if (existing !== undefined && existing !== param.value) return { type: '', params: null }; // duplicate parameter
    if (target instanceof Map) target.set(param.key, param.value);
    else target[param.key] = param.value;
    i = param.next;
  }
  if (continuation !== null) {
    for (const [base, pieces] of continuation) {
      const single = pieces.get(base + '*');
      if (single !== undefined) {
        const decoded = decode2231(single);
        if (decoded !== null) params[base] = decoded;
        continue;
      }
      let joined = '';
      let valid = false;
      for (let n = 0; ; n++) {
        const simple = pieces.get(`${base}*${n}`);
        if (simple !== undefined) {
          valid = true;
          joined += simple;
          continue;
        }
        const encoded = pieces.get(`${base}*${n}*`);
        if (encoded === undefined) break;
        valid = true;
        if (n === 0) joined += decode2231(encoded) ?? '';
        else joined += percentUnescape(encoded) ?? '';
      }
      if (valid) params[base] = joined;
    }
  }
  return { type, params };
}

function validMediaType(s: string): boolean {
  const end = tokenEnd(s, 0);
  if (end === 0) return false;
  if (end === s.length) return true;
  if (s.charCodeAt(end) !== 47 /* '/' */) return false;
  const subEnd = tokenEnd(s, end + 1);
  return subEnd > end + 1 && subEnd === s.length;
}

function consumeMediaParam(v: string, start: number): { key: string; value: string; next: number } | null {
  let i = skipSpace(v, start);
  if (v.charCodeAt(i) !== 59 /* ';' */) return null;
  i = skipSpace(v, i + 1);
  const keyEnd = tokenEnd(v, i);
  if (keyEnd === i) return null;
  const key = v.slice(i, keyEnd).toLowerCase();
  i = skipSpace(v, keyEnd);
  if (v.charCodeAt(i) !== 61 /* '=' */) return null;
  i = skipSpace(v, i + 1);
  if (i >= v.length) return null;
  if (v.charCodeAt(i) !== 34 /* '"' */) {
    const valueEnd = tokenEnd(v, i);
    if (valueEnd === i) return null;
    return { key, value: v.slice(i, valueEnd), next: valueEnd };
  }
  let value = '';
  for (let j = i + 1; j < v.length; j++) {
    const c = v[j]!;
    if (c === '"') return { key, value, next: j + 1 };
    if (c === '\\' && j + 1 < v.length && TSPECIALS.includes(v[j + 1]!)) {
      value += v[j + 1];
      j++;
      continue;
    }
    if (c === '\r' || c === '\n') return null;
    value += c;
  }
  return null; // no closing quote
}

function decode2231(v: string): string | null {
  const first = v.indexOf("'");
  if (first === -1) return null;
  const second = v.indexOf("'", first + 1);
  if (second === -1) return null;
  const charset = v.slice(0, first).toLowerCase();
  if (charset !== 'us-ascii' && charset !== 'utf-8') return null;
  return percentUnescape(v.slice(second + 1));
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** %XX decoding only ('+' stays), bytes read as UTF-8; null on a malformed escape. */
function percentUnescape(s: string): string | null {
  if (s.indexOf('%') === -1) return s;
  const bytes = Buffer.from(s, 'utf8');
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (c === 37) {
      const hi = i + 2 < bytes.length ? hexValue(bytes[i + 1]!) : -1;
      const lo = i + 2 < bytes.length ? hexValue(bytes[i + 2]!) : -1;
      if (hi < 0 || lo < 0) return null;
      bytes[n++] = (hi << 4) | lo;
      i += 2;
    } else {
      bytes[n++] = c;
    }
  }
  return bytes.toString('utf8', 0, n);
}
