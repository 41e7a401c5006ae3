// The short soak in `npm test`, with the full soak's assertions (test/soak/soak.ts): 30 s per pool mode under
// keep-alive load from 8 connections, a worker SIGKILLed every 200 ms, resetter.Reset and SIGHUP every 10 s. The
// first 10 s are the warm-up: rrts's RSS climbs ~15 MB in them, then a few MB a minute.
import { describe, test } from 'node:test';
import { MODES } from './harness.js';
import { assertSoak, runSoak } from '../soak/soak.js';

describe('soak (short)', () => {
  for (const mode of MODES) {
    test(`${mode} mode, 30 s`, { timeout: 120_000 }, async (t) => {
      const result = await runSoak({ mode, seconds: 30, warmupSeconds: 10, hupEveryMs: 10_000, resetEveryMs: 10_000 });
      t.diagnostic(JSON.stringify(result));
      assertSoak(result);
    });
  }
});
