// Start-up and failure paths: bad config, a missing script, a worker that never answers, a crash loop, SIGTERM.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { alive, BIN, FIXTURE, MODES, startRrts, sleep } from './harness.js';
import { request } from './client.js';

function runCli(args: string[], cwd: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('start-up failures', () => {
  it('a malformed config exits 1 with the file, line and key', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-cfg-'));
    try {
      fs.writeFileSync(
        path.join(dir, 'rr.yaml'),
        "version: '3'\nserver:\n  command: php w.php\nhttp:\n  address: 127.0.0.1:0\n  pool:\n    num_workers: four\n",
      );
      const r = runCli(['serve', '-c', 'rr.yaml'], dir);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /rr\.yaml/);
      assert.match(r.stderr, /http\.pool\.num_workers/);
      assert.match(r.stderr, /four/);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  for (const mode of MODES) {
    it(`a missing worker script exits non-zero and names it (${mode})`, async () => {
      const rr = await startRrts({ mode, expectFailure: true, config: { server: { command: 'php /nonexistent/worker.php' } } });
      const exit = await rr.exited;
      await rr.stop();
      assert.notEqual(exit.code, 0);
      assert.match(rr.stderr, /Could not open input file|could not open the worker script|nonexistent/);
      assert.match(rr.stderr, /nonexistent\/worker\.php/);
    });

    {
      it(`a worker that dies while starting is reported once, at error, with its exit code and stderr (${mode})`, async () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-dies-'));
        try {
          const script = path.join(dir, 'dies.php');
          fs.writeFileSync(script, '<?php fwrite(STDERR, "line one\\nline two\\nPHP Fatal error: boom\\n"); exit(3);\n');
          const rr = await startRrts({ mode, expectFailure: true, workers: 1, config: { server: { command: `php ${script}` } } });
          const exit = await rr.exited;
          await rr.stop();
          assert.notEqual(exit.code, 0);
          const lines = rr.logs().filter((l) => String(l.msg).includes('line one'));
          assert.equal(lines.length, 1, `one record, not a record per stderr line: ${JSON.stringify(lines)}`);
          assert.equal(lines[0]!.level, 'error');
          assert.match(String(lines[0]!.msg), /exited before it was ready \(exit code 3\); its output: line one\nline two\nPHP Fatal error: boom/);
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      });
    }

    if (mode === 'fork') {
      // every pool's masters come from one root in the primary: what a master and its workers write still reaches
      // the pool that asked for them (its own output socket), in the primary and in a front process alike
      for (const processes of [1, 2]) {
        const where = processes === 1 ? 'one process' : `${processes} front processes`;
        // (one process: the test above)
        if (processes > 1)
          it(`fork, ${where}: a worker that dies while starting is reported once, at error, with its stderr`, async () => {
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-dies-'));
            try {
              const script = path.join(dir, 'dies.php');
              fs.writeFileSync(script, '<?php fwrite(STDERR, "line one\\nline two\\nPHP Fatal error: boom\\n"); exit(3);\n');
              const config = { server: { command: `php ${script}` }, http: { front: { processes } } };
              const rr = await startRrts({ mode, expectFailure: true, workers: processes, config });
              const exit = await rr.exited;
              await rr.stop();
              assert.notEqual(exit.code, 0);
              const lines = rr.logs().filter((l) => String(l.msg).includes('line one'));
              assert.ok(lines.length >= 1, rr.stderr.slice(-2000));
              assert.deepEqual(
                lines.map((l) => l.level),
                lines.map(() => 'error'),
                `only the start's error quotes it, never a record of its own: ${JSON.stringify(lines)}`,
              );
              assert.match(
                String(lines[0]!.msg),
                /forked worker \d+ exited before it was ready \(exit code 3\); its output: line one\nline two\nPHP Fatal error: boom/,
              );
            } finally {
              fs.rmSync(dir, { recursive: true, force: true });
            }
          });

        it(`fork, ${where}: a preload that fails in the master is quoted by the pool's start error`, async () => {
          const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-preload-dies-'));
          try {
            const preload = path.join(dir, 'preload.php');
            // the root's warm-up child dies of it too: that is the root's output, logged under the root's pid
            fs.writeFileSync(preload, '<?php\nfwrite(STDERR, "preload says\\n");\nthrow new RuntimeException(\'preload boom\');\n');
            const config = { server: { fork: { preload } }, http: { front: { processes } } };
            const rr = await startRrts({ mode, expectFailure: true, workers: processes, config });
            const exit = await rr.exited;
            await rr.stop();
            assert.notEqual(exit.code, 0);
            const errors = rr.logs().filter((l) => l.level === 'error' && String(l.msg).includes('preload says'));
            assert.ok(errors.length >= 1, rr.stderr.slice(-2000));
            assert.match(
              String(errors[0]!.msg),
              /the fork master \d+ exited before it was ready \(exit code 255\); its output: preload says\nPHP Fatal error: +Uncaught RuntimeException: preload boom/,
            );
          } finally {
            fs.rmSync(dir, { recursive: true, force: true });
          }
        });
      }
    }

    if (mode === 'fork') {
      it('fork mode names what this PHP lacks: an extension, or pcntl_fork in disable_functions', async () => {
        for (const [flags, expected] of [
          ['-d disable_functions=pcntl_fork', /pcntl_fork is in disable_functions .*fork mode needs it/],
          ['-n', /lacks the extension\(s\) [a-z, ]*sockets .*apt-get install php-cli/],
        ] as const) {
          const rr = await startRrts({ mode, expectFailure: true, config: { server: { command: `php ${flags} ${FIXTURE}` } } });
          const exit = await rr.exited;
          await rr.stop();
          assert.notEqual(exit.code, 0, flags);
          assert.match(rr.stderr, expected, flags);
          assert.doesNotMatch(rr.stderr, /\n\s+at /, 'no stack trace');
        }
      });
    }

    it(`a missing relative worker script names the directory it was looked for in (${mode})`, async () => {
      const rr = await startRrts({ mode, expectFailure: true, config: { server: { command: 'php app/missing-worker.php' } } });
      const exit = await rr.exited;
      await rr.stop();
      assert.notEqual(exit.code, 0);
      assert.ok(rr.stderr.includes('app/missing-worker.php'), rr.stderr);
      assert.ok(rr.stderr.includes(rr.dir), `the working directory ${rr.dir} is named: ${rr.stderr}`);
      assert.doesNotMatch(rr.stderr, /\n\s+at /, 'no stack trace');
    });

    it(`a worker that never answers the handshake fails start-up after allocate_timeout (${mode})`, async () => {
      const rr = await startRrts({
        mode,
        expectFailure: true,
        env: { FIXTURE_BOOT: 'hang' },
        config: { http: { pool: { num_workers: 1, allocate_timeout: '1s' } } },
      });
      const exit = await rr.exited;
      const pids = rr.workerPids();
      await rr.stop();
      assert.notEqual(exit.code, 0);
      assert.match(rr.stderr, /allocate_timeout/);
      assert.equal(pids.length, 0);
    });
  }

  it('a worker that prints to stdout before the handshake is named in the error', async () => {
    const rr = await startRrts({ expectFailure: true, env: { FIXTURE_BOOT: 'garbage' }, config: { http: { pool: { num_workers: 1 } } } });
    const exit = await rr.exited;
    await rr.stop();
    assert.notEqual(exit.code, 0);
    assert.match(rr.stderr, /garbage on stdout before the worker exists/);
  });
});

for (const mode of MODES)
  describe(`running (${mode})`, () => {
    it('a crash loop backs off instead of spinning, then recovers', async () => {
      const flagDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-flag-'));
      const flag = path.join(flagDir, 'fail');
      const rr = await startRrts({ mode, workers: 1, env: { FIXTURE_FAIL_IF_EXISTS: flag } });
      try {
        fs.writeFileSync(flag, '1');
        await request(`${rr.url}/exit?code=1`);
        await sleep(3000);
        const attempts = rr.logs().filter((l) => String(l.msg).startsWith('cannot start a worker')).length;
        assert.ok(attempts >= 2, `${attempts} start attempts were logged`);
        assert.ok(attempts <= 12, `${attempts} start attempts in 3 s is a hot loop`);
        assert.ok(
          rr.logs().some((l) => String(l.msg).includes('boot failure because')),
          'the reason is logged',
        );
        fs.rmSync(flag);
        await rr.waitForWorkers(1, 15_000);
        const r = await request(`${rr.url}/hello`);
        assert.equal(r.status, 200);
      } finally {
        await rr.stop();
        fs.rmSync(flagDir, { recursive: true, force: true });
      }
    });

    it('SIGTERM during a request lets it finish, exits 0 and leaves no php process', async () => {
      const rr = await startRrts({ mode, workers: 2 });
      const pids = [...rr.workerPids(), ...rr.masterPids(), ...rr.rootPids()];
      const slow = request(`${rr.url}/sleep?ms=700`);
      await sleep(150);
      const exit = rr.stop();
      const r = await slow;
      assert.equal(r.status, 200);
      assert.equal((await exit).code, 0);
      for (const pid of pids) assert.equal(alive(pid), false);
      assert.match(rr.stdout, /stop signal received/);
    });

    it('SIGABRT is a graceful stop too, as in RoadRunner', async () => {
      const rr = await startRrts({ mode, workers: 1 });
      const slow = request(`${rr.url}/sleep?ms=500`);
      await sleep(150);
      rr.proc.kill('SIGABRT');
      assert.equal((await slow).status, 200, 'the request in flight finished');
      const exit = await rr.exited;
      await rr.stop();
      assert.equal(exit.code, 0);
      assert.match(rr.stdout, /stop signal received \(SIGABRT\)/);
    });

    it('keeps serving when nothing reads its stdout and stderr any more (EPIPE), and still stops cleanly', async () => {
      const rr = await startRrts({ mode, workers: 1, config: { http: { pool: { max_jobs: 1 } } } });
      try {
        rr.proc.stdout!.destroy(); // the log reader went away: every record now meets a closed pipe
        rr.proc.stderr!.destroy();
        for (let i = 0; i < 8; i++) {
          const r = await request(`${rr.url}/hello`); // max_jobs 1: a new worker (and its log records) per request
          assert.equal(r.status, 200);
        }
        rr.proc.kill('SIGTERM');
        const exit = await Promise.race([rr.exited, sleep(10_000).then(() => null)]);
        assert.deepEqual(exit, { code: 0, signal: null });
      } finally {
        await rr.stop();
      }
    });

    it('writes and removes the pid file with -p', async () => {
      const rr = await startRrts({ mode, workers: 1, args: ['-p'] });
      const pidFile = path.join(rr.dir, '.pid');
      assert.equal(fs.readFileSync(pidFile, 'utf8'), String(rr.pid));
      rr.proc.kill('SIGTERM');
      await rr.exited;
      assert.equal(fs.existsSync(pidFile), false);
      await rr.stop();
    });
  });
