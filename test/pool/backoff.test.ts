// The pool's start back-off, with in-memory workers (no PHP) and node:test's mock timers moved by hand: a worker
// that keeps failing to start is tried again after 100 ms, doubling up to 10 s, and a worker that served a job
// ends the back-off.
import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { Flag } from '../../src/goridge/flags.js';
import { WorkerPool } from '../../src/pool/pool.js';
import { poolConfig } from '../support/pool-config.js';
import { fakeSpawner, type FakeSpawner } from './fake-spawner.js';

const job = { codec: Flag.CODEC_JSON, context: Buffer.from('{}'), body: Buffer.alloc(0) };
const silent = pino({ level: 'silent' });

/** Lets what is queued run: promise callbacks and the fake workers' exits (setImmediate, not mocked). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
}

/** Moves the clock to one ms before the next start attempt is due (none happens), then onto it (one happens). */
async function expectAttemptAfter(fake: FakeSpawner, waitMs: number): Promise<void> {
  const before = fake.attempts;
  mock.timers.tick(waitMs - 1);
  await settle();
  assert.equal(fake.attempts, before, `no new start attempt ${waitMs - 1} ms into a ${waitMs} ms back-off`);
  mock.timers.tick(1);
  await settle();
  assert.equal(fake.attempts, before + 1, `one start attempt once the ${waitMs} ms back-off passed`);
}

describe('pool start back-off', () => {
  let pool: WorkerPool | null = null;
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout'] }));
  afterEach(async () => {
    mock.timers.reset();
    await pool?.destroy();
    pool = null;
  });

  async function startPool(): Promise<FakeSpawner> {
    const fake = fakeSpawner();
    pool = new WorkerPool('http', poolConfig({ numWorkers: 1 }), fake.spawner, silent);
    await pool.start();
    return fake;
  }

  test('a worker that keeps failing to start is tried again after 100 ms, doubling up to 10 s', async () => {
    const fake = await startPool();
    fake.failStarts = new Error('php: no such file');
    // the worker dies before it served a job: an early death counts as the first failure
    fake.workers[0]!.crash();
    await settle();
    assert.equal(fake.attempts, 1, 'no attempt before the first back-off passed');
    for (const wait of [100, 200, 400, 800, 1_600, 3_200, 6_400, 10_000, 10_000, 10_000]) await expectAttemptAfter(fake, wait);
    assert.equal(fake.workers.length, 1, 'no worker started');
  });

  test('a start that succeeds after failures is admitted; the back-off goes on until a worker served a job', async () => {
    const fake = await startPool();
    fake.failStarts = new Error('php: no such file');
    fake.workers[0]!.crash();
    await settle();
    await expectAttemptAfter(fake, 100);
    await expectAttemptAfter(fake, 200);

    fake.failStarts = null;
    await expectAttemptAfter(fake, 400);
    const second = fake.workers[1]!;
    assert.ok(second?.alive, 'the start after the back-off succeeded');
    assert.deepEqual(
      pool!.list().map((w) => w.pid),
      [second.pid],
    );

    // it dies before serving anything: another early death, so the back-off continues where it was
    second.crash();
    await settle();
    await expectAttemptAfter(fake, 800);
    const third = fake.workers[2]!;
    assert.equal(fake.attempts, 5);

    // this one serves a job: the back-off is over, and its death later is replaced at once
    const served = pool!.exec(job, { chunk() {} });
    await settle();
    third.answer();
    await served;
    third.crash();
    await settle();
    assert.equal(fake.attempts, 6, 'the replacement was started without a back-off');
    assert.equal(fake.workers.length, 4);
    assert.ok(fake.workers[3]!.alive);
  });
});
