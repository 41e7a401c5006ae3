// rrts as PID 1 of a pid namespace (as in a container without an init): processes the PHP app leaves behind
// (`shell_exec('sleep 0.2 &')` on every request) are re-parented to rrts and must be reaped, in both modes, and
// SIGTERM still stops it cleanly with nothing left in the namespace.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { MODES } from './harness.js';
import { load, pidNamespace, processesIn, ROOT, serve, sleep, statusField, zombiesOf } from './prod-harness.js';

function commandOf(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
  } catch {
    return '?';
  }
}

const SPAWNER = path.join(ROOT, 'test', 'fixtures', 'php', 'spawner-worker.php');
// 600 cycles of the pool per mode (max_jobs 1): a zombie left by any of them fails the test; more only costs CI time
const REQUESTS = 600;

describe('rrts as PID 1 reaps orphans', { timeout: 600_000 }, () => {
  for (const mode of MODES) {
    test(`${mode} mode: ${REQUESTS} requests with max_jobs 1, each leaving a grandchild, leave no zombie`, async () => {
      const rrts = await serve({
        wrapper: ['unshare', '--pid', '--fork', '--mount-proc'],
        config: {
          server: { command: `php ${SPAWNER}`, fork: { enabled: mode === 'fork' } },
          http: { pool: { num_workers: 4, max_jobs: 1 } },
        },
      });
      try {
        const pid = rrts.rrtsPid();
        assert.match(statusField(pid, 'NSpid') ?? '', /\s1$/, 'rrts is PID 1 in its namespace');
        const ns = pidNamespace(pid)!;
        const outcome = await load(`${rrts.url}/`, REQUESTS, 8, (status, body) => {
          assert.equal(status, 200);
          assert.match(body, /^\d+$/);
        });
        assert.deepEqual(
          { ok: outcome.ok, failed: outcome.failed, truncated: outcome.truncated },
          { ok: REQUESTS, failed: 0, truncated: 0 },
          outcome.errors.join('; '),
        );

        // the last sleeps end 0.2 s after the last request; then nothing may stay a zombie, and only rrts, its 4
        // workers (and in fork mode the root, the master and its parked spare) are left
        const settled = (): boolean => zombiesOf(pid).length === 0 && processesIn(ns).length <= 1 + 4 + (mode === 'fork' ? 3 : 0);
        const until = Date.now() + 5_000;
        while (!settled() && Date.now() < until) await sleep(100);
        assert.deepEqual(zombiesOf(pid), [], 'zombies left under rrts');
        assert.ok(
          settled(),
          `processes in the namespace: ${processesIn(ns)
            .map((p) => `${p}:${commandOf(p)}`)
            .join(', ')}`,
        );

        process.kill(pid, 'SIGTERM');
        const exit = await rrts.exited;
        assert.equal(exit.code, 0, rrts.stderr.slice(-2000));
        assert.deepEqual(processesIn(ns), [], 'processes left in the namespace');
      } finally {
        await rrts.kill();
      }
    });
  }
});
