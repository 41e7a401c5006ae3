// The `cookies` object of the request context: Go's (*http.Request).Cookies() rules, then each value URL-unescaped
// the way RoadRunner does (url.QueryUnescape; a value that fails to unescape drops the cookie).

import { isTokenCode } from './headers.js';
import { queryUnescape } from './form-tree.js';

/** Go's textproto.TrimString: ASCII space, tab, CR, LF. */
function trimAscii(s: string, start: number, end: number): [number, number] {
  while (start < end && isTrimCode(s.charCodeAt(start))) start++;
  while (end > start && isTrimCode(s.charCodeAt(end - 1))) end--;
  return [start, end];
}

function isTrimCode(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13;
}

function isCookieName(s: string, start: number, end: number): boolean {
  if (start === end) return false;
  for (let i = start; i < end; i++) if (!isTokenCode(s.charCodeAt(i))) return false;
  return true;
}

/** Go's validCookieValueByte: printable ASCII except '"', ';' and '\'. */
function isCookieValue(s: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c >= 0x7f || c === 34 || c === 59 || c === 92) return false;
  }
  return true;
}

function unescapeCookieValue(value: string): string | null {
  if (value.indexOf('%') === -1 && value.indexOf('+') === -1) return value;
  const bytes = Buffer.from(value, 'latin1'); // the value is printable ASCII here
  return queryUnescape(bytes, 0, bytes.length);
}

/** parseCookies' answer without a Cookie header (most requests); frozen, as it is shared. */
export const NO_COOKIES: Record<string, string> = Object.freeze(Object.create(null) as Record<string, string>);

/**
 * Parses every `Cookie` header line: pairs split on ';', names must be tokens, one pair of surrounding double
 * quotes is removed, values must be cookie-octets, then URL-unescaped. The last cookie of a name wins; names are
 * sorted (Go's JSON encoder sorts map keys). Returns `{}` when there are none (a shared frozen one without a line).
 */
export function parseCookies(lines: readonly string[] | undefined): Record<string, string> {
  if (lines === undefined) return NO_COOKIES;
  const cookies = Object.create(null) as Record<string, string>;
  let count = 0;
  for (const line of lines) {
    let pos = 0;
    while (pos < line.length) {
      let semi = line.indexOf(';', pos);
      if (semi === -1) semi = line.length;
      const [start, end] = trimAscii(line, pos, semi);
      pos = semi + 1;
      if (start === end) continue;
      let eq = line.indexOf('=', start);
      if (eq === -1 || eq > end) eq = end;
      const [nameStart, nameEnd] = trimAscii(line, start, eq);
      if (!isCookieName(line, nameStart, nameEnd)) continue;
      let valueStart = eq < end ? eq + 1 : end;
      let valueEnd = end;
      if (valueEnd - valueStart > 1 && line.charCodeAt(valueStart) === 34 && line.charCodeAt(valueEnd - 1) === 34) {
        valueStart++;
        valueEnd--;
      }
      if (!isCookieValue(line, valueStart, valueEnd)) continue;
      const value = unescapeCookieValue(line.slice(valueStart, valueEnd));
      if (value === null) continue;
      const name = line.slice(nameStart, nameEnd);
      if (cookies[name] === undefined) count++;
      cookies[name] = value;
    }
  }
  if (count < 2) return cookies;
  const sorted = Object.create(null) as Record<string, string>;
  for (const name of Object.keys(cookies).sort()) sorted[name] = cookies[name]!;
  return sorted;
}
