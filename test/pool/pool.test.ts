// The pool's deadlines with in-memory workers (no PHP): allocate_timeout of queued requests and exec_ttl of running
// jobs share one timer, so these check that each still fires on time, in any order, and that no timer is left.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { ExecTtlError, NoFreeWorkersError } from '../../src/errors.js';
import { Flag } from '../../src/goridge/flags.js';
import { WorkerPool } from '../../src/pool/pool.js';
import type { ReplyChunk } from '../../src/worker/worker.js';
import { poolConfig } from '../support/pool-config.js';
import { sleep } from '../support/sleep.js';
import { fakeSpawner } from './fake-spawner.js';

/** Collects the body a job answered with. */
function sink(): { body: string; chunk(reply: ReplyChunk): void } {
  const s = {
    body: '',
    chunk(reply: ReplyChunk) {
      s.body += reply.body.toString();
    },
  };
  return s;
}

const job = { codec: Flag.CODEC_JSON, context: Buffer.from('{}'), body: Buffer.alloc(0) };
const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

/**
 * Settles with how long the job took and its outcome. Takes a function so the clock starts before the pool sets its
 * deadline: started after, a stall of this process between the two made a deadline met on time look early.
 */
async function timed<T>(start: () => Promise<T>): Promise<{ ms: number; value?: T; error?: unknown }> {
  const started = performance.now();
  try {
    const value = await start();
    return { ms: performance.now() - started, value };
  } catch (error) {
    return { ms: performance.now() - started, error };
  }
}

describe('pool deadlines', () => {
  test('a queued request fails after allocate_timeout; one queued after it is still served', async () => {
    const { spawner, workers } = fakeSpawner();
    // The second waiter comes 600 ms after the first, so a loaded machine that stalls this process for a while
    // between the first deadline and the answers below still serves it before its own deadline.
    const pool = new WorkerPool('http', poolConfig({ allocateTimeout: 1_000 }), spawner, pino({ level: 'silent' }));
    await pool.start();
    const idleTimers = timers();
    const first = sink();
    const running = pool.exec(job, first);
    const late = timed(() => pool.exec(job, sink()));
    await sleep(600);
    const second = sink();
    const served = timed(() => pool.exec(job, second));
    assert.equal(timers(), idleTimers + 1, 'one timer for both waiting requests');

    const failed = await late;
    assert.ok(failed.error instanceof NoFreeWorkersError, `expected NoFreeWorkersError, got ${String(failed.error)}`);
    assert.ok(failed.ms >= 995, `failed after ${failed.ms} ms, before allocate_timeout`);
    workers[0]!.answer('one');
    await running;
    assert.equal(first.body, 'one');
    await sleep(10);
    workers[0]!.answer('two');
    const ok = await served;
    assert.equal(ok.error, undefined);
    assert.equal(second.body, 'two');
    assert.equal(timers(), idleTimers, 'no timer left once every deadline is met');
    await pool.destroy(100);
  });

  test('exec_ttl kills a job that runs too long, and the waiting request with a later deadline runs next', async () => {
    const { spawner, workers } = fakeSpawner();
    const config = poolConfig({
      allocateTimeout: 2_000,
      supervisor: { watchTick: 1_000, ttl: 0, idleTtl: 0, maxWorkerMemory: 0, execTtl: 150 },
    });
    const pool = new WorkerPool('http', config, spawner, pino({ level: 'silent' }));
    await pool.start();
    const idleTimers = timers();
    const slow = timed(() => pool.exec(job, sink()));
    const next = sink();
    const queued = timed(() => pool.exec(job, next));

    const killed = await slow;
    assert.ok(killed.error instanceof ExecTtlError);
    assert.ok(killed.ms >= 145, `killed after ${killed.ms} ms, before exec_ttl`);
    // The replacement worker takes the queued job; its own exec_ttl starts now.
    while (workers.length < 2 || workers[1]!.jobs.length === 0) await sleep(5);
    workers[1]!.answer('after');
    const ok = await queued;
    assert.equal(ok.error, undefined);
    assert.equal(next.body, 'after');
    assert.equal(timers(), idleTimers, 'no timer left once every deadline is met');
    await pool.destroy(100);
  });

  test('an earlier deadline added after a later one fires first', async () => {
    const { spawner, workers } = fakeSpawner();
    const config = poolConfig({
      allocateTimeout: 5_000,
      supervisor: { watchTick: 1_000, ttl: 0, idleTtl: 0, maxWorkerMemory: 0, execTtl: 100 },
    });
    const pool = new WorkerPool('http', config, spawner, pino({ level: 'silent' }));
    await pool.start();
    const first = timed(() => pool.exec(job, sink()));
    const second = pool.exec(job, sink());
    const third = pool.exec(job, sink());
    // After the first job's exec_ttl, the timer is set for the allocate_timeout (5 s) of the queued jobs ...
    assert.ok((await first).error instanceof ExecTtlError);
    while (workers.length < 2 || workers[1]!.jobs.length === 0) await sleep(5);
    // ... and the second job, now running while the third still waits, adds its exec_ttl (100 ms): that one must
    // fire, not wait for the 5 s.
    const killed = await timed(() => second);
    assert.ok(killed.error instanceof ExecTtlError);
    assert.ok(killed.ms < 4_000, `the second exec_ttl fired after ${killed.ms} ms, as late as the 5 s allocate_timeout`);
    while (workers.length < 3 || workers[2]!.jobs.length === 0) await sleep(5);
    workers[2]!.answer('third');
    assert.equal((await timed(() => third)).error, undefined);
    await pool.destroy(100);
  });
});
