// A SIGHUP reload whose new worker command cannot start: the reload fails with the reason in the log, and the
// previous command stays in force, so a worker that dies later (or a fork master) is replaced with the command
// that works and requests keep getting 200.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { alive, killQuietly, MODES, startRrts } from './harness.js';
import { request } from './client.js';

/** Ten requests in a row, each must be a 200 from a worker running the fixture. */
async function allServed(url: string): Promise<void> {
  for (let i = 0; i < 10; i++) {
    const r = await request(`${url}/hello`, { timeoutMs: 10_000 });
    assert.equal(r.status, 200, `request ${i}: status ${r.status}: ${r.body.toString()}`);
    assert.match(r.body.toString(), /^hello from \d+/);
  }
}

for (const mode of MODES) {
  describe(`reload to a worker command that cannot start (${mode})`, () => {
    it('fails with the reason in the log and keeps starting workers with the previous command', async () => {
      const rr = await startRrts({ mode, workers: 2, config: { http: { pool: { allocate_timeout: '5s' } } } });
      try {
        const broken = path.join(rr.dir, 'broken.php');
        fs.writeFileSync(broken, '<?php\nfwrite(STDERR, "broken worker: the database is gone\\n");\nexit(1);\n');
        const file = path.join(rr.dir, '.rr.yaml');
        const config = parse(fs.readFileSync(file, 'utf8')) as { server: { command: string } };
        const goodCommand = config.server.command;
        config.server.command = `php ${broken}`;
        fs.writeFileSync(file, stringify(config));
        rr.proc.kill('SIGHUP');
        await rr.waitFor(() => rr.logs().some((l) => String(l.msg).startsWith('http: reload failed')), 'the failed reload', 20_000);
        const failure = String(rr.logs().find((l) => String(l.msg).startsWith('http: reload failed'))!.msg);
        assert.ok(failure.includes(`the new worker command 'php ${broken}' could not start`), failure);
        assert.match(failure, /exit code 1/);
        if (mode === 'exec') assert.match(failure, /broken worker: the database is gone/); // a forked child's stderr is logged, not kept
        assert.ok(failure.includes(`(command '${goodCommand}') stay in force`), failure);
        await allServed(rr.url);

        // a worker dies: its replacement must start with the previous command
        const before = await rr.waitForWorkers(2);
        killQuietly(before[0]!);
        await rr.waitFor(() => !alive(before[0]!) && rr.workerPids().length === 2, 'the replacement worker', 20_000);
        if (mode === 'exec') {
          for (const pid of rr.workerPids()) assert.equal(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim(), goodCommand);
        }
        await allServed(rr.url);
        if (mode === 'fork') {
          // the master dies: the next one must come from the previous recipe too (its root, its command)
          const [master] = rr.masterPids();
          killQuietly(master!);
          await rr.waitFor(() => !rr.masterPids().includes(master!) && rr.masterPids().length === 1, 'a new fork master', 20_000);
          await rr.waitFor(() => rr.workerPids().length === 2 && rr.workerPids().every((pid) => !before.includes(pid)), "the new master's workers", 20_000);
          await allServed(rr.url);
        }
        const started = rr.logs().filter((l) => String(l.msg).startsWith('cannot start a worker'));
        assert.deepEqual(
          started.map((l) => l.msg),
          [],
          'no replacement failed to start',
        );
      } finally {
        const exit = await rr.stop();
        assert.equal(exit.code, 0);
      }
    });
  });
}
