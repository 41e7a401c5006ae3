// Go's encoding/json for the strings and header maps of a job's context, written out by hand: they run for every
// job, and goJson's replacer costs more than the rest of a context (docs/benchmarks.md, "Jobs throughput").
import type { JobHeaders } from './driver.js';

const GO_ESCAPED = /[<>&\u2028\u2029]/;
const GO_ESCAPED_ALL = /[<>&\u2028\u2029]/g;
/** Printable ASCII but ", \, <, > and &: written as it is, quoted, by Go and by JSON.stringify. */
const PLAIN = /^[\x20\x21\x23-\x25\x27-\x3b\x3d\x3f-\x5b\x5d-\x7e]*$/;

/** A string as goJson writes it: JSON.stringify's text with <, >, &, U+2028 and U+2029 escaped as Go does. */
export function goString(text: string): string {
  // ids, names, the tracing headers: one scan instead of JSON.stringify and a scan of its result
  if (PLAIN.test(text)) return `"${text}"`;
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
  if (keys.length > 1) sortKeys(keys);
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

/** Array.prototype.sort with a comparator costs more than the whole header map for a few keys: insertion sort then. */
function sortKeys(keys: string[]): void {
  if (keys.length > 16) {
    keys.sort(compareUtf8);
    return;
  }
  for (let i = 1; i < keys.length; i++) {
    const key = keys[i]!;
    let j = i - 1;
    for (; j >= 0 && compareUtf8(keys[j]!, key) > 0; j--) keys[j + 1] = keys[j]!;
    keys[j + 1] = key;
  }
}
