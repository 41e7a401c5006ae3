// The context JSON a worker gets with a boltdb job, as RoadRunner's boltjobs Item.Context writes it with Go's
// encoding/json: fields id, job, driver, headers, queue, pipeline; header names sorted by their bytes.
import type { JobHeaders } from '../../driver.js';
import { compareUtf8, goString as goJsonString } from '../../go-json.js';

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Go replaces invalid UTF-8 (in a JS string: a lone surrogate) with U+FFFD. */
function wellFormed(text: string): string {
  return text.replace(LONE_SURROGATE, '\uFFFD');
}

function goString(text: string): string {
  return goJsonString(wellFormed(text));
}

/** `null` for no headers, as Go writes a nil map; names sorted as Go sorts them once they are valid UTF-8. */
function headersJson(headers: JobHeaders): string {
  const names = Object.keys(headers);
  if (names.length === 0) return 'null';
  const sorted = names.map((name) => ({ name, text: wellFormed(name) })).sort((a, b) => compareUtf8(a.text, b.text));
  return `{${sorted.map(({ name, text }) => `${goJsonString(text)}:[${(headers[name] ?? []).map(goString).join(',')}]`).join(',')}}`;
}

export function boltdbContext(job: { id: string; job: string; headers: JobHeaders; pipeline: string }): string {
  return `{"id":${goString(job.id)},"job":${goString(job.job)},"driver":"boltdb","headers":${headersJson(job.headers)},"queue":"push","pipeline":${goString(job.pipeline)}}`;
}
