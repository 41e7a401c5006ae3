// The amqp driver when the broker goes away mid-run: it redials, restores its consumer, loses no job the broker
// confirmed, makes pushes wait for the redial (or fail clearly after jobs.timeout), and dials again after giving up.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RabbitMq } from '../support/rabbitmq.js';
import { job, makeDriver, waitUntil, type Made } from './amqp-harness.js';

const JOBS = 300;
const PRODUCERS = 4;
const PUSH_PACE_MS = 20;

describe('amqp driver across a broker restart', () => {
  let broker: RabbitMq;
  const made: Made[] = [];

  before(async () => {
    broker = await RabbitMq.start();
  });
  after(async () => {
    for (const m of made) await m.driver.stop().catch(() => {});
    await broker?.destroy();
  });

  it('loses no confirmed job, waits pushes through the redial, and gives up after redial_timeout', async () => {
    const durable = { queue: 'restart-q', routing_key: 'restart', durable: true, exchange_durable: true, prefetch: 50 };
    const main = await makeDriver(broker, 'restart', durable, { timeoutMs: 60_000 });
    made.push(main);
    const impatient = await makeDriver(broker, 'impatient', { queue: 'impatient-q', routing_key: 'impatient', exchange: 'impatient-x' }, { timeoutMs: 1500 });
    made.push(impatient);
    const quitter = await makeDriver(broker, 'quitter', { queue: 'quitter-q', routing_key: 'quitter', exchange: 'quitter-x', redial_timeout: 2 });
    made.push(quitter);
    await main.driver.run();

    const received = new Set<string>();
    let deliveries = 0;
    let consuming = true;
    const consumer = (async () => {
      while (consuming) {
        for (const taken of main.queue.waiting.splice(0)) {
          deliveries++;
          received.add(taken.item.id);
          // an ack on the connection that died fails; the broker delivers that job again
          await taken.ack().catch(() => {});
        }
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();

    const confirmed: string[] = [];
    const failed: string[] = [];
    let inFlight = 0;
    let inFlightWhileDown = 0;
    let next = 0;
    // paced, so that pushes are in flight while the broker is down
    const producers = Array.from({ length: PRODUCERS }, async () => {
      while (next < JOBS) {
        const id = `r-${next++}`;
        inFlight++;
        await main.driver.push(job(id, 'restart')).then(
          () => confirmed.push(id),
          () => failed.push(id),
        );
        inFlight--;
        await new Promise((resolve) => setTimeout(resolve, PUSH_PACE_MS));
      }
    });

    try {
      await waitUntil(
        () => confirmed.length >= JOBS / 3,
        30_000,
        () => `${JOBS / 3} confirmed pushes (have ${confirmed.length})`,
      );
      await broker.stopServer();
      inFlightWhileDown = inFlight;

      await assert.rejects(impatient.driver.push(job('while-down', 'impatient')), (err: Error) => {
        assert.match(
          err.message,
          /^amqp pipeline impatient: push of job while-down failed: the broker connection was lost \(.+\) and is being redialed; gave up after jobs\.timeout \(1\.5s\)$/,
        );
        return true;
      });
      assert.match((await main.driver.state()).errorMessage ?? '', /broker connection lost .*redialing/);
      await waitUntil(
        async () => /redial gave up: the broker stayed unreachable for redial_timeout \(2s\)/.test((await quitter.driver.state()).errorMessage ?? ''),
        20_000,
        () => 'the quitter pipeline to give up redialing',
      );
      await assert.rejects(
        quitter.driver.push(job('still-down', 'quitter')),
        /^JobsDriverError: amqp pipeline quitter: cannot connect to amqp:\/\/guest:\*\*\*@127\.0\.0\.1:\d+\/: connect ECONNREFUSED/,
      );

      await broker.startServer();
      await Promise.all(producers);
      assert.deepEqual(failed, [], 'every push waited for the redial instead of failing');
      await waitUntil(
        () => confirmed.every((id) => received.has(id)),
        60_000,
        () => `all ${confirmed.length} confirmed jobs (have ${received.size})`,
      );
    } finally {
      // bounded: the loops end once consuming is off and the producers ran out of ids
      consuming = false;
      next = JOBS;
      await consumer;
      await Promise.all(producers);
    }
    assert.equal(received.size, JOBS);
    assert.ok(inFlightWhileDown > 0, 'pushes were waiting for the redial while the broker was down');
    assert.ok(deliveries >= JOBS, `${deliveries} deliveries (redeliveries after the restart are expected)`);
    assert.equal((await main.driver.state()).ready, true, 'the consumer was restored');
    assert.equal((await main.driver.state()).errorMessage, undefined);

    // the pipeline that gave up dials again on its next push
    await quitter.driver.push(job('after-restart', 'quitter'));
    assert.equal((await quitter.driver.state()).active, 1);
  });
});
