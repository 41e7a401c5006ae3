// The memory driver against the plugin's real queue: prefetch, delays, pause/resume with RoadRunner's error texts,
// redelivery of failed jobs (rrts's improvement), requeue with merged headers, state, and stop.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { DeliveredJob } from '../../src/jobs/driver.js';
import { FAILED_RUN_PAUSE_MS, MemoryDriver } from '../../src/jobs/drivers/memory.js';
import { PriorityJobQueue } from '../../src/jobs/queue.js';
import { item, silent } from './helpers.js';
import { traceOf, withoutTrace } from './trace-headers.js';

function driver(config: Record<string, unknown> = {}, queue = new PriorityJobQueue(1000)): { d: MemoryDriver; queue: PriorityJobQueue } {
  const d = new MemoryDriver(
    { name: 'm', driver: 'memory', priority: 10, config, declared: false },
    { queue, log: silent, workDir: '.', timeoutMs: 1000, globalConfig: {} },
  );
  return { d, queue };
}

/** The next job, or null when none is in the queue within `ms` (a take() is not left waiting: it would swallow a later job). */
async function next(queue: PriorityJobQueue, ms = 50): Promise<DeliveredJob | null> {
  for (const until = Date.now() + ms; queue.size === 0 && Date.now() < until;) await new Promise((resolve) => setTimeout(resolve, 5));
  return queue.size > 0 ? queue.take() : null;
}

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('memory driver', () => {
  test('jobs wait in the buffer until run(); at most prefetch of them are in the queue or running', async () => {
    const { d, queue } = driver({ prefetch: 2 });
    for (let i = 0; i < 5; i++) await d.push(item({ id: `j${i}`, pipeline: 'm' }));
    await flush();
    assert.equal(queue.size, 0);
    await d.run();
    await flush();
    assert.equal(queue.size, 2);
    assert.equal((await d.state()).active, 2);
    const first = (await queue.take())!;
    await first.ack();
    await flush();
    assert.equal(queue.size, 2);
    assert.deepEqual(await d.state(), { pipeline: 'm', driver: 'memory', queue: 'm', active: 2, delayed: 0, reserved: 0, ready: true, priority: 10 });
    await d.stop();
  });

  test('pause and resume answer with RoadRunner texts; a paused pipeline takes pushes and releases none', async () => {
    const { d, queue } = driver();
    await assert.rejects(d.pause(), { message: 'no active listeners, nothing to pause' });
    await d.run();
    await assert.rejects(d.resume(), { message: 'memory listener is already in the active state' });
    await d.pause();
    await d.push(item({ pipeline: 'm' }));
    assert.equal(await next(queue), null);
    await d.resume();
    assert.equal((await next(queue))!.item.id, 'id-1');
    await d.stop();
  });

  test('a delayed job is counted as delayed and arrives after its delay', async () => {
    const { d, queue } = driver();
    await d.run();
    await d.push(item({ pipeline: 'm', delaySeconds: 1 }));
    assert.equal((await d.state()).delayed, 1);
    assert.equal(await next(queue, 300), null);
    const job = await next(queue, 3000);
    assert.equal(job?.item.id, 'id-1');
    assert.equal((await d.state()).delayed, 0);
    await d.stop();
  });

  test('nack() (the worker failed) delivers the job again; nack without redelivery drops it', async () => {
    const { d, queue } = driver();
    await d.run();
    await d.push(item({ pipeline: 'm' }));
    await (await queue.take())!.nack();
    // not at once: a pool that refuses every run at once must not spin (FAILED_RUN_PAUSE_MS)
    assert.equal(queue.size, 0);
    const again = (await next(queue, 10 * FAILED_RUN_PAUSE_MS))!;
    assert.equal(again.item.id, 'id-1');
    await again.nackWithOptions(false, 0);
    assert.equal(await next(queue), null);
    assert.equal((await d.state()).active, 0);
    await d.stop();
  });

  test('requeue merges the headers (sent keys replace) and keeps the id', async () => {
    const { d, queue } = driver();
    await d.run();
    await d.push(item({ pipeline: 'm', headers: { a: ['1'], b: ['1'] } }));
    const first = (await queue.take())!;
    const delivered = traceOf(first.item.headers);
    await first.requeue({ b: ['2'], c: ['3'] }, 0);
    const again = (await next(queue))!;
    assert.deepEqual(withoutTrace(again.item.headers), { a: ['1'], b: ['2'], c: ['3'] });
    const redelivered = traceOf(again.item.headers);
    assert.equal(redelivered.traceId, delivered.traceId, 'the requeued job goes on with the trace it was delivered in');
    assert.notEqual(redelivered.spanId, delivered.spanId);
    assert.equal(again.item.id, 'id-1');
    await d.stop();
  });

  test('stop drops buffered, delayed and queued jobs; settling after it fails with the RoadRunner text', async () => {
    const { d, queue } = driver({ prefetch: 1 });
    await d.run();
    await d.push(item({ id: 'a', pipeline: 'm' }));
    await d.push(item({ id: 'b', pipeline: 'm' }));
    await d.push(item({ id: 'c', pipeline: 'm', delaySeconds: 30 }));
    const running = (await queue.take())!;
    await d.stop();
    assert.equal(queue.size, 0);
    await assert.rejects(running.ack(), { message: 'failed to acknowledge the JOB, the pipeline is probably stopped' });
    await assert.rejects(d.push(item({ pipeline: 'm' })), /stopped/);
  });

  test('a bad prefetch names the key', () => {
    assert.throws(() => driver({ prefetch: 'many' }), /jobs\.pipelines\.m\.config\.prefetch: expected a whole number/);
  });
});
