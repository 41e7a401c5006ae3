// The tracing headers of jobs (docs/jobs.md §2.2.1): formats, the push span replacing a producer's, a delivery going
// on with the trace it finds (W3C and Jaeger rules of go.opentelemetry.io v1.44), their place in the context JSON.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { contextJson } from '../../src/jobs/context.js';
import type { JobHeaders } from '../../src/jobs/driver.js';
import {
  continueTrace,
  extractJaeger,
  extractSpan,
  extractTraceparent,
  injectPushSpan,
  newSpanId,
  newTraceId,
  TRACEPARENT,
  UBER_TRACE_ID,
} from '../../src/jobs/tracing.js';
import { traceOf } from './trace-headers.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';

describe('trace and span ids', () => {
  test('are lowercase hex of 32 and 16 digits, never zero, and do not repeat', () => {
    const traces = new Set<string>();
    const spans = new Set<string>();
    // more than one fill of the random pool
    for (let i = 0; i < 2000; i++) {
      const trace = newTraceId();
      const span = newSpanId();
      assert.match(trace, /^[0-9a-f]{32}$/);
      assert.match(span, /^[0-9a-f]{16}$/);
      assert.notEqual(trace, '0'.repeat(32));
      assert.notEqual(span, '0'.repeat(16));
      traces.add(trace);
      spans.add(span);
    }
    assert.equal(traces.size, 2000);
    assert.equal(spans.size, 2000);
  });
});

describe('the push span', () => {
  test('writes Traceparent 00-trace-span-01 and Uber-Trace-Id trace:span:0:1 with the same ids', () => {
    const headers: JobHeaders = { 'x-a': ['1'] };
    injectPushSpan(headers, TRACE);
    const [traceparent] = headers[TRACEPARENT]!;
    const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(traceparent!);
    assert.ok(match, traceparent);
    assert.equal(match[1], TRACE);
    assert.deepEqual(headers[UBER_TRACE_ID], [`${TRACE}:${match[2]}:0:1`]);
    assert.deepEqual(headers['x-a'], ['1']);
    assert.equal(headers[TRACEPARENT]!.length, 1);
  });

  test("replaces the producer's canonical keys (one value each) and leaves other spellings, Baggage and Tracestate alone", () => {
    const headers: JobHeaders = {
      Traceparent: [`00-${TRACE}-${SPAN}-01`, 'second'],
      'Uber-Trace-Id': [`${TRACE}:${SPAN}:0:1`],
      traceparent: ['lower'],
      Baggage: ['k=v'],
      Tracestate: ['vendor=x'],
    };
    injectPushSpan(headers, 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa');
    const pushed = traceOf(headers);
    assert.equal(pushed.traceId, 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa');
    assert.notEqual(pushed.spanId, SPAN);
    assert.equal(headers[TRACEPARENT]!.length, 1);
    assert.deepEqual([headers.traceparent, headers.Baggage, headers.Tracestate], [['lower'], ['k=v'], ['vendor=x']]);
  });

  test('each job of a call gets its own span of the same trace', () => {
    const a: JobHeaders = {};
    const b: JobHeaders = {};
    injectPushSpan(a, TRACE);
    injectPushSpan(b, TRACE);
    assert.equal(traceOf(a).traceId, traceOf(b).traceId);
    assert.notEqual(traceOf(a).spanId, traceOf(b).spanId);
  });
});

describe('a delivery continues the trace', () => {
  test('from the push: same trace id, a new span id, sampled', () => {
    const headers: JobHeaders = {};
    injectPushSpan(headers, TRACE);
    const pushed = traceOf(headers);
    continueTrace(headers);
    const delivered = traceOf(headers);
    assert.equal(delivered.traceId, TRACE);
    assert.notEqual(delivered.spanId, pushed.spanId);
    assert.match(headers[TRACEPARENT]![0]!, /-01$/);
    assert.match(headers[UBER_TRACE_ID]![0]!, /:0:1$/);
  });

  test('with none to continue, a new sampled trace', () => {
    const headers: JobHeaders = { a: ['1'] };
    continueTrace(headers);
    assert.match(headers[TRACEPARENT]![0]!, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const { traceId, spanId } = traceOf(headers);
    assert.deepEqual(headers[UBER_TRACE_ID], [`${traceId}:${spanId}:0:1`]);
  });

  test('Uber-Trace-Id wins over Traceparent (Jaeger is the last propagator); a broken one falls back to Traceparent', () => {
    const other = 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';
    const both: JobHeaders = { Traceparent: [`00-${TRACE}-${SPAN}-01`], 'Uber-Trace-Id': [`${other}:${SPAN}:0:1`] };
    continueTrace(both);
    assert.equal(traceOf(both).traceId, other);
    const broken: JobHeaders = { Traceparent: [`00-${TRACE}-${SPAN}-01`], 'Uber-Trace-Id': [`${other}:${SPAN}:0`] };
    continueTrace(broken);
    assert.equal(traceOf(broken).traceId, TRACE);
  });

  test("keeps its parent's sampling: not sampled stays not sampled, Jaeger's debug bit rides along", () => {
    const unsampled: JobHeaders = { 'Uber-Trace-Id': [`${TRACE}:${SPAN}:0:0`] };
    continueTrace(unsampled);
    assert.match(unsampled[TRACEPARENT]![0]!, new RegExp(`^00-${TRACE}-[0-9a-f]{16}-00$`));
    assert.match(unsampled[UBER_TRACE_ID]![0]!, /:0:0$/);
    const debug: JobHeaders = { 'Uber-Trace-Id': [`${TRACE}:${SPAN}:0:3`] };
    continueTrace(debug);
    assert.match(debug[TRACEPARENT]![0]!, /-01$/);
    assert.match(debug[UBER_TRACE_ID]![0]!, /:0:3$/);
    // W3C's random bit is kept by the W3C header only
    const random: JobHeaders = { Traceparent: [`00-${TRACE}-${SPAN}-03`] };
    continueTrace(random);
    assert.match(random[TRACEPARENT]![0]!, /-03$/);
    assert.match(random[UBER_TRACE_ID]![0]!, /:0:1$/);
  });

  test('reads only the canonical keys, first value, as http.Header.Get does', () => {
    const lower: JobHeaders = { traceparent: [`00-${TRACE}-${SPAN}-01`], 'uber-trace-id': [`${TRACE}:${SPAN}:0:1`] };
    continueTrace(lower);
    assert.notEqual(traceOf(lower).traceId, TRACE);
    assert.deepEqual(lower.traceparent, [`00-${TRACE}-${SPAN}-01`]);
    const many: JobHeaders = { Traceparent: [`00-${TRACE}-${SPAN}-01`, 'junk'] };
    continueTrace(many);
    assert.equal(traceOf(many).traceId, TRACE);
    assert.equal(many[TRACEPARENT]!.length, 1);
  });
});

describe('Traceparent as TraceContext.extract reads it', () => {
  const valid = [
    [`00-${TRACE}-${SPAN}-01`, 1],
    [`00-${TRACE}-${SPAN}-00`, 0],
    [`00-${TRACE}-${SPAN}-02`, 2],
    [`00-${TRACE}-${SPAN}-01-`, 1], // Go's strings.Cut leaves nothing after a trailing dash
    [`01-${TRACE}-${SPAN}-01-later-fields`, 1],
    [`fe-${TRACE}-${SPAN}-ff`, 3],
  ] as const;
  for (const [value, flags] of valid) {
    test(`takes ${value}`, () => {
      assert.deepEqual(extractTraceparent(value), { traceId: TRACE, spanId: SPAN, flags, debug: false });
    });
  }
  const invalid = [
    '',
    `00-${TRACE}-${SPAN}-04`,
    `00-${TRACE}-${SPAN}-01-x`,
    `ff-${TRACE}-${SPAN}-01`,
    `00-${TRACE.toUpperCase()}-${SPAN}-01`,
    `00-${'0'.repeat(32)}-${SPAN}-01`,
    `00-${TRACE}-${'0'.repeat(16)}-01`,
    `00-${TRACE}-${SPAN}`,
    `0-${TRACE}-${SPAN}-01`,
    `00-${TRACE}1-${SPAN}-01`,
    `00_${TRACE}-${SPAN}-01`,
  ];
  for (const value of invalid) {
    test(`refuses ${JSON.stringify(value)}`, () => assert.equal(extractTraceparent(value), null));
  }
});

describe('Uber-Trace-Id as the Jaeger propagator reads it', () => {
  test('pads short ids with zeros; flags are hex, sampled bit then debug bit', () => {
    assert.deepEqual(extractJaeger('abc:def:0:1'), { traceId: `${'0'.repeat(29)}abc`, spanId: `${'0'.repeat(13)}def`, flags: 1, debug: false });
    assert.deepEqual(extractJaeger(`${TRACE}:${SPAN}:ignored:3`), { traceId: TRACE, spanId: SPAN, flags: 1, debug: true });
    assert.deepEqual(extractJaeger(`${TRACE}:${SPAN}:0:2`), { traceId: TRACE, spanId: SPAN, flags: 0, debug: false }, 'debug needs sampled');
    assert.deepEqual(extractJaeger(`${TRACE}:${SPAN}:0:`), { traceId: TRACE, spanId: SPAN, flags: 0, debug: false });
    assert.deepEqual(extractJaeger(`${TRACE}:${SPAN}:0:Ff`), { traceId: TRACE, spanId: SPAN, flags: 1, debug: true });
    assert.deepEqual(extractJaeger(`${TRACE}:${SPAN}:0:-1`), { traceId: TRACE, spanId: SPAN, flags: 1, debug: true }, 'two’s complement');
  });

  const invalid = [
    `${TRACE}:${SPAN}:0`,
    `${TRACE}:${SPAN}:0:1:1`,
    `:${SPAN}:0:1`,
    `${TRACE}::0:1`,
    `${TRACE}0:${SPAN}:0:1`,
    `${TRACE}:${SPAN}0:0:1`,
    `${TRACE.toUpperCase()}:${SPAN}:0:1`,
    `0:${SPAN}:0:1`,
    `${TRACE}:0:0:1`,
    `${TRACE}:${SPAN}:0:x`,
    `${TRACE}:${SPAN}:0:0x1`,
    `${TRACE}:${SPAN}:0:8000000000000000`,
  ];
  for (const value of invalid) {
    test(`refuses ${JSON.stringify(value)}`, () => assert.equal(extractJaeger(value), null));
  }

  test('extractSpan prefers a valid Uber-Trace-Id', () => {
    assert.equal(extractSpan({ Traceparent: [`00-${TRACE}-${SPAN}-01`], 'Uber-Trace-Id': ['1:2:0:1'] })!.traceId, `${'0'.repeat(31)}1`);
    assert.equal(extractSpan({}), null);
  });
});

describe('in the context JSON', () => {
  test('the two keys sort before lowercase header names, as Go sorts map keys by bytes', () => {
    const headers: JobHeaders = { 'x-a': ['1'], Accept: ['a'] };
    injectPushSpan(headers, TRACE);
    const { spanId } = traceOf(headers);
    assert.equal(
      contextJson([
        ['id', 'id-1'],
        ['headers', headers],
      ]),
      `{"id":"id-1","headers":{"Accept":["a"],"Traceparent":["00-${TRACE}-${spanId}-01"],"Uber-Trace-Id":["${TRACE}:${spanId}:0:1"],"x-a":["1"]}}`,
    );
  });
});
