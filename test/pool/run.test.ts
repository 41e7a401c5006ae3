// The pool's callback path (WorkerPool.run, Worker.run) with in-memory workers (no PHP): a job that waits for a
// worker, a worker that breaks mid-job while another job waits, stop requests and their re-dispatch, and a client's
// cancellation that must reach only its own job.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { QueueFullError, StopRequestError, WorkerProtocolError } from '../../src/errors.js';
import { STREAM_STOP } from '../../src/goridge/messages.js';
import { WorkerPool } from '../../src/pool/pool.js';
import { Cancellation, type ReplyChunk } from '../../src/worker/worker.js';
import { poolConfig } from '../support/pool-config.js';
import { fakeSpawner, job, until } from './fake-spawner.js';

/** One run() call: the body its sink got and every call of its `done` (there must be exactly one). */
interface Call {
  body: string;
  done: Array<Error | null>;
}

function run(pool: WorkerPool, cancel?: Cancellation): Call {
  const call: Call = { body: '', done: [] };
  const sink = {
    chunk(reply: ReplyChunk) {
      call.body += reply.body.toString();
    },
  };
  pool.run(job, sink, cancel, (err) => call.done.push(err));
  return call;
}

const quiet = pino({ level: 'silent' });

describe('WorkerPool.run', () => {
  test('a job that finds no idle worker waits for the next one released; the queue counts it until it is done', async () => {
    const { spawner, workers } = fakeSpawner();
    const pool = new WorkerPool('http', poolConfig({ numWorkers: 1, maxQueueSize: 2 }), spawner, quiet);
    await pool.start();
    try {
      const first = run(pool);
      assert.equal(workers[0]!.pending, 1, 'an idle worker is sent the job before run() returns');
      const second = run(pool);
      const refused = run(pool);
      assert.equal(refused.done.length, 1);
      assert.ok(refused.done[0] instanceof QueueFullError, `expected QueueFullError, got ${String(refused.done[0])}`);
      assert.equal(workers[0]!.pending, 1, 'the second job waits');

      workers[0]!.answer('one');
      await until(() => first.done.length > 0 && workers[0]!.pending === 1, 'the second job on the released worker');
      assert.deepEqual(first, { body: 'one', done: [null] });
      assert.deepEqual(second.done, []);
      workers[0]!.answer('two');
      await until(() => second.done.length > 0, 'the second job done');
      assert.deepEqual(second, { body: 'two', done: [null] });

      // both left the queue: two more are taken again
      const third = run(pool);
      const fourth = run(pool);
      assert.deepEqual([third.done, fourth.done], [[], []]);
      workers[0]!.answer('three');
      await until(() => workers[0]!.pending === 1 && third.done.length > 0, 'the fourth job on the worker');
      workers[0]!.answer('four');
      await until(() => fourth.done.length > 0, 'the fourth job done');
      assert.deepEqual(
        [third, fourth],
        [
          { body: 'three', done: [null] },
          { body: 'four', done: [null] },
        ],
      );
    } finally {
      await pool.destroy(100);
    }
  });

  test('a worker whose protocol breaks mid-job fails that job; the job waiting meanwhile gets its replacement', async () => {
    const { spawner, workers } = fakeSpawner();
    const pool = new WorkerPool('http', poolConfig({ numWorkers: 1, allocateTimeout: 10_000 }), spawner, quiet);
    await pool.start();
    try {
      const first = run(pool);
      const waiting = run(pool);
      workers[0]!.breakProtocol();
      await until(() => first.done.length > 0, 'the broken job done');
      assert.equal(first.done.length, 1);
      assert.ok(first.done[0] instanceof WorkerProtocolError, `expected WorkerProtocolError, got ${String(first.done[0])}`);
      // the broken worker is not handed to the waiting job (it would fail at once: "not alive")
      await until(() => workers[1]?.pending === 1 || waiting.done.length > 0, 'the waiting job on the replacement');
      assert.deepEqual(waiting.done, [], `the waiting job failed: ${String(waiting.done[0])}`);
      workers[1]!.answer('from the replacement');
      await until(() => waiting.done.length > 0, 'the waiting job done');
      assert.deepEqual(waiting, { body: 'from the replacement', done: [null] });
      assert.equal(workers[0]!.killed, true);
    } finally {
      await pool.destroy(100);
    }
  });

  test('a stop request sends the job to the next worker, waiting for the replacement when none is idle', async () => {
    const { spawner, workers } = fakeSpawner();
    const pool = new WorkerPool('http', poolConfig({ numWorkers: 1, maxQueueSize: 1 }), spawner, quiet);
    await pool.start();
    try {
      const call = run(pool);
      workers[0]!.askToStop();
      await until(() => workers[1]?.pending === 1 || call.done.length > 0, 'the job on the replacement');
      assert.deepEqual(call.done, [], `the job failed: ${String(call.done[0])}`);
      assert.equal(workers[1]!.received, 1);
      workers[1]!.answer('second try');
      await until(() => call.done.length > 0, 'the job done');
      assert.deepEqual(call, { body: 'second try', done: [null] });
      await until(() => !workers[0]!.alive, 'the worker that asked to stop to leave');
      // the re-dispatched job left the queue once (max_queue_size 1 takes the next)
      const next = run(pool);
      workers[1]!.answer('next');
      await until(() => next.done.length > 0, 'the next job done');
      assert.deepEqual(next, { body: 'next', done: [null] });
    } finally {
      await pool.destroy(100);
    }
  });

  test('a job that 11 workers in a row refuse with a stop request fails with StopRequestError', async () => {
    const { spawner, workers } = fakeSpawner();
    const pool = new WorkerPool('http', poolConfig({ numWorkers: 1 }), spawner, quiet);
    await pool.start();
    try {
      const call = run(pool);
      for (let i = 0; i < 11; i++) {
        await until(() => workers[i]?.pending === 1, `attempt ${i + 1} of the job`);
        assert.deepEqual(call.done, [], `done before attempt ${i + 1}`);
        workers[i]!.askToStop();
      }
      await until(() => call.done.length > 0, 'the job done');
      assert.equal(call.done.length, 1);
      assert.ok(call.done[0] instanceof StopRequestError, `expected StopRequestError, got ${String(call.done[0])}`);
      await until(() => workers.length === 12, 'the replacement of the last worker');
      assert.equal(workers[11]!.received, 0, 'no 12th attempt');
    } finally {
      await pool.destroy(100);
    }
  });

  test("a client's cancellation stops its own job's stream, and not the next job of the same worker", async () => {
    const { spawner, workers } = fakeSpawner();
    const pool = new WorkerPool('http', poolConfig({ numWorkers: 1 }), spawner, quiet);
    await pool.start();
    const php = workers[0]!;
    try {
      const gone = new Cancellation();
      const first = run(pool, gone);
      gone.cancel();
      assert.equal(php.received, 2, 'the job, then the STOP');
      assert.ok(php.jobs[1]!.equals(STREAM_STOP), 'the STOP');
      php.jobs.splice(1, 1);
      php.answer('dropped');
      await until(() => first.done.length > 0, 'the cancelled job done');
      assert.deepEqual(first, { body: '', done: [null] }, 'the answer after the STOP is dropped');

      const stays = new Cancellation();
      const before = run(pool, stays);
      php.answer('kept');
      await until(() => before.done.length > 0, 'the job done');
      const next = run(pool);
      stays.cancel(); // that client leaves after its job: the worker's next job is not its to stop
      assert.equal(php.received, 4, 'no STOP for the next job');
      php.answer('next');
      await until(() => next.done.length > 0, 'the next job done');
      assert.deepEqual(
        [before, next],
        [
          { body: 'kept', done: [null] },
          { body: 'next', done: [null] },
        ],
      );

      // a job that waited for the worker has two listeners (its wait's and its job's): the second stops the job
      const waited = new Cancellation();
      const busy = run(pool);
      const queued = run(pool, waited);
      php.answer('busy');
      await until(() => busy.done.length > 0 && php.pending === 1, 'the waiting job on the worker');
      waited.cancel();
      assert.equal(php.received, 7, 'the waiting job, then the STOP');
      assert.ok(php.jobs[1]!.equals(STREAM_STOP), 'the STOP of the job that waited');
      php.jobs.splice(1, 1);
      php.answer('dropped too');
      await until(() => queued.done.length > 0, 'the job that waited done');
      assert.deepEqual(queued, { body: '', done: [null] });
    } finally {
      await pool.destroy(100);
    }
  });
});
