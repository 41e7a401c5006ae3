// The plugin's priority queue: lowest number first, equal priorities in push order (rrts's improvement on RR's
// heap), capacity, removal of one pipeline's jobs, and close() waking idle pollers (RR #2194).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PriorityJobQueue } from '../../src/jobs/queue.js';
import { item, RecordingJob } from './helpers.js';

const job = (id: string, priority: number, pipeline = 'p'): RecordingJob => new RecordingJob(item({ id, priority, pipeline }));

async function drain(queue: PriorityJobQueue, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push((await queue.take())!.item.id);
  return ids;
}

describe('PriorityJobQueue', () => {
  test('lowest priority number first; equal priorities first in, first out', async () => {
    const queue = new PriorityJobQueue(100);
    const pushes: Array<[string, number]> = [];
    for (let i = 0; i < 40; i++) pushes.push([`j${i}`, [5, 1, 3][i % 3]!]);
    for (const [id, priority] of pushes) await queue.insert(job(id, priority));
    const expected = [1, 3, 5].flatMap((p) => pushes.filter(([, q]) => q === p).map(([id]) => id));
    assert.deepEqual(await drain(queue, 40), expected);
  });

  test('a waiting poller gets the next insert; close() gives every waiting poller null at once', async () => {
    const queue = new PriorityJobQueue(10);
    const first = queue.take();
    const second = queue.take();
    await queue.insert(job('a', 10));
    assert.equal((await first)!.item.id, 'a');
    queue.close();
    assert.equal(await second, null);
    assert.equal(await queue.take(), null);
  });

  test('insert waits while the queue is at capacity and goes on when a job is taken', async () => {
    const queue = new PriorityJobQueue(2);
    await queue.insert(job('a', 1));
    await queue.insert(job('b', 1));
    let third = false;
    const inserting = queue.insert(job('c', 1)).then(() => (third = true));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(third, false);
    assert.equal((await queue.take())!.item.id, 'a');
    await inserting;
    assert.deepEqual(await drain(queue, 2), ['b', 'c']);
  });

  test("removePipeline takes out one pipeline's jobs and keeps the order of the rest", async () => {
    const queue = new PriorityJobQueue(10);
    for (const [id, p, pipe] of [
      ['a', 2, 'x'],
      ['b', 1, 'y'],
      ['c', 2, 'y'],
      ['d', 1, 'x'],
    ] as const) {
      await queue.insert(job(id, p, pipe));
    }
    assert.deepEqual(
      queue.removePipeline('y').map((j) => j.item.id),
      ['b', 'c'],
    );
    assert.equal(queue.size, 2);
    assert.deepEqual(await drain(queue, 2), ['d', 'a']);
  });
});
