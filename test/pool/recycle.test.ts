// How the pool recycles workers, with in-memory workers (no PHP): max_jobs retires a worker after its jobs, a reset's
// old generation is never handed out again, and the supervisor's marks retire an idle worker at once and a busy one
// once its job is done; each retired worker leaves on the stop control and a replacement takes its place.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { Flag } from '../../src/goridge/flags.js';
import { WorkerPool } from '../../src/pool/pool.js';
import { WorkerState } from '../../src/worker/state.js';
import type { ReplyChunk } from '../../src/worker/worker.js';
import { poolConfig } from '../support/pool-config.js';
import { until } from '../support/sleep.js';
import { fakeSpawner, type FakePhp, type FakeSpawner } from './fake-spawner.js';

const job = { codec: Flag.CODEC_JSON, context: Buffer.from('{}'), body: Buffer.alloc(0) };
const silent = pino({ level: 'silent' });

/** Runs a job; resolves with the answer's body once the test made `who` answer it. */
function run(pool: WorkerPool): Promise<string> {
  let body = '';
  const sink = { chunk: (reply: ReplyChunk) => void (body += reply.body.toString()) };
  return pool.exec(job, sink).then(() => body);
}

/** Starts a job; resolves with the worker it reached (whose unanswered jobs grew) and the answer's body. */
async function dispatch(pool: WorkerPool, fake: FakeSpawner): Promise<{ php: FakePhp; answered: Promise<string> }> {
  const before = new Map(fake.workers.map((w) => [w, w.jobs.length]));
  const grew = (w: FakePhp): boolean => w.jobs.length > (before.get(w) ?? 0);
  const answered = run(pool);
  await until(() => fake.workers.some(grew), 'the job to reach a worker');
  return { php: fake.workers.find(grew)!, answered };
}

/** Runs one job and answers it with the pid of the worker that got it. */
async function servedBy(pool: WorkerPool, fake: FakeSpawner): Promise<number> {
  const { php, answered } = await dispatch(pool, fake);
  php.answer(String(php.pid));
  return Number(await answered);
}

describe('pool recycling', () => {
  test('max_jobs: a worker leaves after its last job and a new one serves the next', async () => {
    const fake = fakeSpawner();
    // max_jobs 3: RoadRunner's jitter (up to 14 %) adds floor(<0.42) = 0 jobs
    const pool = new WorkerPool('http', poolConfig({ numWorkers: 1, maxJobs: 3 }), fake.spawner, silent);
    await pool.start();
    try {
      const first = fake.workers[0]!;
      const pids = [];
      for (let i = 0; i < 3; i++) pids.push(await servedBy(pool, fake));
      assert.deepEqual(pids, [first.pid, first.pid, first.pid]);
      await until(() => !first.alive, 'the worker to leave after 3 jobs');
      assert.equal(first.killed, false, 'it left on the stop control');
      assert.equal(await servedBy(pool, fake), fake.workers[1]!.pid);
      assert.equal(fake.workers.length, 2);
    } finally {
      await pool.destroy();
    }
  });

  test("a reset's old generation is not handed out again: the busy old worker finishes its job, then leaves", async () => {
    const fake = fakeSpawner();
    const pool = new WorkerPool('http', poolConfig({ numWorkers: 2 }), fake.spawner, silent);
    await pool.start();
    try {
      const { php: old, answered: slow } = await dispatch(pool, fake);
      const idleOld = fake.workers.find((w) => w !== old)!;
      const reset = pool.reset();
      await until(() => fake.workers.filter((w) => w.epoch === 1).length === 2, 'the fresh generation');
      await until(() => !idleOld.alive, 'the idle old worker to leave');

      // jobs from now on go to the fresh workers, while the old one still runs its job
      const fresh = new Set(fake.workers.filter((w) => w.epoch === 1).map((w) => w.pid));
      for (let i = 0; i < 3; i++) assert.ok(fresh.has(await servedBy(pool, fake)), 'a job went to a fresh worker');
      assert.ok(old.alive && old.jobs.length === 1);

      old.answer('late');
      assert.equal(await slow, 'late', 'the old worker finished its job');
      await reset;
      assert.equal(old.alive, false, 'the reset ends once the old worker is gone');
      assert.equal(old.killed, false, 'it left on the stop control');
      assert.deepEqual(
        pool
          .list()
          .map((w) => w.pid)
          .sort(),
        [...fresh].sort(),
      );
    } finally {
      await pool.destroy();
    }
  });

  test("the supervisor's marks: idle_ttl retires an idle worker at once; max_worker_memory replaces a busy one first, it leaves after its job", async () => {
    const fake = fakeSpawner();
    const pool = new WorkerPool('http', poolConfig({ numWorkers: 2 }), fake.spawner, silent);
    await pool.start();
    try {
      const { php: busy, answered: job1 } = await dispatch(pool, fake);
      const idle = fake.workers.find((w) => w !== busy)!;
      const worker = (php: FakePhp) => pool.list().find((w) => w.pid === php.pid)!;

      pool.markForRetirement(worker(idle), WorkerState.IdleTTLReached);
      await until(() => !idle.alive && fake.workers.length === 3, 'the idle worker to leave and a replacement to start');

      pool.markForRetirement(worker(busy), WorkerState.MaxMemoryReached);
      await until(() => fake.workers.length === 4, 'the replacement of the busy worker to start before it leaves');
      await until(() => pool.list().some((w) => w.pid === fake.workers[3]!.pid), 'the replacement to serve');
      assert.ok(busy.alive, 'the busy worker keeps running its job');
      busy.answer('done');
      assert.equal(await job1, 'done');
      await until(() => !busy.alive, 'the busy worker to leave after its job');
      assert.equal(busy.killed || idle.killed, false, 'both left on the stop control');
      assert.equal(fake.workers.length, 4, 'no other replacement was started');
      assert.deepEqual(
        pool
          .list()
          .map((w) => w.pid)
          .sort(),
        [fake.workers[2]!.pid, fake.workers[3]!.pid],
      );
    } finally {
      await pool.destroy();
    }
  });
});
