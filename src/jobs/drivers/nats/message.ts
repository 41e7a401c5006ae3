// The body of a nats job message as RoadRunner's natsjobs writes it: its Item struct through Go's JSON encoder
// (payload base64, the Options' Queue field without a tag), so rrts and RoadRunner can share a stream.
import { goJson } from '../../../rpc/codec.js';

export interface NatsItem {
  job: string;
  id: string;
  payload: Buffer;
  priority: number;
  pipeline: string;
  delaySeconds: number;
  autoAck: boolean;
  /** empty on a push; the stream's name on a requeue (RoadRunner sets it when it receives a job) */
  queue: string;
}

/**
 * `{"job","id","payload","options":{"priority","pipeline"?,"delay"?,"auto_ack","Queue"}}`: Go's field order,
 * omitempty on pipeline and delay, an empty payload as null (a protobuf bytes field arrives in Go as nil).
 */
export function encodeItem(item: NatsItem): Buffer {
  const options: string[] = [`"priority":${item.priority}`];
  if (item.pipeline !== '') options.push(`"pipeline":${goJson(item.pipeline)}`);
  if (item.delaySeconds !== 0) options.push(`"delay":${item.delaySeconds}`);
  options.push(`"auto_ack":${item.autoAck}`, `"Queue":${goJson(item.queue)}`);
  const payload = item.payload.length === 0 ? 'null' : goJson(item.payload.toString('base64'));
  return Buffer.from(`{"job":${goJson(item.job)},"id":${goJson(item.id)},"payload":${payload},"options":{${options.join(',')}}}`);
}

/** The Item in a message body, or null when the body is not one (RoadRunner then runs it as a raw job). */
export function decodeItem(body: Uint8Array): NatsItem | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(body).toString('utf8'));
  } catch {
    return null;
  }
  if (!isObject(parsed)) return null;
  const options = isObject(parsed['options']) ? parsed['options'] : {};
  const payload = parsed['payload'];
  if (payload !== undefined && payload !== null && (typeof payload !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(payload))) return null;
  const text = (value: unknown) => (typeof value === 'string' ? value : '');
  const integer = (value: unknown) => (typeof value === 'number' && Number.isSafeInteger(value) ? value : 0);
  return {
    job: text(parsed['job']),
    id: text(parsed['id']),
    payload: typeof payload === 'string' ? Buffer.from(payload, 'base64') : Buffer.alloc(0),
    priority: integer(options['priority']),
    pipeline: text(options['pipeline']),
    delaySeconds: integer(options['delay']),
    autoAck: options['auto_ack'] === true,
    queue: text(options['Queue']),
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
