// The context JSON a worker gets with a boltdb job, as RoadRunner's boltjobs Item.Context writes it with Go's
// encoding/json: fields id, job, driver, headers, queue, pipeline; header names sorted by their bytes.
import { goJson } from '../../../rpc/codec.js';
import type { JobHeaders } from '../../driver.js';

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Go replaces invalid UTF-8 (in a JS string: a lone surrogate) with U+FFFD. */
function goString(text: string): string {
  return goJson(text.replace(LONE_SURROGATE, '\uFFFD'));
}

function byBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** `null` for no headers, as Go writes a nil map. */
function headersJson(headers: JobHeaders): string {
  const names = Object.keys(headers);
  if (names.length === 0) return 'null';
  names.sort(byBytes);
  return `{${names.map((name) => `${goString(name)}:[${(headers[name] ?? []).map(goString).join(',')}]`).join(',')}}`;
}

export function boltdbContext(job: { id: string; job: string; headers: JobHeaders; pipeline: string }): string {
  return `{"id":${goString(job.id)},"job":${goString(job.job)},"driver":"boltdb","headers":${headersJson(job.headers)},"queue":"push","pipeline":${goString(job.pipeline)}}`;
}
