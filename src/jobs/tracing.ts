// The OpenTelemetry headers RoadRunner's jobs drivers add to every job, `Traceparent` and `Uber-Trace-Id`, written
// at push and continued at each delivery as its propagators do (docs/jobs.md §2.2.1); no span is recorded or exported.
import { randomFillSync } from 'node:crypto';
import type { JobHeaders } from './driver.js';

/** The keys as Go's http.Header.Set writes them (canonical case). */
export const TRACEPARENT = 'Traceparent';
export const UBER_TRACE_ID = 'Uber-Trace-Id';

/** The trace flag bits the W3C propagator keeps (sampled, random) and Jaeger's debug bit. */
const FLAG_SAMPLED = 0x01;
const W3C_FLAGS = 0x03;
const JAEGER_DEBUG = 0x02;

const TRACE_ID = /^[0-9a-f]{32}$/;
const SPAN_ID = /^[0-9a-f]{16}$/;
const TWO_HEX = /^[0-9a-f]{2}$/;
const JAEGER_FLAGS = /^([+-]?)([0-9a-fA-F]+)$/;
const SHORT_FLAGS = /^[0-9a-fA-F]{1,13}$/;
/** Uber-Trace-Id as RoadRunner and rrts write it: one test and two slices instead of the general parse. */
const OWN_JAEGER = /^[0-9a-f]{32}:[0-9a-f]{16}:0:[013]$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

// Ids come out of one CSPRNG fill at a time, kept as hex: a push and a delivery each take a slice of it instead of
// a call into OpenSSL and a hex conversion of their own.
const POOL_BYTES = 4096;
const pool = Buffer.allocUnsafe(POOL_BYTES);
let poolHex = '';
let poolAt = 0;

function randomHex(chars: number): string {
  if (poolAt + chars > poolHex.length) {
    randomFillSync(pool);
    poolHex = pool.toString('hex');
    poolAt = 0;
  }
  const hex = poolHex.slice(poolAt, poolAt + chars);
  poolAt += chars;
  return hex;
}

/** A new 128-bit trace id, 32 lowercase hex digits, never all zeros (the Go SDK's rule). */
export function newTraceId(): string {
  let id = randomHex(32);
  while (id === ZERO_TRACE) id = randomHex(32);
  return id;
}

/** A new 64-bit span id, 16 lowercase hex digits, never all zeros. */
export function newSpanId(): string {
  let id = randomHex(16);
  while (id === ZERO_SPAN) id = randomHex(16);
  return id;
}

/** What a span carries into the headers: its ids, the W3C flags, and whether Jaeger's debug bit rides along. */
export interface SpanContext {
  traceId: string;
  spanId: string;
  flags: number;
  debug: boolean;
}

/**
 * Writes a span into the headers as RoadRunner's propagators inject it: `Traceparent` = `00-<trace>-<span>-<flags>`
 * and `Uber-Trace-Id` = `<trace>:<span>:0:<flags>` (full-width ids, parent always 0, flags 1, 0, or 3 for debug),
 * each replacing the key's values. A pushed `Baggage` or `Tracestate` stays as it is (docs/jobs.md).
 */
export function injectSpan(headers: JobHeaders, span: SpanContext): void {
  const flags = span.flags & W3C_FLAGS;
  // joined, not a template: a template is a rope of slices of the id pool that a waiting job keeps alive (and the GC
  // keeps tracing); join writes one flat string
  headers[TRACEPARENT] = [['00', span.traceId, span.spanId, `0${flags}`].join('-')];
  const jaegerFlags = span.debug ? '3' : flags & FLAG_SAMPLED ? '1' : '0';
  headers[UBER_TRACE_ID] = [[span.traceId, span.spanId, '0', jaegerFlags].join(':')];
}

/**
 * The push: RoadRunner's RPC call starts a new trace (one per Push, one per PushBatch call) and each job's driver
 * push span, its child, goes into the job's headers, replacing any `Traceparent` or `Uber-Trace-Id` the producer
 * set. `traceId` is the call's trace.
 */
export function injectPushSpan(headers: JobHeaders, traceId: string): void {
  injectSpan(headers, { traceId, spanId: newSpanId(), flags: FLAG_SAMPLED, debug: false });
}

/**
 * A delivery: the driver's listener span continues the trace the headers carry (same trace id, a new span id,
 * sampled as its parent was) or starts a new sampled trace when they carry none, and replaces the two headers.
 */
export function continueTrace(headers: JobHeaders): void {
  const parent = extractSpan(headers);
  if (parent === null) {
    injectSpan(headers, { traceId: newTraceId(), spanId: newSpanId(), flags: FLAG_SAMPLED, debug: false });
    return;
  }
  // ParentBased(AlwaysSample): the child keeps its parent's flags and its sampling decision
  injectSpan(headers, { traceId: parent.traceId, spanId: newSpanId(), flags: parent.flags, debug: parent.debug });
}

/**
 * The parent span in the headers, as the composite propagator extracts it: `Traceparent` first, then a valid
 * `Uber-Trace-Id` replaces it (Jaeger is the last propagator). Values are read as http.Header.Get does: the
 * canonical key's first value.
 */
export function extractSpan(headers: JobHeaders): SpanContext | null {
  return extractJaeger(headers[UBER_TRACE_ID]?.[0]) ?? extractTraceparent(headers[TRACEPARENT]?.[0]);
}

/** go.opentelemetry.io/otel/propagation TraceContext.extract (v1.44): version 00 exactly, later versions may add fields. */
export function extractTraceparent(value: string | undefined): SpanContext | null {
  if (!value) return null;
  const [version, traceId, spanId, flags, rest] = cutAll(value, 4) as [string, string, string, string, string];
  if (!TWO_HEX.test(version) || version === 'ff') return null;
  if (!TRACE_ID.test(traceId) || !SPAN_ID.test(spanId) || !TWO_HEX.test(flags)) return null;
  const bits = parseInt(flags, 16);
  // version 00 allows nothing after the flags (a trailing dash leaves "", which Go lets pass) and no reserved bit
  if (version === '00' && (rest !== '' || bits > W3C_FLAGS)) return null;
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return null;
  return { traceId, spanId, flags: bits & W3C_FLAGS, debug: false };
}

/** go.opentelemetry.io/contrib/propagators/jaeger extract (v1.44): short ids are zero-padded, flags are hex. */
export function extractJaeger(value: string | undefined): SpanContext | null {
  if (!value) return null;
  if (value.length === 53 && OWN_JAEGER.test(value)) {
    const traceId = value.slice(0, 32);
    const spanId = value.slice(33, 49);
    if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return null;
    return jaegerSpan(traceId, spanId, value.charCodeAt(52) - 0x30);
  }
  const parts = value.split(':');
  if (parts.length !== 4) return null;
  const [trace, span, , flagText] = parts as [string, string, string, string];
  if (trace === '' || span === '' || trace.length > 32 || span.length > 16) return null;
  const traceId = trace.padStart(32, '0');
  const spanId = span.padStart(16, '0');
  if (!TRACE_ID.test(traceId) || !SPAN_ID.test(spanId) || traceId === ZERO_TRACE || spanId === ZERO_SPAN) return null;
  let bits = 0;
  if (flagText !== '') {
    const parsed = jaegerFlagBits(flagText);
    if (parsed === null) return null;
    bits = parsed;
  }
  return jaegerSpan(traceId, spanId, bits);
}

/** Only the sampled bit becomes a trace flag; the debug bit counts only with it. */
function jaegerSpan(traceId: string, spanId: string, bits: number): SpanContext {
  const sampled = (bits & FLAG_SAMPLED) !== 0;
  return { traceId, spanId, flags: sampled ? FLAG_SAMPLED : 0, debug: sampled && (bits & JAEGER_DEBUG) !== 0 };
}

/** The low two bits of strconv.ParseInt(text, 16, 64), two's complement for a negative number; null when it errs. */
function jaegerFlagBits(text: string): number | null {
  // without a BigInt when it can: 13 hex digits fit a double exactly
  if (SHORT_FLAGS.test(text)) return parseInt(text, 16) & 0x03;
  const match = JAEGER_FLAGS.exec(text);
  if (!match) return null;
  const magnitude = BigInt(`0x${match[2]!}`);
  const value = match[1] === '-' ? -magnitude : magnitude;
  if (value > 0x7fffffffffffffffn || value < -0x8000000000000000n) return null;
  return Number(BigInt.asUintN(2, value));
}

/** Go's strings.Cut on "-", `count` times: the parts, then what is left ("" once no dash is left, as Cut returns). */
function cutAll(value: string, count: number): string[] {
  const parts: string[] = [];
  let rest = value;
  for (let i = 0; i < count; i++) {
    const dash = rest.indexOf('-');
    parts.push(dash < 0 ? rest : rest.slice(0, dash));
    rest = dash < 0 ? '' : rest.slice(dash + 1);
  }
  parts.push(rest);
  return parts;
}
