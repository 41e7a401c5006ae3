// Test helpers for the tracing headers every delivered job carries (src/jobs/tracing.ts): read their ids, check
// their shape, and set them aside where a test compares the rest of the headers or the context JSON exactly.
import assert from 'node:assert/strict';
import type { JobHeaders } from '../../src/jobs/driver.js';

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[0-3]$/;

/** The ids in Traceparent, after checking both headers are well formed and name the same span. */
export function traceOf(headers: JobHeaders | null | undefined): { traceId: string; spanId: string } {
  const traceparent = headers?.Traceparent;
  const uber = headers?.['Uber-Trace-Id'];
  assert.equal(traceparent?.length, 1, `one Traceparent in ${JSON.stringify(headers)}`);
  assert.equal(uber?.length, 1, `one Uber-Trace-Id in ${JSON.stringify(headers)}`);
  const match = TRACEPARENT.exec(traceparent[0]!);
  assert.ok(match, `Traceparent ${traceparent[0]} is 00-<32 hex>-<16 hex>-<flags>`);
  const [, traceId, spanId] = match as unknown as [string, string, string];
  assert.match(uber[0]!, new RegExp(`^${traceId}:${spanId}:0:[013]$`));
  return { traceId, spanId };
}

/** The headers without Traceparent and Uber-Trace-Id (checked to be there and well formed). */
export function withoutTrace(headers: JobHeaders | null | undefined): JobHeaders {
  traceOf(headers);
  const rest = { ...headers };
  delete rest.Traceparent;
  delete rest['Uber-Trace-Id'];
  return rest;
}

/**
 * A context JSON with the two tracing headers taken out (checked to be there), so the rest can be compared byte for
 * byte; a context left with no header at all shows `{}`.
 */
export function contextWithoutTrace(context: string): string {
  const parsed = JSON.parse(context) as { headers: JobHeaders | null };
  traceOf(parsed.headers);
  return context.replace(/(,?)"Traceparent":\["[^"]*"\],"Uber-Trace-Id":\["[^"]*"\](,?)/, (_all, before: string, after: string) =>
    before !== '' && after !== '' ? ',' : '',
  );
}
