// Go's encoding/json for the strings and header maps of a job's context, written out by hand: they run for every
// job, and goJson's replacer costs more than the rest of a context (docs/benchmarks.md, "Jobs throughput").
import type { JobHeaders } from './driver.js';

const GO_ESCAPED = /[<>&\u2028\u2029]/;
const GO_ESCAPED_ALL = /[<>&\u2028\u2029]/g;

/** A string as goJson writes it: JSON.stringify's text with <, >, &, U+2028 and U+2029 escaped as Go does. */
export function goString(text: string): string {
  // nearly every id, name and header is printable ASCII that needs no escape: quoted as is, without the C++
  // round trip of JSON.stringify and the regex over its result (most of a context's cost per job)
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c || c === 0x3c || c === 0x3e || c === 0x26) return escapedGoString(text);
  }
  return `"${text}"`;
}

function escapedGoString(text: string): string {
  const json = JSON.stringify(text);
  return GO_ESCAPED.test(json) ? json.replace(GO_ESCAPED_ALL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`) : json;
}

/**
 * Go sorts map keys by their UTF-8 bytes, which is code point order: UTF-16 units order alike except where a
 * surrogate (a code point above U+FFFF) meets U+E000..U+FFFF, which it follows. No encoding needed.
 */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const xSurrogate = x >= 0xd800 && x <= 0xdfff;
    const ySurrogate = y >= 0xd800 && y <= 0xdfff;
    if (xSurrogate === ySurrogate) return x - y;
    return xSurrogate ? 1 : -1;
  }
  return a.length - b.length;
}

/**
 * Go's json.Marshal of a map[string][]string: keys sorted bytewise, a nil list as null, `null` for a nil map. An
 * object built for JSON.stringify would also put integer-like keys first, out of Go's order. `quote` writes each
 * string (a driver that replaces lone surrogates as Go does passes its own).
 */
export function goHeadersJson(headers: JobHeaders | null, quote: (text: string) => string = goString): string {
  if (headers === null) return 'null';
  const keys = Object.keys(headers);
  if (keys.length > 1) keys.sort(compareUtf8);
  let out = '{';
  for (let i = 0; i < keys.length; i++) {
    const values = headers[keys[i]!];
    let list = 'null';
    if (values !== undefined && values !== null) {
      list = '[';
      for (let j = 0; j < values.length; j++) list += (j === 0 ? '' : ',') + quote(values[j]!);
      list += ']';
    }
    out += `${i === 0 ? '' : ','}${quote(keys[i]!)}:${list}`;
  }
  return `${out}}`;
}
