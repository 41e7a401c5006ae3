// Jobs as AMQP messages the way RoadRunner's amqpjobs packs them (rr_* headers, body = payload), and back: the job
// a delivery carries and the context JSON a worker gets (docs/jobs-amqp.md §2), so rrts and RoadRunner share queues.
import { randomUUID } from 'node:crypto';
import type { ConsumeMessage, Options } from 'amqplib';
import type { JobHeaders, JobItem } from '../../driver.js';
import { goHeadersJson, goString } from '../../go-json.js';
import { continueTrace, TRACEPARENT, UBER_TRACE_ID } from '../../tracing.js';

export const RR_ID = 'rr_id';
export const RR_JOB = 'rr_job';
export const RR_PIPELINE = 'rr_pipeline';
export const RR_HEADERS = 'rr_headers';
export const RR_DELAY = 'rr_delay';
export const RR_PRIORITY = 'rr_priority';
export const RR_AUTO_ACK = 'rr_auto_ack';
const RESERVED = new Set([RR_ID, RR_JOB, RR_PIPELINE, RR_HEADERS, RR_DELAY, RR_PRIORITY, RR_AUTO_ACK]);

/** The job header that picks the routing key of one push (removed from the job's headers). */
export const X_ROUTING_KEY = 'x-routing-key';
/** RoadRunner's job name for a message without rr_job (published by something else). */
export const UNNAMED_JOB = 'deduced_by_rr';
const CONTENT_TYPE = 'application/octet-stream';

/** The AMQP headers of a job. Types as amqp091-go writes RoadRunner's: rr_delay a Go int (int32), rr_priority int64. */
export function packHeaders(job: { id: string; job: string; pipeline: string; headers: JobHeaders; delaySeconds: number; priority: number; autoAck: boolean }) {
  return {
    [RR_ID]: job.id,
    [RR_JOB]: job.job,
    [RR_PIPELINE]: job.pipeline,
    // a byte array ('x'): RoadRunner reads rr_headers only as []byte
    [RR_HEADERS]: Buffer.from(headersJson(job.headers), 'utf8'),
    [RR_DELAY]: { '!': 'int32', value: job.delaySeconds },
    // int64: RoadRunner type-asserts rr_priority to int64 and panics on any other integer type
    [RR_PRIORITY]: { '!': 'int64', value: job.priority },
    [RR_AUTO_ACK]: job.autoAck,
  };
}

/** The publish properties RoadRunner sets (persistent, octet-stream, a timestamp), plus ours. */
export function publishOptions(headers: Record<string, unknown>, extra: Options.Publish = {}): Options.Publish {
  return { headers, contentType: CONTENT_TYPE, timestamp: Math.floor(Date.now() / 1000), persistent: true, ...extra };
}

/** Go's json.Marshal of a map[string][]string (the rr_headers header and the context's headers). */
export function headersJson(headers: JobHeaders | null): string {
  return goHeadersJson(headers);
}

/** amqpjobs Item.Context: {"id","job","driver":"amqp","queue","headers","pipeline"}, compact, as Go encodes it. */
export function amqpContext(id: string, job: string, queue: string, headers: JobHeaders | null, pipeline: string): string {
  return `{"id":${goString(id)},"job":${goString(job)},"driver":"amqp","queue":${goString(queue)},"headers":${headersJson(headers)},"pipeline":${goString(pipeline)}}`;
}

/** What a delivery carries: the job for the plugin, and the headers and pipeline its context shows. */
export interface UnpackedDelivery {
  item: JobItem;
  /** rr_pipeline of the message (RoadRunner shows the producer's pipeline), else the consuming pipeline */
  contextPipeline: string;
  /** every AMQP header as strings, overlaid by the pushed headers, as RoadRunner shows them to the worker */
  contextHeaders: JobHeaders;
}

export type HeaderWarn = (key: string, why: string) => void;

/**
 * amqpjobs unpack: rr_* headers give id, job, pipeline, delay, priority and auto_ack (RoadRunner's fallbacks when
 * missing); `item.headers` are the headers the producer pushed (rr_headers), without the rr_* keys, so a requeue
 * republishes what the application set and not RoadRunner's bookkeeping. Then the listener's span: the trace the
 * headers carry goes on with a new span, in the context and in what a requeue publishes.
 */
export function unpackDelivery(message: ConsumeMessage, pipeline: string, pipelinePriority: number, warn: HeaderWarn): UnpackedDelivery {
  const amqpHeaders: Record<string, unknown> = message.properties.headers ?? {};
  const contextHeaders = stringHeaders(amqpHeaders, warn);

  let pushed: JobHeaders | undefined;
  const packed = amqpHeaders[RR_HEADERS];
  if (Buffer.isBuffer(packed)) {
    try {
      pushed = headersFromJson(JSON.parse(packed.toString('utf8')));
      Object.assign(contextHeaders, pushed);
    } catch (err) {
      warn(RR_HEADERS, `not JSON (${(err as Error).message}); continuing without the pushed headers`);
    }
  }
  continueTrace(contextHeaders);
  const userHeaders = withoutReservedHeaders(pushed ?? contextHeaders);
  userHeaders[TRACEPARENT] = contextHeaders[TRACEPARENT]!;
  userHeaders[UBER_TRACE_ID] = contextHeaders[UBER_TRACE_ID]!;

  const id = amqpHeaders[RR_ID];
  const job = amqpHeaders[RR_JOB];
  const producerPipeline = amqpHeaders[RR_PIPELINE];
  const delay = amqpHeaders[RR_DELAY];
  const priority = amqpHeaders[RR_PRIORITY];
  const autoAck = amqpHeaders[RR_AUTO_ACK];
  return {
    item: {
      id: typeof id === 'string' ? id : randomUUID(),
      job: typeof job === 'string' ? job : UNNAMED_JOB,
      payload: message.content,
      headers: userHeaders,
      pipeline,
      priority: Number.isInteger(priority) && priority !== 0 ? (priority as number) : pipelinePriority,
      delaySeconds: Number.isInteger(delay) ? (delay as number) : 0,
      autoAck: autoAck === true,
    },
    contextPipeline: typeof producerPipeline === 'string' ? producerPipeline : pipeline,
    contextHeaders,
  };
}

/** The headers without RoadRunner's rr_* bookkeeping keys. */
export function withoutReservedHeaders(headers: JobHeaders): JobHeaders {
  const result: JobHeaders = {};
  for (const [key, values] of Object.entries(headers)) if (!RESERVED.has(key)) result[key] = values;
  return result;
}

/** JSON of a map[string][]string as Go's json.Unmarshal keeps it: lists of strings, null lists stay null. */
function headersFromJson(parsed: unknown): JobHeaders {
  const result: JobHeaders = {};
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return result;
  for (const [key, values] of Object.entries(parsed as Record<string, unknown>)) {
    if (Array.isArray(values)) result[key] = values.filter((v): v is string => typeof v === 'string');
  }
  return result;
}

/** amqpjobs convHeaders: every AMQP header value as strings; nested tables are flattened into their own keys. */
export function stringHeaders(table: Record<string, unknown>, warn: HeaderWarn): JobHeaders {
  const result: JobHeaders = {};
  for (const [key, value] of Object.entries(table)) appendHeader(result, key, value, warn);
  return result;
}

function appendHeader(result: JobHeaders, key: string, value: unknown, warn: HeaderWarn): void {
  const append = (text: string): void => {
    (result[key] ??= []).push(text);
  };
  if (typeof value === 'string') return append(value);
  if (typeof value === 'number') {
    // amqplib hands doubles and integers over alike; Go prints a float with 5 decimals
    return append(Number.isInteger(value) ? String(value) : value.toFixed(5));
  }
  if (typeof value === 'bigint') return append(value.toString());
  if (typeof value === 'boolean') {
    result[key] = [value ? 'true' : 'false'];
    return;
  }
  if (Buffer.isBuffer(value)) return append(value.toString('utf8'));
  if (Array.isArray(value)) {
    for (const element of value) appendHeader(result, key, element, warn);
    return;
  }
  if (value !== null && typeof value === 'object') {
    const typed = value as { '!'?: string; value?: unknown };
    if (typed['!'] === 'timestamp' && typeof typed.value === 'number') {
      return append(new Date(typed.value * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'));
    }
    if (typed['!'] === 'decimal') {
      const { places, digits } = typed.value as { places: number; digits: number };
      return append((digits / 10 ** places).toFixed(Math.min(places, 100)));
    }
    for (const [nestedKey, nested] of Object.entries(value as Record<string, unknown>)) appendHeader(result, nestedKey, nested, warn);
    return;
  }
  warn(key, `unknown header type (${value === null ? 'void' : typeof value}), ignored`);
}

/** The routing key of one push: the job's x-routing-key header (removed from the copy returned), else the pipeline's. */
export function takeRoutingKey(headers: JobHeaders, pipelineKey: string): { routingKey: string; headers: JobHeaders } {
  if (!(X_ROUTING_KEY in headers)) return { routingKey: pipelineKey, headers };
  const { [X_ROUTING_KEY]: override, ...rest } = headers;
  return { routingKey: override?.length === 1 && override[0] !== '' ? override[0]! : pipelineKey, headers: rest };
}
