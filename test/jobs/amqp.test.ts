// The amqp jobs driver against a real RabbitMQ started by the test: delivery, acks, nacks, requeues, delays,
// prefetch, pause/resume, stop, state and the context JSON byte for byte (jobs.md §1.2, §2.2, §2.5, §4).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RabbitMq } from '../support/rabbitmq.js';
import { consumeAndAck, Inspector, job, makeDriver, sleep, waitUntil, type Made } from './amqp-harness.js';

describe('amqp driver on a real RabbitMQ', () => {
  let broker: RabbitMq;
  let inspector: Inspector;
  const made: Made[] = [];
  const driver = async (...args: Parameters<typeof makeDriver>) => {
    const m = await makeDriver(...args);
    made.push(m);
    return m;
  };

  before(async () => {
    broker = await RabbitMq.start();
    inspector = await Inspector.open(broker);
  });
  after(async () => {
    for (const m of made) await m.driver.stop().catch(() => {});
    await inspector?.close();
    await broker?.destroy();
  });

  it('delivers N pushed jobs exactly once when each is acked', async () => {
    const { driver: d, queue } = await driver(broker, 'n-jobs', { queue: 'n-jobs-q', routing_key: 'n-jobs', prefetch: 20 });
    await d.run();
    const ids = Array.from({ length: 60 }, (_, i) => `job-${i}`);
    await Promise.all(ids.map((id) => d.push(job(id, 'n-jobs'))));
    const got = await consumeAndAck(queue, ids.length);
    assert.deepEqual(got.sort(), [...ids].sort());
    await waitUntil(async () => (await inspector.ready('n-jobs-q')) === 0, 5000, () => 'an empty queue');
    await sleep(300);
    assert.equal(queue.waiting.length, 0, 'no job came twice');
  });
});
