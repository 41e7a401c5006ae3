// The amqp jobs driver against a real RabbitMQ started by the test: delivery, acks, nacks, requeues, delays,
// prefetch, pause/resume, stop, state and the context JSON byte for byte (docs/jobs-amqp.md §1–§6).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { STOPPED_TEXT } from '../../src/jobs/drivers/amqp.js';
import { RabbitMq } from '../support/rabbitmq.js';
import { consumeAndAck, Inspector, job, makeDriver, sleep, waitUntil, type Made } from './amqp-harness.js';
import { contextWithoutTrace, traceOf, withoutTrace } from './trace-headers.js';

/** Long enough for a job the broker would wrongly hand out to arrive; not a bound the test depends on. */
const SETTLE_MS = 400;

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
    await waitUntil(
      async () => (await inspector.ready('n-jobs-q')) === 0,
      5000,
      () => 'an empty queue',
    );
    await sleep(SETTLE_MS);
    assert.equal(queue.waiting.length, 0, 'no job came twice');
  });

  it('gives the worker the context RoadRunner gives, byte for byte', async () => {
    const { driver: d, queue } = await driver(broker, 'acc-main', { queue: 'acc-main-q', routing_key: 'acc' });
    await d.run();
    await d.push(job('id-1', 'acc-main', { job: 'acc.Ping', headers: { 'x-a': ['1'], 'x-html': ['<b>&'] }, payload: Buffer.from('{"n":1}') }));
    const [got] = await queue.take(1);
    assert.equal(
      contextWithoutTrace(got!.context()),
      '{"id":"id-1","job":"acc.Ping","driver":"amqp","queue":"acc-main-q","headers":{' +
        '"rr_auto_ack":["false"],"rr_delay":["0"],"rr_headers":["{\\"x-a\\":[\\"1\\"],\\"x-html\\":[\\"\\\\u003cb\\\\u003e\\\\u0026\\"]}"],' +
        '"rr_id":["id-1"],"rr_job":["acc.Ping"],"rr_pipeline":["acc-main"],"rr_priority":["10"],' +
        '"x-a":["1"],"x-html":["\\u003cb\\u003e\\u0026"]},"pipeline":"acc-main"}',
    );
    assert.equal(got!.item.payload.toString(), '{"n":1}');
    assert.deepEqual(withoutTrace(got!.item.headers), { 'x-a': ['1'], 'x-html': ['<b>&'] });
    await got!.ack();
  });

  it('reads a message RoadRunner published (rr_* headers) and one published by anything else', async () => {
    const { driver: d, queue } = await driver(broker, 'interop', { queue: 'interop-q', routing_key: 'interop', priority: 3 });
    await d.run();
    const channel = await inspector.channel();
    channel.publish('amqp.default', 'interop', Buffer.from('rr'), {
      headers: {
        rr_id: 'from-rr',
        rr_job: 'App\\Job',
        rr_pipeline: 'interop',
        rr_headers: Buffer.from('{"k":["v"]}'),
        rr_delay: { '!': 'int32', value: 0 },
        rr_priority: { '!': 'int64', value: 7 },
        rr_auto_ack: false,
      },
      persistent: true,
    });
    channel.publish('amqp.default', 'interop', Buffer.from('foreign'), { headers: { source: 'php-amqp' } });
    const [fromRr, foreign] = await queue.take(2);
    assert.deepEqual([fromRr!.item.id, fromRr!.item.job, fromRr!.item.priority, withoutTrace(fromRr!.item.headers)], ['from-rr', 'App\\Job', 7, { k: ['v'] }]);
    assert.equal(foreign!.item.job, 'deduced_by_rr');
    assert.equal(foreign!.item.priority, 10, 'the pipeline priority (PipelineConfig.priority)');
    assert.equal(foreign!.item.payload.toString(), 'foreign');
    assert.match(contextWithoutTrace(foreign!.context()), /"headers":\{"source":\["php-amqp"\]\}/);
    await fromRr!.ack();
    await foreign!.ack();
    await channel.close();
  });

  it('nack drops a failed job, or hands it back with requeue_on_fail', async () => {
    const { driver: dropping, queue: q1 } = await driver(broker, 'nack-drop', { queue: 'nack-drop-q', routing_key: 'nack-drop' });
    await dropping.run();
    await dropping.push(job('dropped', 'nack-drop'));
    const [first] = await q1.take(1);
    await first!.nack();
    await sleep(SETTLE_MS);
    assert.equal(q1.waiting.length, 0);
    assert.equal(await inspector.ready('nack-drop-q'), 0);

    const { driver: keeping, queue: q2 } = await driver(broker, 'nack-keep', { queue: 'nack-keep-q', routing_key: 'nack-keep', requeue_on_fail: true });
    await keeping.run();
    await keeping.push(job('kept', 'nack-keep'));
    const [once] = await q2.take(1);
    await once!.nack();
    const [again] = await q2.take(1);
    assert.equal(again!.item.id, 'kept');
    // NACK answers: redeliver or drop, whatever requeue_on_fail says
    await again!.nackWithOptions(false, 0);
    await sleep(SETTLE_MS);
    assert.equal(q2.waiting.length, 0);
    await keeping.push(job('redelivered', 'nack-keep'));
    const [third] = await q2.take(1);
    await third!.nackWithOptions(true, 0);
    const [fourth] = await q2.take(1);
    assert.equal(fourth!.item.id, 'redelivered');
    await fourth!.ack();
  });

  it('requeue publishes a copy with merged headers and the delay, then acks the original', async () => {
    const { driver: d, queue } = await driver(broker, 'requeue', { queue: 'requeue-q', routing_key: 'requeue' });
    await d.run();
    await d.push(job('rq-1', 'requeue', { headers: { attempts: ['1'], keep: ['yes'] } }));
    const [first] = await queue.take(1);
    // the SDK sends back every header it got, rr_* included
    const sentBack = { ...(JSON.parse(first!.context()) as { headers: Record<string, string[]> }).headers, attempts: ['2'] };
    const requeuedAt = Date.now();
    await first!.requeue(sentBack, 1);
    assert.equal((await d.state()).delayed, 1);
    const [second] = await queue.take(1);
    assert.ok(Date.now() - requeuedAt >= 900, 'not before its delay');
    assert.equal(second!.item.id, 'rq-1');
    assert.deepEqual(withoutTrace(second!.item.headers), { attempts: ['2'], keep: ['yes'] });
    assert.equal(traceOf(second!.item.headers).traceId, traceOf(first!.item.headers).traceId, 'the copy goes on with the trace');
    assert.equal(second!.item.delaySeconds, 1);
    const context = JSON.parse(second!.context()) as { headers: Record<string, string[]> };
    assert.deepEqual(context.headers['rr_delay'], ['1']);
    assert.deepEqual(context.headers['reason'], ['expired'], 'dead-lettered from the delay queue (x-death flattened)');
    await second!.ack();
    assert.equal((await d.state()).delayed, 0);
    await sleep(SETTLE_MS);
    assert.equal(queue.waiting.length, 0, 'the original was acked: no duplicate');
    assert.equal(await inspector.ready('requeue-q'), 0);
  });

  it('delays a job through the per-delay queue RoadRunner uses', async () => {
    const { driver: d, queue } = await driver(broker, 'delays', { queue: 'delays-q', routing_key: 'delays' });
    await d.run();
    const pushedAt = Date.now();
    await d.push(job('later', 'delays', { delaySeconds: 2 }));
    await d.push(job('now', 'delays'));
    const state = await d.state();
    assert.equal(state.delayed, 1);
    assert.equal(await inspector.ready('delayed-2000.amqp.default.delays-q'), 1);
    const [now] = await queue.take(1);
    assert.equal(now!.item.id, 'now');
    await now!.ack();
    const [later] = await queue.take(1);
    assert.ok(Date.now() - pushedAt >= 1900, 'not before its delay');
    assert.equal(later!.item.id, 'later');
    await later!.ack();
    assert.equal((await d.state()).delayed, 0);
    await d.push(job('dropped-later', 'delays', { delaySeconds: 1 }));
    const [dropped] = await queue.take(1);
    await dropped!.nackWithOptions(false, 0);
    assert.equal((await d.state()).delayed, 0, 'a dropped delayed job is no longer counted');
  });

  it('delays on a fanout exchange without copying jobs into the delay queue', async () => {
    const { driver: d, queue } = await driver(broker, 'fanout', { queue: 'fanout-q', exchange: 'fanout-x', exchange_type: 'fanout' });
    await d.run();
    await d.push(job('fan-later', 'fanout', { delaySeconds: 1 }));
    await d.push(job('fan-now', 'fanout'));
    const [now] = await queue.take(1);
    assert.equal(now!.item.id, 'fan-now');
    await now!.ack();
    const [later] = await queue.take(1);
    assert.equal(later!.item.id, 'fan-later');
    await later!.ack();
    await sleep(SETTLE_MS);
    assert.equal(queue.waiting.length, 0, 'each job once');
    assert.equal(await inspector.ready('delayed-1000.fanout-x.fanout-q'), 0);
  });

  it('holds deliveries at prefetch until jobs are acked', async () => {
    const { driver: d, queue } = await driver(broker, 'prefetch', { queue: 'prefetch-q', routing_key: 'prefetch', prefetch: 3 });
    for (let i = 0; i < 10; i++) await d.push(job(`p-${i}`, 'prefetch'));
    await d.run();
    const first = await queue.take(3);
    await sleep(SETTLE_MS);
    assert.equal(queue.waiting.length, 0, 'no more than prefetch unacked deliveries');
    assert.equal((await d.state()).active, 7);
    await first[0]!.ack();
    const [fourth] = await queue.take(1);
    assert.equal(fourth!.item.id, 'p-3');
    await sleep(SETTLE_MS);
    assert.equal(queue.waiting.length, 0);
    for (const j of [...first.slice(1), fourth!]) await j.ack();
    await consumeAndAck(queue, 6);
  });

  it('acks answered jobs in batches without ever acking one still running', async () => {
    const { driver: d, queue } = await driver(broker, 'batched', { queue: 'batched-q', routing_key: 'batched', prefetch: 6 });
    for (let i = 0; i < 6; i++) await d.push(job(`b-${i}`, 'batched'));
    await d.run();
    const taken = await queue.take(6);
    assert.deepEqual(
      taken.map((j) => j.item.id),
      ['b-0', 'b-1', 'b-2', 'b-3', 'b-4', 'b-5'],
    );
    // b-0 runs on; the others answer in one turn, then the pipeline stops in that same turn
    for (const j of taken.slice(1)) void j.ack();
    await d.stop();
    await waitUntil(
      async () => (await inspector.ready('batched-q')) === 1,
      5000,
      () => 'only the running job back in the queue',
    );
    const { driver: again, queue: q2 } = await driver(broker, 'batched', { queue: 'batched-q', routing_key: 'batched' });
    await again.run();
    const [back] = await q2.take(1);
    assert.equal(back!.item.id, 'b-0');
    await back!.ack();
    await waitUntil(
      async () => (await inspector.ready('batched-q')) === 0,
      5000,
      () => 'an empty queue',
    );
    await sleep(SETTLE_MS);
    assert.equal(q2.waiting.length, 0, 'nothing else came back');
  });

  it('pause stops intake, resume restarts it, with RoadRunner error texts', async () => {
    const { driver: d, queue } = await driver(broker, 'pausing', { queue: 'pausing-q', routing_key: 'pausing' });
    await d.run();
    assert.equal((await d.state()).ready, true);
    await d.push(job('before-pause', 'pausing'));
    const [running] = await queue.take(1);
    await d.pause();
    assert.equal((await d.state()).ready, false);
    await assert.rejects(d.pause(), { message: 'no active listeners, nothing to pause' });
    await running!.ack(); // a job delivered before the pause still acks on its channel
    await d.push(job('while-paused', 'pausing'));
    await sleep(SETTLE_MS);
    assert.equal(queue.waiting.length, 0);
    assert.equal((await d.state()).active, 1);
    await d.resume();
    await assert.rejects(d.resume(), { message: 'amqp listener is already in the active state' });
    const [resumed] = await queue.take(1);
    assert.equal(resumed!.item.id, 'while-paused');
    await resumed!.ack();
  });

  it('stop returns unacked jobs to the broker, or deletes the queue with delete_queue_on_stop', async () => {
    const { driver: keeping, queue: q1 } = await driver(broker, 'stop-keep', { queue: 'stop-keep-q', routing_key: 'stop-keep', prefetch: 1 });
    await keeping.run();
    for (let i = 0; i < 3; i++) await keeping.push(job(`k-${i}`, 'stop-keep'));
    const [inFlight] = await q1.take(1);
    await keeping.stop();
    await assert.rejects(inFlight!.ack(), { message: STOPPED_TEXT });
    await waitUntil(
      async () => (await inspector.ready('stop-keep-q')) === 3,
      5000,
      () => 'the three jobs back in the queue',
    );

    const { driver: deleting, queue: q2 } = await driver(broker, 'stop-delete', {
      queue: 'stop-delete-q',
      routing_key: 'stop-delete',
      delete_queue_on_stop: true,
    });
    await deleting.run();
    await deleting.push(job('gone', 'stop-delete'));
    await q2.take(1);
    await deleting.stop();
    assert.equal(await inspector.ready('stop-delete-q'), null, 'the queue is deleted');
  });

  it('auto_ack jobs are acked on receipt', async () => {
    const { driver: d, queue } = await driver(broker, 'auto-ack', { queue: 'auto-ack-q', routing_key: 'auto-ack' });
    await d.run();
    await d.push(job('auto', 'auto-ack', { autoAck: true }));
    const [got] = await queue.take(1);
    assert.equal(got!.item.autoAck, true);
    await d.stop();
    assert.equal(await inspector.ready('auto-ack-q'), 0, 'not handed back when the pipeline stopped');
  });

  it('keeps a job pushed before the pipeline ever consumed (RoadRunner loses it: docs/jobs-amqp.md §7)', async () => {
    const { driver: d, queue } = await driver(broker, 'late', { queue: 'late-q', routing_key: 'late' });
    await d.push(job('early', 'late'));
    assert.equal(await inspector.ready('late-q'), 1);
    assert.equal((await d.state()).active, 1);
    await d.run();
    const [got] = await queue.take(1);
    assert.equal(got!.item.id, 'early');
    await got!.ack();

    const { driver: nowhere } = await driver(broker, 'nowhere', { routing_key: 'nobody-listens' });
    await assert.rejects(
      nowhere.push(job('lost?', 'nowhere')),
      /push of job lost\?: no queue is bound to exchange 'amqp.default' with routing key 'nobody-listens'/,
    );
  });

  it('routes a job by its x-routing-key header', async () => {
    const channel = await inspector.channel();
    await channel.assertQueue('side-q');
    await channel.bindQueue('side-q', 'amqp.default', 'side');
    const { driver: d } = await driver(broker, 'routed', { queue: 'routed-q', routing_key: 'routed' });
    await d.push(job('to-side', 'routed', { headers: { 'x-routing-key': ['side'], a: ['1'] } }));
    const message = await channel.get('side-q', { noAck: true });
    assert.ok(message);
    assert.equal(message.properties.headers?.['rr_headers']?.toString(), '{"a":["1"]}');
    await channel.close();
  });

  it('reports state before its queue exists without breaking the connection (RoadRunner: docs/jobs-amqp.md §7)', async () => {
    const { driver: d, queue } = await driver(
      broker,
      'declared',
      { queue: 'declared-q', routing_key: 'declared', prefetch: '5', durable: 'true' },
      { declared: true },
    );
    const state = await d.state();
    assert.deepEqual(state, { pipeline: 'declared', driver: 'amqp', queue: 'declared-q', active: 0, delayed: 0, reserved: 0, ready: false, priority: 10 });
    await d.run();
    await d.push(job('after-stat', 'declared'));
    const [got] = await queue.take(1);
    await got!.ack();
  });

  it('fails a push at once with the reason the broker gives when the exchange is gone', async () => {
    const channel = await inspector.channel();
    await channel.assertQueue('gone-q');
    const { driver: d } = await driver(broker, 'gone', { routing_key: 'gone', exchange: 'gone-x' }, { timeoutMs: 3000 });
    await channel.bindQueue('gone-q', 'gone-x', 'gone');
    await d.push(job('before', 'gone'));
    await channel.deleteExchange('gone-x');
    await assert.rejects(
      d.push(job('after', 'gone')),
      /^JobsDriverError: amqp pipeline gone: push of job after failed: the broker closed the publish channel: .*NOT_FOUND - no exchange 'gone-x'/,
    );
    await channel.close();
  });

  it('declares the queue with queue_headers as its arguments (a Declare map sends them as JSON)', async () => {
    const { driver: d } = await driver(
      broker,
      'capped',
      { queue: 'capped-q', routing_key: 'capped', queue_headers: '{"x-max-length":2}', exclusive: 'false' },
      { declared: true },
    );
    for (let i = 0; i < 5; i++) await d.push(job(`c-${i}`, 'capped'));
    assert.equal((await d.state()).active, 2, 'x-max-length keeps the newest two');
  });

  it('refuses what RoadRunner refuses, with its texts', async () => {
    const { driver: noQueue } = await driver(broker, 'no-queue', { routing_key: 'x' });
    await assert.rejects(noQueue.run(), { message: 'empty queue name, consider adding the queue name to the AMQP configuration' });
    const { driver: noKey } = await driver(broker, 'no-key', { queue: 'no-key-q' });
    await assert.rejects(noKey.push(job('x', 'no-key')), { message: 'empty routing key, consider adding the routing key name to the AMQP configuration' });
    await assert.rejects(makeDriver(broker, 'dead-end', {}, { amqp: { addr: 'amqp://guest:secret@127.0.0.1:1/' } }), (err: Error) => {
      assert.match(err.message, /^amqp pipeline dead-end: cannot connect to amqp:\/\/guest:\*\*\*@127\.0\.0\.1:1\//);
      return true;
    });
  });
});
