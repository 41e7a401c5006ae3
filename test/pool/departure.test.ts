// Replacement before departure with in-memory workers (no PHP): a worker past max_jobs or ttl serves on while its
// replacement starts, and leaves once it is ready; past max_jobs only for 14 % of max_jobs more jobs, so small
// max_jobs stay exact.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { WorkerPool } from '../../src/pool/pool.js';
import { WorkerState } from '../../src/worker/state.js';
import { fakeSpawner, job, sink, until, type FakePhp } from './fake-spawner.js';
import { poolConfig } from '../support/pool-config.js';

const silent = pino({ level: 'silent' });

/** Runs one job and answers it on whichever worker got it; returns that worker. */
async function oneJob(pool: WorkerPool, workers: () => FakePhp[]): Promise<FakePhp> {
  const running = pool.exec(job, sink);
  let got: FakePhp | undefined;
  await until(() => (got = workers().find((w) => w.alive && w.pending > 0)) !== undefined, 'the job on a worker');
  got!.answer();
  await running;
  return got!;
}

describe('replacement before departure', () => {
  test('max_jobs: the worker serves while its replacement starts, then leaves', async () => {
    const fake = fakeSpawner();
    const pool = new WorkerPool('http', poolConfig({ numWorkers: 1, maxJobs: 50 }), fake.spawner, silent);
    try {
      await pool.start();
      const first = fake.workers[0]!;
      let boot = (): void => {};
      fake.gate = new Promise((resolve) => (boot = resolve)); // the replacement's boot is held
      while (fake.starts === 1) assert.equal(await oneJob(pool, () => fake.workers), first);
      const limit = first.received;
      assert.ok(limit >= 50 && limit <= 57, `replacement started after ${limit} jobs`);
      // while the replacement boots, the old worker still serves, for at most 7 (14 % of 50) more jobs
      for (let i = 0; i < 3; i++) assert.equal(await oneJob(pool, () => fake.workers), first);
      fake.gate = null;
      boot();
      await until(() => !first.alive, 'the old worker gone once its replacement is ready');
      assert.notEqual(await oneJob(pool, () => fake.workers), first);
      assert.equal(pool.list().length, 1);
    } finally {
      await pool.destroy(100);
    }
  });

  test('max_jobs: 1 stays exact: one job per worker even while the replacement starts', async () => {
    const fake = fakeSpawner();
    const pool = new WorkerPool('http', poolConfig({ numWorkers: 1, maxJobs: 1 }), fake.spawner, silent);
    try {
      await pool.start();
      const served: FakePhp[] = [];
      for (let i = 0; i < 4; i++) served.push(await oneJob(pool, () => fake.workers));
      assert.equal(new Set(served).size, 4, 'every job on a fresh worker');
      assert.ok(served.every((w) => w.received === 1));
    } finally {
      await pool.destroy(100);
    }
  });

  test('ttl: the worker the supervisor marks serves until its replacement is ready', async () => {
    const fake = fakeSpawner();
    const pool = new WorkerPool('http', poolConfig({ numWorkers: 1 }), fake.spawner, silent);
    try {
      await pool.start();
      const first = fake.workers[0]!;
      let boot = (): void => {};
      fake.gate = new Promise((resolve) => (boot = resolve));
      pool.markForRetirement(pool.list()[0]!, WorkerState.TTLReached);
      await until(() => fake.starts === 2, 'the replacement started');
      assert.equal(await oneJob(pool, () => fake.workers), first, 'still serving while the replacement boots');
      fake.gate = null;
      boot();
      await until(() => !first.alive, 'the old worker gone');
      assert.deepEqual(
        pool.list().map((w) => w.pid),
        [fake.workers[1]!.pid],
      );
    } finally {
      await pool.destroy(100);
    }
  });
});
