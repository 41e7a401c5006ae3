// ForkSpawner with real php: how concurrent worker starts wait for a new root's first one.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { ForkSpawner, FIRST_START_WAIT_MS } from '../../../src/spawn/fork/spawner.js';
import type { Worker, WorkerEvents } from '../../../src/worker/worker.js';
import { FIXTURE, ROOT } from '../../support/paths.js';

const tempDirs: string[] = [];
const spawners: ForkSpawner[] = [];
after(async () => {
  for (const s of spawners) await s.close();
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});

const events: WorkerEvents = {};

/** A started fork spawner (no preload, no spares) for `php <flags> <script>`, closed after the tests. */
async function startSpawner(flags: string[], script: string): Promise<ForkSpawner> {
  const spawner = new ForkSpawner({
    command: { php: 'php', flags, script, args: [] },
    preload: null,
    env: { ...process.env, RR_MODE: 'http' },
    cwd: ROOT,
    allocateTimeoutMs: 20_000,
    streamTimeoutMs: 10_000,
    log: pino({ level: 'silent' }),
  });
  spawners.push(spawner);
  await spawner.start();
  return spawner;
}

describe('fork spawner: the first worker of a root', () => {
  it('the other starts wait for it, but only FIRST_START_WAIT_MS when it hangs before its handshake', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-first-'));
    tempDirs.push(dir);
    // the first child to get here hangs (as a worker waiting for a database at boot would); the others serve
    const script = path.join(dir, 'worker.php');
    fs.writeFileSync(script, `<?php\nif (@mkdir(__DIR__ . '/first')) { sleep(30); }\nrequire ${JSON.stringify(FIXTURE)};\n`);
    const spawner = await startSpawner([], script);
    const t0 = performance.now();
    const first = spawner.spawnWorker(events);
    const firstOutcome = first.then(
      () => 'ready',
      (err: Error) => err.message,
    );
    const others = await Promise.all([spawner.spawnWorker(events), spawner.spawnWorker(events)]);
    const waited = performance.now() - t0;
    try {
      assert.equal(others.length, 2);
      // they waited for the hanging first start (opcache is on: the gate applies), then started without it
      assert.ok(waited >= FIRST_START_WAIT_MS - 50, `the other workers were ready after ${waited.toFixed(0)} ms, before the ${FIRST_START_WAIT_MS} ms wait`);
      assert.ok(waited < 15_000, `the other workers needed ${waited.toFixed(0)} ms: they waited for the first start's timeout`);
      assert.equal(await Promise.race([firstOutcome, new Promise((r) => setTimeout(() => r('pending'), 10))]), 'pending');
    } finally {
      await Promise.all(others.map((w: Worker) => w.stop()));
      await spawner.close();
    }
    assert.notEqual(await firstOutcome, 'ready');
  });
});

describe('fork spawner: the master command line', () => {
  for (const flags of [[], ['-d', 'opcache.enable_cli=1'], ['-dopcache.enable_cli=1']]) {
    it(`turns opcache on for the CLI once with the user's flags ${JSON.stringify(flags)}`, async () => {
      const spawner = await startSpawner(flags, FIXTURE);
      try {
        // the master's title is its command line (without the root's arguments)
        const title = fs.readFileSync(`/proc/${spawner.masterPid}/cmdline`, 'utf8').replace(/\0/g, ' ');
        assert.equal(title.match(/opcache\.enable_cli=1/g)?.length, 1, title);
        assert.match(title, /php\/master\.php --script=/);
      } finally {
        await spawner.close();
      }
    });
  }
});
