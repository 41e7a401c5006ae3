// The short soak in `npm test`: ~25 s per pool mode with the full soak's assertions (test/soak/soak.ts): a worker
// SIGKILLed every 200 ms, resetter.Reset every 10 s, SIGHUP every 10 s, under keep-alive load from 8 connections.
import { describe, test } from 'node:test';
import { MODES } from './harness.js';
import { assertSoak, runSoak } from '../soak/soak.js';

describe('soak (short)', () => {
  for (const mode of MODES) {
    test(`${mode} mode, 25 s`, { timeout: 120_000 }, async (t) => {
      const result = await runSoak({ mode, seconds: 25, warmupSeconds: 5, hupEveryMs: 10_000, resetEveryMs: 10_000 });
      t.diagnostic(JSON.stringify(result));
      assertSoak(result);
    });
  }
});
