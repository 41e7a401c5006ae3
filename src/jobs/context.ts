// The context JSON of a job frame as Go's encoding/json writes a driver's context struct (docs/jobs.md §2.2):
// fields in the struct's order, compact, map keys (the headers) sorted, <, >, & escaped, a nil map as null.
import type { JobHeaders } from './driver.js';
import { goHeadersJson, goString } from './go-json.js';

/** [key, value] in the driver's field order; an `undefined` value is left out (Go's omitempty). */
export function contextJson(fields: ReadonlyArray<readonly [string, string | JobHeaders | null | undefined]>): string {
  let out = '{';
  for (const [key, value] of fields) {
    if (value === undefined) continue;
    out += `${out === '{' ? '' : ','}${JSON.stringify(key)}:${value === null ? 'null' : typeof value === 'string' ? goString(value) : goHeadersJson(value)}`;
  }
  return `${out}}`;
}
