// Replacement before departure with in-memory workers (no PHP): a worker near max_jobs has its replacement started
// ahead (by the pool's start time) and serves to its own limit; a late replacement lets it serve up to max_jobs + 14 %
// in all, so small max_jobs stay exact; a worker past ttl serves on until its replacement is ready.
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
  test('max_jobs: a replacement slower than the jobs starts ahead; the old worker serves to its own limit', async () => {
    const fake = fakeSpawner();
    const pool = new WorkerPool('http', poolConfig({ numWorkers: 1, maxJobs: 50 }), fake.spawner, silent);
    try {
      // a slow first start: the pool expects starts to take about as long, far longer than a job
      fake.gate = new Promise((resolve) => setTimeout(resolve, 400));
      await pool.start();
      fake.gate = null;
      const first = fake.workers[0]!;
      const limit = pool.list()[0]!.maxExecs;
      let startedAfter: number | undefined;
      for (let i = 0; i < 200 && first.alive; i++) {
        await oneJob(pool, () => fake.workers);
        if (fake.starts >= 2) startedAfter ??= first.received;
      }
      assert.ok(startedAfter !== undefined && startedAfter < 50, `the replacement started after ${startedAfter} jobs, not ahead of max_jobs`);
      // its replacement was ready long before: the old worker still ran every job its limit allows, no more
      assert.equal(first.received, limit);
      assert.ok(fake.workers.slice(1).every((w) => w.received <= 57));
      assert.ok(pool.list().length <= 2, 'at most one replacement per place at a time');
    } finally {
      await pool.destroy(100);
    }
  });

  test('max_jobs: a late replacement: the worker serves up to max_jobs + 14 % in all, then it is stopped', async () => {
    const fake = fakeSpawner();
    const pool = new WorkerPool('http', poolConfig({ numWorkers: 1, maxJobs: 50 }), fake.spawner, silent);
    try {
      await pool.start();
      const first = fake.workers[0]!;
      let boot = (): void => {};
      fake.gate = new Promise((resolve) => (boot = resolve)); // the replacement's boot is held
      for (let i = 0; i < 100 && pool.list().some((w) => w.pid === first.pid); i++) await oneJob(pool, () => fake.workers);
      assert.equal(fake.starts, 2, 'one replacement, started before the worker left');
      assert.equal(first.received, 57, "RoadRunner's upper bound for max_jobs 50: 50 + 14 %");
      await until(() => !first.alive, 'the old worker stopped although its replacement still boots');
      const waiting = pool.exec(job, sink); // no worker now: waits for the replacement
      fake.gate = null;
      boot();
      await until(() => fake.workers[1]?.pending === 1, 'the job on the replacement');
      fake.workers[1]!.answer();
      await waiting;
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
