// The nats jobs driver against a real nats-server (JetStream) started by the test: delivery, acks, nacks, requeues,
// pause/resume, stop, Stat, the message on the stream as RoadRunner writes it, and the reconnect (docs/jobs-nats.md).
import assert from 'node:assert/strict';
import os from 'node:os';
import { after, before, describe, it } from 'node:test';
import { connect, headers as natsHeaders, type JetStreamManager, type NatsConnection } from 'nats';
import pino from 'pino';
import type { DriverContext, JobItem, PipelineConfig } from '../../src/jobs/driver.js';
import { createNatsDriver, DEDUCED_JOB, DELAY_TEXT, STOPPED_TEXT, type NatsDriver } from '../../src/jobs/drivers/nats.js';
import { NO_GLOBAL_TEXT } from '../../src/jobs/drivers/nats/config.js';
import { encodeItem } from '../../src/jobs/drivers/nats/message.js';
import { freePort } from '../support/ports.js';
import { NatsServer } from '../support/nats.js';
import { consumeAndAck, TestQueue, waitUntil } from './amqp-harness.js';
import { contextWithoutTrace, traceOf, withoutTrace } from './trace-headers.js';

/** A trace a RoadRunner producer wrote into a message's headers. */
const RR_TRACE = '0af7651916cd43dd8448eb211c80319c';
const RR_SPAN = 'b7ad6b7169203331';

/** Long enough for a job that nats-server would wrongly hand out to arrive; not a bound the test depends on. */
const SETTLE_MS = 1000;

function job(id: string, pipeline: string, extra: Partial<JobItem> = {}): JobItem {
  return { id, job: 'test.Job', payload: Buffer.from(`{"id":"${id}"}`), headers: {}, pipeline, priority: 10, delaySeconds: 0, autoAck: false, ...extra };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('nats driver on a real nats-server', () => {
  let server: NatsServer;
  let raw: NatsConnection;
  let jsm: JetStreamManager;
  const drivers: NatsDriver[] = [];

  async function make(name: string, config: Record<string, unknown>, options: { declared?: boolean; queue?: TestQueue } = {}) {
    const queue = options.queue ?? new TestQueue();
    const pipeline: PipelineConfig = { name, driver: 'nats', priority: 10, config, declared: options.declared ?? false };
    const context: DriverContext = {
      queue,
      log: pino({ level: 'silent' }),
      workDir: os.tmpdir(),
      timeoutMs: 10_000,
      globalConfig: { nats: { addr: server.addr } },
    };
    const driver = (await createNatsDriver(pipeline, context)) as NatsDriver;
    drivers.push(driver);
    return { driver, queue };
  }

  async function streamMessages(stream: string): Promise<number> {
    return (await jsm.streams.info(stream)).state.messages;
  }

  before(async () => {
    server = await NatsServer.start();
    raw = await connect({ servers: server.addr, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
    jsm = await raw.jetstreamManager();
  });
  after(async () => {
    for (const d of drivers) await d.stop().catch(() => {});
    await raw?.close().catch(() => {});
    await server?.destroy();
  });

  it('delivers N pushed jobs exactly once when each is acked, prefetch at a time', async () => {
    const { driver, queue } = await make('n-jobs', { stream: 'n-jobs', subject: 'n.jobs', prefetch: 5, delete_after_ack: true });
    const ids = Array.from({ length: 40 }, (_, i) => `j${i}`);
    for (const id of ids) await driver.push(job(id, 'n-jobs'));
    await driver.run();
    await waitUntil(
      () => queue.waiting.length === 5,
      10_000,
      () => `5 jobs (have ${queue.waiting.length})`,
    );
    await sleep(200);
    assert.equal(queue.waiting.length, 5, 'no more than prefetch jobs are delivered unacked');
    const seen = await consumeAndAck(queue, ids.length);
    assert.deepEqual([...seen].sort(), [...ids].sort());
    await sleep(SETTLE_MS);
    assert.equal(queue.waiting.length, 0, 'no job came twice');
    await waitUntil(
      async () => (await streamMessages('n-jobs')) === 0,
      10_000,
      () => 'the stream to be empty (delete_after_ack)',
    );
  });

  it("publishes RoadRunner's JSON Item with the headers as NATS headers, and gives the worker RoadRunner's context", async () => {
    const { driver, queue } = await make('wire', { stream: 'wire', subject: 'wire.jobs', priority: 10 });
    const item = job('id-1', 'wire', { job: 'app.<Ping>', payload: Buffer.from([0, 1, 2, 255]), headers: { 'x-a': ['1', '2'], Trace: ['t'] }, priority: 7 });
    await driver.push(item);
    const stored = await jsm.streams.getMessage('wire', { seq: 1 });
    assert.equal(
      Buffer.from(stored.data).toString(),
      '{"job":"app.\\u003cPing\\u003e","id":"id-1","payload":"AAEC/w==","options":{"priority":7,"pipeline":"wire","auto_ack":false,"Queue":""}}',
    );
    assert.deepEqual(stored.header.values('x-a'), ['1', '2']);
    assert.deepEqual(stored.header.values('Trace'), ['t']);
    await driver.run();
    const [taken] = await queue.take(1);
    assert.equal(
      contextWithoutTrace(taken!.context()),
      '{"id":"id-1","job":"app.\\u003cPing\\u003e","driver":"nats","headers":{"Trace":["t"],"x-a":["1","2"],"x-nats-subject":["wire.jobs"]},"pipeline":"wire","queue":"wire"}',
    );
    assert.deepEqual(taken!.item.payload, Buffer.from([0, 1, 2, 255]));
    assert.equal(taken!.item.priority, 7);
    await taken!.ack();
  });

  it('runs a body that is not its Item as a raw job, as RoadRunner does', async () => {
    const { driver, queue } = await make('raw', { stream: 'raw', subject: 'raw.jobs' });
    await raw.jetstream().publish('raw.jobs', Buffer.from('plain text'));
    await driver.run();
    const [taken] = await queue.take(1);
    assert.equal(taken!.item.job, DEDUCED_JOB);
    assert.equal(taken!.item.payload.toString(), 'plain text');
    assert.match(taken!.item.id, /^[0-9a-f-]{36}$/);
    await taken!.ack();
  });

  it('refuses a delayed push with RoadRunner error text', async () => {
    const { driver } = await make('delay', { stream: 'delay', subject: 'delay.jobs' });
    await assert.rejects(driver.push(job('d', 'delay', { delaySeconds: 2 })), { message: DELAY_TEXT });
    assert.equal(await streamMessages('delay'), 0);
  });

  it('nack redelivers at once; nack with redelivery after its delay; nack without redelivery terminates', async () => {
    const { driver, queue } = await make('nack', { stream: 'nack', subject: 'nack.jobs' });
    await driver.push(job('n1', 'nack'));
    await driver.push(job('n2', 'nack'));
    await driver.push(job('n3', 'nack'));
    await driver.run();
    const first = await queue.take(3);
    const byId = new Map(first.map((j) => [j.item.id, j]));
    await byId.get('n1')!.nack();
    await byId.get('n2')!.nackWithOptions(true, 1);
    await byId.get('n3')!.nackWithOptions(false, 0);
    const [again] = await queue.take(1);
    assert.equal(again!.item.id, 'n1');
    await again!.ack();
    const [later] = await queue.take(1, 10_000);
    assert.equal(later!.item.id, 'n2', 'the delayed nack comes back');
    await later!.ack();
    await sleep(SETTLE_MS);
    assert.equal(queue.waiting.length, 0, 'the terminated job is not delivered again');
  });

  it('requeue publishes a copy with the merged headers and removes the original', async () => {
    const { driver, queue } = await make('requeue', { stream: 'requeue', subject: 'requeue.jobs' });
    await driver.push(job('r1', 'requeue', { headers: { keep: ['k'], attempts: ['1'] } }));
    await driver.run();
    const [first] = await queue.take(1);
    await first!.requeue({ attempts: ['2'] }, 0);
    const [second] = await queue.take(1);
    assert.equal(second!.item.id, 'r1');
    assert.deepEqual(withoutTrace(second!.item.headers), { keep: ['k'], attempts: ['2'], 'x-nats-subject': ['requeue.jobs'] });
    assert.equal(traceOf(second!.item.headers).traceId, traceOf(first!.item.headers).traceId, 'the copy goes on with the trace');
    await second!.ack();
    assert.equal(await streamMessages('requeue'), 1, 'the first message was deleted; the acked copy stays (no delete_after_ack)');
    const stored = await jsm.streams.getMessage('requeue', { seq: 2 });
    assert.match(Buffer.from(stored.data).toString(), /"Queue":"requeue"\}\}$/);
  });

  it('pause gives queued jobs back and stops delivery; resume delivers them on the same consumer', async () => {
    const { driver, queue } = await make('pause', { stream: 'pause', subject: 'pause.jobs', prefetch: 2 });
    for (const id of ['p1', 'p2', 'p3']) await driver.push(job(id, 'pause'));
    await driver.run();
    const [running] = await queue.take(1);
    await waitUntil(
      () => queue.waiting.length === 1,
      10_000,
      () => 'the second prefetched job',
    );
    await driver.pause();
    assert.equal(queue.waiting.length, 0, 'the queued job left the plugin queue');
    assert.equal((await driver.state()).ready, false);
    await assert.rejects(driver.pause(), { message: 'no active listeners, nothing to pause' });
    await running!.ack();
    await sleep(SETTLE_MS);
    assert.equal(queue.waiting.length, 0, 'nothing is delivered while paused');
    await driver.resume();
    await assert.rejects(driver.resume(), { message: 'nats listener is already in the active state' });
    const rest = await consumeAndAck(queue, 2);
    assert.deepEqual(rest.sort(), ['p2', 'p3']);
    await sleep(SETTLE_MS);
    assert.equal(queue.waiting.length, 0, 'the acked job p1 is not delivered again after the resume');
  });

  it('Stat reports the subject, not acked (active) and not delivered (reserved) jobs', async () => {
    const { driver, queue } = await make('stat', { stream: 'stat', subject: 'stat.jobs', prefetch: 2 });
    const idle = await driver.state();
    assert.deepEqual(idle, { pipeline: 'stat', driver: 'nats', queue: 'stat.jobs', active: 0, delayed: 0, reserved: 0, ready: false, priority: 10 });
    for (const id of ['s1', 's2', 's3', 's4', 's5']) await driver.push(job(id, 'stat'));
    await driver.run();
    await waitUntil(
      () => queue.waiting.length === 2,
      10_000,
      () => '2 prefetched jobs',
    );
    await waitUntil(
      async () => {
        const state = await driver.state();
        return state.active === 2 && state.reserved === 3 && state.ready;
      },
      10_000,
      () => 'active 2, reserved 3',
    );
    await consumeAndAck(queue, 5);
    await waitUntil(
      async () => (await driver.state()).active === 0,
      10_000,
      () => 'active 0',
    );
  });

  it('a declared pipeline reads its keys from the string map; a bad key names it', async () => {
    const { driver } = await make('declared', { stream: 'declared', subject: 'declared.jobs', prefetch: 'x', delete_after_ack: 'true' }, { declared: true });
    assert.equal(driver.settings.prefetch, 100);
    assert.equal(driver.settings.deleteAfterAck, true);
    await assert.rejects(
      make('bad', { stream: 'a.b' }, { declared: true }),
      /jobs\.Declare of pipeline bad, key stream: "a\.b" is not a JetStream stream name/,
    );
    await assert.rejects(make('bad2', { prefetch: 'ten' }), /jobs\.pipelines\.bad2\.config\.prefetch: expected a whole number/);
  });

  it('a missing global section, or a server nobody listens on, is an error naming the pipeline', async () => {
    const pipeline: PipelineConfig = { name: 'lonely', driver: 'nats', priority: 10, config: {}, declared: false };
    const context = (globalConfig: Record<string, unknown>): DriverContext => ({
      queue: new TestQueue(),
      log: pino({ level: 'silent' }),
      workDir: os.tmpdir(),
      timeoutMs: 10_000,
      globalConfig,
    });
    await assert.rejects(createNatsDriver(pipeline, context({})), { message: `nats pipeline lonely: ${NO_GLOBAL_TEXT}` });
    const closed = await freePort();
    await assert.rejects(createNatsDriver(pipeline, context({ nats: { addr: `nats://127.0.0.1:${closed}` } })), (err: Error) => {
      assert.match(err.message, new RegExp(`^nats pipeline lonely: cannot connect to nats://127\\.0\\.0\\.1:${closed}: `));
      return true;
    });
  });

  it('stop keeps the stream (unlike RoadRunner, which purges it), and settling afterwards fails with its text', async () => {
    const { driver, queue } = await make('stop', { stream: 'stop', subject: 'stop.jobs' });
    await driver.push(job('x1', 'stop'));
    await driver.push(job('x2', 'stop'));
    await driver.run();
    const [taken] = await queue.take(1);
    await driver.stop();
    await assert.rejects(taken!.ack(), { message: STOPPED_TEXT });
    assert.equal(await streamMessages('stop'), 2);
    const next = await make('stop', { stream: 'stop', subject: 'stop.jobs' });
    await next.driver.run();
    assert.deepEqual((await consumeAndAck(next.queue, 2)).sort(), ['x1', 'x2']);
  });

  it('a job published by RoadRunner (its Item, its headers) runs with them, going on with its trace', async () => {
    const { driver, queue } = await make('from-rr', { stream: 'from-rr', subject: 'from-rr.jobs' });
    const body = encodeItem({ job: 'J', id: 'rr-1', payload: Buffer.from('p'), priority: 0, pipeline: 'other', delaySeconds: 0, autoAck: false, queue: '' });
    const h = natsHeaders();
    h.append('A', '1');
    h.append('Traceparent', `00-${RR_TRACE}-${RR_SPAN}-01`);
    h.append('Uber-Trace-Id', `${RR_TRACE}:${RR_SPAN}:0:1`);
    await raw.jetstream().publish('from-rr.jobs', body, { headers: h });
    await driver.run();
    const [taken] = await queue.take(1);
    assert.equal(taken!.item.priority, 10, 'priority 0 gets the pipeline priority');
    assert.match(
      contextWithoutTrace(taken!.context()),
      /"headers":\{"A":\["1"\],"x-nats-subject":\["from-rr\.jobs"\]\},"pipeline":"from-rr","queue":"from-rr"/,
    );
    const trace = traceOf(taken!.item.headers);
    assert.equal(trace.traceId, RR_TRACE);
    assert.notEqual(trace.spanId, RR_SPAN);
    await taken!.ack();
  });

  it('a consumer deleted from outside is created anew and delivery goes on', async () => {
    const { driver, queue } = await make('lost', { stream: 'lost', subject: 'lost.jobs', delete_after_ack: true });
    await driver.push(job('l1', 'lost'));
    await driver.run();
    assert.deepEqual(await consumeAndAck(queue, 1), ['l1']);
    const names = (await jsm.consumers.list('lost').next()).map((c) => c.name);
    assert.equal(names.length, 1);
    await jsm.consumers.delete('lost', names[0]!);
    await driver.push(job('l2', 'lost'));
    assert.deepEqual(await consumeAndAck(queue, 1), ['l2']);
    const after = (await jsm.consumers.list('lost').next()).map((c) => c.name);
    assert.equal(after.length, 1);
    assert.notEqual(after[0], names[0]);
  });

  it('reconnects when nats-server restarts with its store: pushed jobs are not lost, unacked ones come back', async () => {
    const { driver, queue } = await make('restart', { stream: 'restart', subject: 'restart.jobs', prefetch: 4, delete_after_ack: true });
    const ids = Array.from({ length: 12 }, (_, i) => `r${i}`);
    for (const id of ids.slice(0, 6)) await driver.push(job(id, 'restart'));
    await driver.run();
    const seen = new Set(await consumeAndAck(queue, 3));
    await server.stopServer();
    await server.startServer();
    for (const id of ids.slice(6)) await driver.push(job(id, 'restart'));
    await waitUntil(
      async () => {
        for (const taken of queue.waiting.splice(0)) {
          seen.add(taken.item.id);
          await taken.ack();
        }
        return ids.every((id) => seen.has(id));
      },
      30_000,
      () => `every job (missing ${ids.filter((id) => !seen.has(id)).join(' ')})`,
    );
    await waitUntil(
      async () => (await streamMessages('restart')) === 0,
      10_000,
      () => 'the stream to be empty',
    );
  });
});
