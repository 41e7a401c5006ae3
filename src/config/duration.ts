// Go durations ("300ms", "1m30s", "1.5h") to milliseconds. A bare integer is nanoseconds, as Go decodes it,
// so `allocate_timeout: 60` is 60 ns: that surprises people, but it is what RoadRunner does.
import { badValue } from './coerce.js';

const NANOS_PER_UNIT: Readonly<Record<string, number>> = {
  ns: 1,
  us: 1e3,
  µs: 1e3, // U+00B5 micro sign
  μs: 1e3, // U+03BC greek mu
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

const NANOS_PER_MS = 1e6;
const COMPONENT = /(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/gy;
const DIGITS_ONLY = /^\d+$/;

export const DURATION_EXPECTED = 'a duration like "60s" or "500ms"';

/** Milliseconds (may be fractional). Empty string (an unset ${VAR}) is 0, which callers treat as "use the default". */
export function parseDuration(value: unknown): number {
  if (typeof value === 'number') return nanosToMs(value);
  if (typeof value !== 'string') throw badValue(DURATION_EXPECTED);
  const text = value.trim();
  if (text === '') return 0;
  if (DIGITS_ONLY.test(text)) return nanosToMs(Number(text));
  return parseUnits(text);
}

function nanosToMs(nanos: number): number {
  if (!Number.isSafeInteger(nanos) || nanos < 0) throw badValue(DURATION_EXPECTED);
  return nanos / NANOS_PER_MS;
}

/** The Go grammar: one or more <number><unit> with no sign (negative timeouts make no sense here) and no spaces. */
function parseUnits(text: string): number {
  let nanos = 0;
  let end = 0;
  COMPONENT.lastIndex = 0;
  for (let match = COMPONENT.exec(text); match; match = COMPONENT.exec(text)) {
    nanos += Number(match[1]) * NANOS_PER_UNIT[match[2]!]!;
    end = COMPONENT.lastIndex;
  }
  if (end === 0 || end !== text.length) throw badValue(DURATION_EXPECTED);
  return nanos / NANOS_PER_MS;
}
