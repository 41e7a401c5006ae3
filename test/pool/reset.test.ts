// The pool's reset queue with in-memory workers (no PHP): resets never overlap whoever asks, a reset ends only when
// its old workers are gone, and pool.reset_timeout kills the old workers still busy so the reset completes.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import pino from 'pino';
import { PoolStoppedError, WorkerError, WorkerStartError } from '../../src/errors.js';
import { Flag } from '../../src/goridge/flags.js';
import { WorkerPool } from '../../src/pool/pool.js';
import { poolConfig } from '../support/pool-config.js';
import { until } from '../support/sleep.js';
import { fakeSpawner } from './fake-spawner.js';

const job = { codec: Flag.CODEC_JSON, context: Buffer.from('{}'), body: Buffer.alloc(0) };
const sink = { chunk() {} };
const silent = pino({ level: 'silent' });

/** Settles with the outcome, for promises whose rejection is part of the test. */
function outcome<T>(p: Promise<T>): Promise<{ value?: T; error?: unknown }> {
  return p.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
}

describe('pool reset queue', () => {
  test('resets asked for at once run one after the other: each waits until the old workers of the one before are gone', async () => {
    const fake = fakeSpawner();
    const pool = new WorkerPool('http', poolConfig({ numWorkers: 2 }), fake.spawner, silent);
    await pool.start();
    // an old worker stays busy, so the first reset cannot end before the test answers its job
    const busy = pool.exec(job, sink);
    await until(() => fake.workers.some((w) => w.jobs.length === 1), 'the job to reach a worker');
    const busyWorker = fake.workers.find((w) => w.jobs.length === 1)!;

    const resets = [outcome(pool.reset()), outcome(pool.reset()), outcome(pool.reset())];
    await until(() => pool.list().length === 2 && pool.list().every((w) => w.generation === 1), 'the first reset to switch to its fresh workers');
    await new Promise((r) => setImmediate(r));
    assert.equal(fake.renews, 1, 'the second reset began before the first one ended');
    assert.ok(busyWorker.alive, 'the busy old worker keeps its job');

    busyWorker.answer();
    await busy;
    for (const r of await Promise.all(resets)) assert.equal(r.error, undefined);
    assert.deepEqual(fake.overlaps, []);
    assert.equal(fake.renews, 3);
    assert.deepEqual(
      fake.workers.filter((w) => w.alive).map((w) => w.epoch),
      [3, 3],
      "after the three resets only the third one's workers run",
    );
    await pool.destroy(100);
  });

  test("the spawner's masterRestart replaces every worker without renewing the spawner again, and the pool's observer hears it", async () => {
    const fake = fakeSpawner();
    const heard = { starts: 0, restarts: 0 };
    const observer = { workerStarted: () => void heard.starts++, masterRestarted: () => void heard.restarts++ };
    const pool = new WorkerPool('http', poolConfig({ numWorkers: 2 }), fake.spawner, silent, observer);
    await pool.start();
    assert.equal(heard.starts, 2);
    const old = pool.list().map((w) => w.pid);
    fake.restartMaster();
    await until(() => fake.workers.filter((w) => w.alive).length === 2 && fake.workers.length === 4, 'fresh workers in place of the old ones');
    assert.deepEqual(
      pool.list().filter((w) => old.includes(w.pid)),
      [],
    );
    assert.equal(heard.restarts, 1);
    assert.equal(heard.starts, 4);
    assert.equal(fake.renews, 0, 'the spawner has its new master already');
    await pool.destroy(100);
  });

  test('a reset that fails does not stop the one queued after it', async () => {
    const fake = fakeSpawner();
    const pool = new WorkerPool('http', poolConfig({ numWorkers: 2 }), fake.spawner, silent);
    await pool.start();
    const spawn = fake.spawner.spawnWorker.bind(fake.spawner);
    let failOnce = true;
    fake.spawner.spawnWorker = async (events) => {
      if (fake.renews === 1 && failOnce) {
        failOnce = false;
        throw new WorkerStartError('worker 1 exited before it was ready (exit code 1)');
      }
      return spawn(events);
    };
    const [first, second] = await Promise.all([outcome(pool.reset()), outcome(pool.reset())]);
    assert.match(String(first.error), /exited before it was ready/);
    assert.equal(second.error, undefined);
    assert.deepEqual(fake.overlaps, []);
    assert.deepEqual(
      pool.list().map((w) => w.generation),
      [1, 1],
    );
    await pool.destroy(100);
  });

  test('reset_timeout: an old worker still busy when it runs out is killed, its request fails and the reset completes', async () => {
    const fake = fakeSpawner();
    const pool = new WorkerPool('http', poolConfig({ numWorkers: 1, resetTimeout: 200 }), fake.spawner, silent);
    await pool.start();
    const busy = outcome(pool.exec(job, sink));
    await until(() => fake.workers[0]!.jobs.length === 1, 'the job to reach the worker');

    const reset = await outcome(pool.reset());
    assert.equal(reset.error, undefined, 'the reset completes');
    const old = fake.workers[0]!;
    assert.equal(old.killed, true, 'the busy old worker was killed');
    assert.equal(old.alive, false);
    assert.ok((await busy).error instanceof WorkerError, 'its request fails');
    // the pool serves on the fresh worker
    const served = pool.exec(job, sink);
    await until(() => fake.workers[1]!.jobs.length === 1, 'a job on the fresh worker');
    fake.workers[1]!.answer();
    await served;
    await pool.destroy(100);
  });

  test('a reset queued behind one that runs when the pool is destroyed is refused', async () => {
    const fake = fakeSpawner();
    const pool = new WorkerPool('http', poolConfig({ numWorkers: 1 }), fake.spawner, silent);
    await pool.start();
    const busy = outcome(pool.exec(job, sink));
    await until(() => fake.workers[0]!.jobs.length === 1, 'the job to reach the worker');
    const first = outcome(pool.reset());
    const second = outcome(pool.reset());
    await until(() => fake.renews === 1 && pool.list()[0]?.generation === 1, 'the first reset to switch');
    await pool.destroy(100);
    await busy;
    assert.equal((await first).error, undefined);
    assert.ok((await second).error instanceof PoolStoppedError);
    assert.equal(fake.renews, 1);
    await assert.rejects(pool.reset(), PoolStoppedError);
  });

  test('a reset that fails logs how many new workers became ready, once, and the old ones keep serving', async () => {
    const fake = fakeSpawner();
    const lines: Array<Record<string, unknown>> = [];
    const log = pino(
      { level: 'info' },
      new Writable({
        write(chunk: Buffer, _e, done) {
          lines.push(JSON.parse(chunk.toString()));
          done();
        },
      }),
    );
    const pool = new WorkerPool('http', poolConfig({ numWorkers: 3 }), fake.spawner, log);
    await pool.start();
    const before = pool.list().map((w) => w.pid);
    // the reset's second new worker cannot start
    const spawn = fake.spawner.spawnWorker.bind(fake.spawner);
    let calls = 0;
    fake.spawner.spawnWorker = async (events) => {
      if (++calls === 2) throw new WorkerStartError('worker 4242 exited before it was ready (exit code 1)');
      return spawn(events);
    };
    const result = await outcome(pool.reset());
    assert.ok(result.error instanceof WorkerStartError);
    const failures = lines.filter((l) => String(l.msg).includes('reset failed'));
    assert.equal(failures.length, 1, 'logged once');
    assert.equal(failures[0]!.level, 50, 'at error level');
    assert.match(
      String(failures[0]!.msg),
      /^http: reset failed, 2 of 3 new workers became ready; the old workers keep serving: worker 4242 exited before it was ready \(exit code 1\)$/,
    );
    assert.deepEqual(
      pool.list().map((w) => w.pid),
      before,
      'the old workers still serve',
    );
    await pool.destroy(100);
  });
});
