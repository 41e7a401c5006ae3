// The full soak (`npm run soak`, not part of `npm test`): 3 minutes per pool mode, a 30 s warm-up, a worker
// SIGKILLed every 200 ms, resetter.Reset every 10 s, SIGHUP every 30 s. Prints each mode's numbers.
import { describe, test } from 'node:test';
import { MODES } from '../integration/harness.js';
import { assertSoak, runSoak } from './soak.js';

const SECONDS = Number(process.env.RRTS_SOAK_SECONDS ?? 180);

describe('soak (full)', () => {
  for (const mode of MODES) {
    test(`${mode} mode, ${SECONDS} s`, { timeout: (SECONDS + 120) * 1000 }, async (t) => {
      const result = await runSoak({ mode, seconds: SECONDS, warmupSeconds: 30, hupEveryMs: 30_000, resetEveryMs: 10_000 });
      t.diagnostic(JSON.stringify(result));
      assertSoak(result);
    });
  }
});
