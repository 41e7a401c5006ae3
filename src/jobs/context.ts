// The context JSON of a job frame as Go's encoding/json writes a driver's context struct (docs/jobs.md §2.2):
// fields in the struct's order, compact, map keys (the headers) sorted, <, >, & escaped, a nil map as null.
import { goJson } from '../rpc/codec.js';
import type { JobHeaders } from './driver.js';

/** [key, value] in the driver's field order; an `undefined` value is left out (Go's omitempty). */
export function contextJson(fields: ReadonlyArray<readonly [string, string | JobHeaders | null | undefined]>): string {
  const parts: string[] = [];
  for (const [key, value] of fields) {
    if (value === undefined) continue;
    parts.push(`${JSON.stringify(key)}:${typeof value === 'string' || value === null ? goJson(value) : headersJson(value)}`);
  }
  return `{${parts.join(',')}}`;
}

/** Go sorts map keys by their bytes; for the UTF-16 strings of header names, code point order is the same. */
function headersJson(headers: JobHeaders): string {
  const keys = Object.keys(headers).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return `{${keys.map((k) => `${goJson(k)}:${goJson(headers[k] ?? null)}`).join(',')}}`;
}
