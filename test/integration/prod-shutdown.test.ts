// Graceful stop as production sees it: SIGTERM under load never truncates a response (clients only see refused or
// closed connections once rrts closed), a second signal forces exit 1, and the pid file and runtime sockets are gone
// after the exit. Both pool modes.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { FIXTURE, MODES } from './harness.js';
import { get, serve, sleep, type Outcome } from './prod-harness.js';

const SIZE = 256 * 1024;
const ACCEPTABLE_FAILURES = new Set(['ECONNREFUSED', 'ECONNRESET', 'socket hang up', 'EPIPE']);

for (const mode of MODES) {
  describe(`graceful stop (${mode} mode)`, { timeout: 120_000 }, () => {
    test('SIGTERM under load: every response that came is complete; failures are only refused/closed connections', async () => {
      const rrts = await serve({ config: { server: { command: `php ${FIXTURE}`, fork: { enabled: mode === 'fork' } }, http: { pool: { num_workers: 4 } } } });
      try {
        const outcome: Outcome = { ok: 0, failed: 0, truncated: 0, errors: [] };
        const failures = new Set<string>();
        let stopLoad = false;
        const runner = async (): Promise<void> => {
          while (!stopLoad) {
            const r = await get(`${rrts.url}/big?size=${SIZE}`);
            if (r.kind === 'ok') {
              assert.equal(r.status, 200);
              assert.equal(r.body!.length, SIZE);
              outcome.ok++;
            } else {
              outcome[r.kind]++;
              failures.add(r.error ?? '');
              if (r.kind === 'failed' && r.error === 'ECONNREFUSED') await sleep(5);
            }
          }
        };
        const runners = Array.from({ length: 16 }, runner);
        await sleep(1_000);
        const okBefore = outcome.ok;
        rrts.proc.kill('SIGTERM');
        const exit = await rrts.exited;
        await sleep(300); // clients keep knocking on the closed port
        stopLoad = true;
        await Promise.all(runners);
        assert.equal(exit.code, 0, rrts.stderr.slice(-2000));
        assert.ok(okBefore > 10, `only ${okBefore} requests before SIGTERM`);
        assert.equal(outcome.truncated, 0, `truncated responses: ${outcome.errors.join('; ')}`);
        assert.ok(outcome.failed > 0, 'the load loop must have run into the closed server');
        for (const f of failures) assert.ok(ACCEPTABLE_FAILURES.has(f), `unexpected failure: ${f}`);
      } finally {
        await rrts.kill();
      }
    });

    test('a second signal while stopping forces exit 1', async () => {
      const rrts = await serve({ config: { server: { command: `php ${FIXTURE}`, fork: { enabled: mode === 'fork' } } } });
      try {
        const slow = get(`${rrts.url}/sleep?ms=4000`);
        await sleep(300);
        rrts.proc.kill('SIGTERM');
        await rrts.waitFor(() => rrts.stdout.includes('stop signal received'), 'the stop to begin');
        rrts.proc.kill('SIGTERM');
        const exit = await rrts.exited;
        assert.equal(exit.code, 1);
        assert.match(rrts.stdout, /exit forced/);
        await slow;
      } finally {
        await rrts.kill();
      }
    });

    test('the pid file and the runtime sockets are removed on exit', async () => {
      const rrts = await serve({
        config: {
          server: { command: `php ${FIXTURE}`, fork: { enabled: mode === 'fork' }, ...(mode === 'exec' ? { relay: 'unix://relay.sock' } : {}) },
          rpc: { listen: 'unix://rpc.sock' },
        },
        args: ['-p'],
      });
      try {
        const pidFile = path.join(rrts.dir, '.pid');
        assert.equal(fs.readFileSync(pidFile, 'utf8'), String(rrts.proc.pid));
        const sockets = [path.join(rrts.dir, 'rpc.sock')];
        if (mode === 'exec') sockets.push(path.join(rrts.dir, 'relay.sock'));
        else {
          // the private fork socket, as the root's ready record names it
          const relay = /"socket":"unix:\/\/([^"]+)"/.exec(rrts.stderr)?.[1];
          assert.ok(relay, `the fork socket in the log: ${rrts.stderr.slice(-2000)}`);
          sockets.push(relay, path.dirname(relay));
        }
        for (const s of sockets) assert.ok(fs.existsSync(s), `${s} exists while serving`);
        rrts.proc.kill('SIGTERM');
        const exit = await rrts.exited;
        assert.equal(exit.code, 0, rrts.stderr.slice(-2000));
        assert.ok(!fs.existsSync(pidFile), 'pid file removed');
        for (const s of sockets) assert.ok(!fs.existsSync(s), `${s} removed`);
      } finally {
        await rrts.kill();
      }
    });
  });
}
