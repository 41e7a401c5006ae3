// pool.dynamic_allocator with in-memory workers (no PHP): RoadRunner's rule (workers added only for a request that
// waited the whole allocate_timeout), rrts's scale_on_wait, scale-down of idle extra workers only, and no churn
// under a sawtooth load.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import type { DynamicAllocatorConfig } from '../../src/config/types.js';
import { NoFreeWorkersError } from '../../src/errors.js';
import { WorkerPool } from '../../src/pool/pool.js';
import { WorkerState } from '../../src/worker/state.js';
import { Cancellation } from '../../src/worker/worker.js';
import { fakeSpawner, job, outcome, sink, until, type FakeSpawner } from './fake-spawner.js';
import { poolConfig } from '../support/pool-config.js';

const silent = pino({ level: 'silent' });

function dynamic(overrides: Partial<DynamicAllocatorConfig>): DynamicAllocatorConfig {
  return { maxWorkers: 10, spawnRate: 5, idleTimeout: 60_000, scaleOnWait: null, ...overrides };
}

/** Answers every job the live workers hold. */
function answerAll(fake: FakeSpawner): void {
  for (const w of fake.alive()) while (w.pending > 0) w.answer();
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe("dynamic_allocator, RoadRunner's rule", () => {
  test('adds spawn_rate workers only once a request waited the whole allocate_timeout, and that request is served', async () => {
    const fake = fakeSpawner();
    const config = poolConfig({ numWorkers: 1, allocateTimeout: 300, dynamicAllocator: dynamic({ maxWorkers: 3, spawnRate: 2 }) });
    const pool = new WorkerPool('http', config, fake.spawner, silent);
    try {
      await pool.start();
      const busy = pool.exec(job, sink);
      const waiting = outcome(pool.exec(job, sink));
      await sleep(150);
      assert.equal(fake.starts, 1, 'nothing is added before allocate_timeout');
      await until(() => fake.starts === 3, 'the allocation at allocate_timeout');
      await until(() => fake.workers[1]!.pending + fake.workers[2]!.pending === 1, 'the waiting request on a new worker');
      answerAll(fake);
      assert.equal((await waiting).error, undefined);
      await busy;
      const extras = pool.list().filter((w) => pool.isExtra(w));
      assert.deepEqual(extras.map((w) => w.pid).sort(), [fake.workers[1]!.pid, fake.workers[2]!.pid]);
      assert.equal(pool.isExtra(pool.list().find((w) => w.pid === fake.workers[0]!.pid)!), false);
    } finally {
      await pool.destroy(100);
    }
  });

  test('at max_workers a request that waited allocate_timeout fails with NoFreeWorkersError', async () => {
    const fake = fakeSpawner();
    const config = poolConfig({ numWorkers: 1, allocateTimeout: 200, dynamicAllocator: dynamic({ maxWorkers: 1, spawnRate: 5 }) });
    const pool = new WorkerPool('http', config, fake.spawner, silent);
    try {
      await pool.start();
      const first = pool.exec(job, sink);
      const second = pool.exec(job, sink); // waits 200 ms, then gets the one extra worker
      await until(() => fake.starts === 2 && fake.workers[1]?.pending === 1, 'the extra worker serving the second request');
      // the allocation's one-per-second limit and max_workers (1, reached): the third request fails
      const third = await outcome(pool.exec(job, sink));
      assert.ok(third.error instanceof NoFreeWorkersError, `expected NoFreeWorkersError, got ${String(third.error)}`);
      assert.equal(fake.starts, 2);
      answerAll(fake);
      await Promise.all([first, second]);
    } finally {
      await pool.destroy(100);
    }
  });
});

describe('dynamic_allocator.scale_on_wait (rrts)', () => {
  test('a request that waited scale_on_wait gets workers added, spawn_rate at a time, up to max_workers', async () => {
    const fake = fakeSpawner();
    const config = poolConfig({ numWorkers: 1, allocateTimeout: 5_000, dynamicAllocator: dynamic({ maxWorkers: 3, spawnRate: 2, scaleOnWait: 20 }) });
    const pool = new WorkerPool('http', config, fake.spawner, silent);
    try {
      await pool.start();
      const requests = Array.from({ length: 6 }, () => outcome(pool.exec(job, sink)));
      // 5 wait: 2 workers for the first waiter's trigger, 1 for the next (max_workers 3), none after
      await until(() => fake.alive().filter((w) => w.pending === 1).length === 4, 'four workers busy');
      assert.equal(fake.starts, 4, 'one worker plus max_workers extra ones, no more');
      assert.equal(pool.list().filter((w) => pool.isExtra(w)).length, 3);
      for (let i = 0; i < 3; i++) {
        answerAll(fake);
        await sleep(10);
      }
      for (const r of await Promise.all(requests)) assert.equal(r.error, undefined);
    } finally {
      await pool.destroy(100);
    }
  });

  test('fork mode scales on wait by default; exec mode keeps RoadRunner rule when scale_on_wait is not written', async () => {
    for (const mode of ['fork', 'exec'] as const) {
      const fake = fakeSpawner(mode);
      const config = poolConfig({ numWorkers: 1, allocateTimeout: 1_000, dynamicAllocator: dynamic({ maxWorkers: 2, spawnRate: 1 }) });
      const pool = new WorkerPool('http', config, fake.spawner, silent);
      try {
        await pool.start();
        const busy = pool.exec(job, sink);
        const waiting = pool.exec(job, sink);
        await sleep(300);
        assert.equal(fake.starts, mode === 'fork' ? 2 : 1, `${mode}: workers started while a request waited 300 ms`);
        answerAll(fake);
        await until(() => fake.workers.reduce((n, w) => n + w.received, 0) === 2, 'the second request running');
        answerAll(fake);
        await Promise.all([busy, waiting]);
      } finally {
        await pool.destroy(100);
      }
    }
  });
});

describe('dynamic_allocator scale-down', () => {
  test('extra workers idle for idle_timeout are stopped; a busy one stays; num_workers are never stopped', async () => {
    const fake = fakeSpawner();
    const config = poolConfig({ numWorkers: 2, dynamicAllocator: dynamic({ maxWorkers: 2, spawnRate: 2, idleTimeout: 1_000, scaleOnWait: 5 }) });
    const pool = new WorkerPool('http', config, fake.spawner, silent);
    try {
      await pool.start();
      const requests = Array.from({ length: 4 }, () => pool.exec(job, sink));
      await until(() => fake.alive().filter((w) => w.pending === 1).length === 4, 'four workers busy');
      const [extraA, extraB] = [fake.workers[2]!, fake.workers[3]!];
      // everyone but extra B finishes now; B stays busy past idle_timeout
      for (const w of fake.alive()) if (w !== extraB) w.answer();
      await until(() => !extraA.alive, 'the idle extra worker stopped', 3_000);
      assert.ok(extraB.alive, 'the busy extra worker is not taken');
      assert.ok(fake.workers[0]!.alive && fake.workers[1]!.alive, 'num_workers stay');
      extraB.answer();
      await Promise.all(requests);
      await until(() => !extraB.alive, 'the second extra worker stopped once idle', 3_000);
      await sleep(1_200);
      assert.equal(pool.list().length, 2, 'the two static workers stay, idle or not');
      assert.ok(fake.workers[0]!.alive && fake.workers[1]!.alive);
    } finally {
      await pool.destroy(100);
    }
  });

  test("an extra worker's idle time counts from when it joined the pool, not from its spawn", async () => {
    const fake = fakeSpawner();
    const config = poolConfig({ numWorkers: 1, dynamicAllocator: dynamic({ maxWorkers: 1, spawnRate: 1, idleTimeout: 1_000, scaleOnWait: 5 }) });
    const pool = new WorkerPool('http', config, fake.spawner, silent);
    try {
      await pool.start();
      const busy = pool.exec(job, sink);
      let boot = (): void => {};
      fake.readyGate = new Promise((resolve) => (boot = resolve));
      const cancel = new Cancellation();
      const waiting = outcome(pool.exec(job, sink, cancel));
      await until(() => fake.workers.length === 2, 'the extra worker spawned');
      cancel.cancel(); // the request leaves: the extra worker will join idle
      assert.equal(((await waiting).error as { code?: string }).code, 'ERR_ABORTED');
      await sleep(1_300); // its boot takes longer than idle_timeout
      fake.readyGate = null;
      boot();
      await until(() => pool.list().length === 2, 'the extra worker in the pool');
      await sleep(500);
      assert.ok(fake.workers[1]!.alive, 'idle 500 ms since it joined: it stays');
      await until(() => !fake.workers[1]!.alive, 'the extra worker stopped after idle_timeout', 3_000);
      fake.workers[0]!.answer();
      await busy;
    } finally {
      await pool.destroy(100);
    }
  });

  test('a sawtooth load with bursts closer than idle_timeout adds the extra workers once', async () => {
    const fake = fakeSpawner();
    const config = poolConfig({ numWorkers: 1, dynamicAllocator: dynamic({ maxWorkers: 3, spawnRate: 3, idleTimeout: 1_000, scaleOnWait: 5 }) });
    const pool = new WorkerPool('http', config, fake.spawner, silent);
    try {
      await pool.start();
      for (let burst = 0; burst < 5; burst++) {
        const requests = Array.from({ length: 4 }, () => pool.exec(job, sink));
        await until(() => fake.alive().filter((w) => w.pending === 1).length === 4, `burst ${burst}: four workers busy`);
        answerAll(fake);
        await Promise.all(requests);
        await sleep(300); // quiet between bursts, well under idle_timeout
      }
      assert.equal(fake.starts, 4, 'three extra workers added by the first burst and kept');
      assert.equal(fake.alive().length, 4);
    } finally {
      await pool.destroy(100);
    }
  });
});

describe('dynamic_allocator: an extra worker that dies', () => {
  // RoadRunner's worker_watcher replaces every worker that exits, extra or not (its dynamic allocator keeps counting it)
  test('is replaced by another extra worker at once, which idle_timeout stops later', async () => {
    const fake = fakeSpawner();
    const config = poolConfig({ numWorkers: 1, dynamicAllocator: dynamic({ maxWorkers: 1, spawnRate: 1, idleTimeout: 1_000, scaleOnWait: 5 }) });
    const pool = new WorkerPool('http', config, fake.spawner, silent);
    try {
      await pool.start();
      const requests = [pool.exec(job, sink), pool.exec(job, sink)];
      await until(() => fake.alive().filter((w) => w.pending === 1).length === 2, 'the static and the extra worker busy');
      answerAll(fake);
      await Promise.all(requests);
      const extra = fake.workers[1]!;
      extra.crash();
      await until(() => fake.starts === 3 && pool.list().length === 2, 'a replacement of the extra worker');
      const replacement = pool.list().find((w) => w.pid === fake.workers[2]!.pid)!;
      assert.equal(pool.isExtra(replacement), true, 'the replacement is an extra worker');
      assert.equal(pool.isExtra(pool.list().find((w) => w.pid === fake.workers[0]!.pid)!), false);
      await until(() => !fake.workers[2]!.alive, 'the idle replacement stopped after idle_timeout', 3_000);
      await sleep(300);
      assert.equal(fake.starts, 3, 'a stopped extra worker is not replaced');
      assert.equal(pool.list().length, 1);
    } finally {
      await pool.destroy(100);
    }
  });

  test('past ttl, whose replacement cannot start, leaves and is replaced like one that died', async () => {
    const fake = fakeSpawner();
    const config = poolConfig({ numWorkers: 1, dynamicAllocator: dynamic({ maxWorkers: 1, spawnRate: 1, idleTimeout: 60_000, scaleOnWait: 5 }) });
    const pool = new WorkerPool('http', config, fake.spawner, silent);
    try {
      await pool.start();
      const requests = [pool.exec(job, sink), pool.exec(job, sink)];
      await until(() => fake.alive().filter((w) => w.pending === 1).length === 2, 'the static and the extra worker busy');
      answerAll(fake);
      await Promise.all(requests);
      const extra = pool.list().find((w) => pool.isExtra(w))!;
      fake.failNextStarts = 1;
      pool.markForRetirement(extra, WorkerState.TTLReached); // its replacement before departure fails
      await until(() => fake.starts === 4 && pool.list().length === 2, 'the failed replacement, then another one', 3_000);
      assert.equal(fake.workers[1]!.alive, false, 'the worker past ttl left');
      assert.equal(pool.isExtra(pool.list().find((w) => w.pid === fake.workers[2]!.pid)!), true);
    } finally {
      await pool.destroy(100);
    }
  });

  test('that keeps dying is replaced with the crash-loop back-off, and not after a reset', async () => {
    const fake = fakeSpawner();
    const config = poolConfig({ numWorkers: 1, dynamicAllocator: dynamic({ maxWorkers: 1, spawnRate: 1, idleTimeout: 60_000, scaleOnWait: 5 }) });
    const pool = new WorkerPool('http', config, fake.spawner, silent);
    try {
      await pool.start();
      const requests = [pool.exec(job, sink), pool.exec(job, sink)];
      await until(() => fake.alive().filter((w) => w.pending === 1).length === 2, 'the static and the extra worker busy');
      answerAll(fake);
      await Promise.all(requests);
      fake.failNextStarts = 2;
      fake.workers[1]!.crash(); // it served a job: not a failed start itself; its replacement fails twice
      await until(() => fake.starts === 5 && pool.list().length === 2, 'two failed starts, then the replacement', 3_000);
      assert.equal(pool.isExtra(pool.list().find((w) => w.pid === fake.workers.at(-1)!.pid)!), true);
      await pool.reset();
      const startsAfterReset = fake.starts;
      const extra = pool.list().find((w) => pool.isExtra(w));
      assert.equal(extra, undefined, 'a reset replaces num_workers only');
      await sleep(300);
      assert.equal(fake.starts, startsAfterReset, 'nothing else started after the reset');
    } finally {
      await pool.destroy(100);
    }
  });
});
