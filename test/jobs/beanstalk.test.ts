// The beanstalk jobs driver against a real beanstalkd started by the test: delivery, acks, nacks, requeues, delays,
// pause/resume, stop, Stat, the body on the tube as RoadRunner writes it, and the redial (docs/jobs-beanstalk.md).
import assert from 'node:assert/strict';
import os from 'node:os';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import type { DeliveredJob, DriverContext, JobItem, PipelineConfig } from '../../src/jobs/driver.js';
import { createBeanstalkDriver, DEDUCED_JOB, STOPPED_TEXT, type BeanstalkDriver } from '../../src/jobs/drivers/beanstalk.js';
import { encodeItem } from '../../src/jobs/drivers/beanstalk/gob.js';
import { BeanstalkConnection, parseStats } from '../../src/jobs/drivers/beanstalk/protocol.js';
import { Beanstalkd } from '../support/beanstalkd.js';
import { TestQueue, waitUntil } from './amqp-harness.js';
import { contextWithoutTrace, traceOf, withoutTrace } from './trace-headers.js';

/** Long enough for a job that beanstalkd would wrongly hand out to arrive; not a bound the test depends on. */
const SETTLE_MS = 1500;

function job(id: string, pipeline: string, extra: Partial<JobItem> = {}): JobItem {
  return { id, job: 'test.Job', payload: Buffer.from(`{"id":"${id}"}`), headers: {}, pipeline, priority: 10, delaySeconds: 0, autoAck: false, ...extra };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A queue with room for `room` jobs: a further insert waits until open(), as when the pipeline is full. */
class FullAfter extends TestQueue {
  blocked = false;
  private opened: (() => void)[] = [];

  constructor(private room: number) {
    super();
  }

  override async insert(job: DeliveredJob): Promise<void> {
    if (this.waiting.length >= this.room) {
      this.blocked = true;
      await new Promise<void>((resolve) => this.opened.push(resolve));
    }
    return super.insert(job);
  }

  open(): void {
    this.room = Number.POSITIVE_INFINITY;
    for (const resolve of this.opened.splice(0)) resolve();
  }
}

describe('beanstalk driver on a real beanstalkd', () => {
  let server: Beanstalkd;
  let raw: BeanstalkConnection;
  const drivers: BeanstalkDriver[] = [];

  async function make(name: string, config: Record<string, unknown>, options: { declared?: boolean; queue?: TestQueue } = {}) {
    const queue = options.queue ?? new TestQueue();
    const pipeline: PipelineConfig = { name, driver: 'beanstalk', priority: 10, config, declared: options.declared ?? false };
    const context: DriverContext = {
      queue,
      log: pino({ level: 'silent' }),
      workDir: os.tmpdir(),
      timeoutMs: 10_000,
      globalConfig: { beanstalk: { addr: server.addr, timeout: '10s' } },
    };
    const driver = (await createBeanstalkDriver(pipeline, context)) as BeanstalkDriver;
    drivers.push(driver);
    return { driver, queue };
  }

  async function tubeStats(tube: string): Promise<Record<string, string>> {
    const reply = await raw.command(`stats-tube ${tube}`, ['OK', 'NOT_FOUND']);
    return reply.words[0] === 'NOT_FOUND' ? {} : parseStats(reply.body);
  }

  before(async () => {
    server = await Beanstalkd.start();
    raw = await BeanstalkConnection.connect('tcp', `127.0.0.1:${server.port}`, 5000);
  });
  after(async () => {
    for (const d of drivers) await d.stop().catch(() => {});
    raw?.close();
    await server?.destroy();
  });

  it('delivers N pushed jobs exactly once when each is acked, and the tube ends empty', async () => {
    const { driver, queue } = await make('n-jobs', { tube: 'n-jobs' });
    await driver.run();
    const ids = Array.from({ length: 50 }, (_, i) => `job-${i}`);
    await Promise.all(ids.map((id) => driver.push(job(id, 'n-jobs'))));
    const seen: string[] = [];
    await waitUntil(
      async () => {
        for (const taken of queue.waiting.splice(0)) {
          seen.push(taken.item.id);
          await taken.ack();
        }
        return seen.length >= ids.length;
      },
      20_000,
      () => `${ids.length} jobs (have ${seen.length})`,
    );
    await sleep(SETTLE_MS);
    assert.equal(queue.waiting.length, 0);
    assert.deepEqual(seen.sort(), [...ids].sort());
    const stats = await tubeStats('n-jobs');
    assert.equal(stats['current-jobs-ready'], '0');
    assert.equal(stats['current-jobs-reserved'], '0');
    assert.equal(stats['total-jobs'], '50');
  });

  it('puts the gob Item RoadRunner puts, and reads one a RoadRunner producer put', async () => {
    const { driver, queue } = await make('wire', { tube: 'wire', tube_priority: 7 });
    const item = job('w-1', 'wire', { headers: { 'x-a': ['1', '2'] }, priority: 3 });
    await driver.push(item);
    await raw.command('use wire', ['USING']);
    const peeked = await raw.command('peek-ready', ['FOUND']);
    const expected = encodeItem({
      job: 'test.Job',
      id: 'w-1',
      payload: item.payload,
      headers: item.headers,
      priority: 3,
      pipeline: 'wire',
      delay: 0,
      autoAck: false,
      queue: '',
    });
    assert.deepEqual(peeked.body, expected);
    const jobStats = parseStats((await raw.command(`stats-job ${peeked.words[1]}`, ['OK'])).body);
    assert.equal(jobStats.pri, '7');
    assert.equal(jobStats.ttr, '10');

    // a Go producer's body (test/jobs/beanstalk-gob.test.ts GO_ITEM), and one that is not gob at all
    const goBody = Buffer.from(
      '47ff81030101044974656d01ff8200010501034a6f62010c0001054964656e74010c0001075061796c6f6164010a0001044864727301ff860001074f7074696f6e7301ff8800000024ff85040101136d61705b737472696e675d5b5d737472696e6701ff8600010c01ff8400000cff83020102ff8400010c00004fff87030101074f7074696f6e7301ff8800010501085072696f726974790104000108506970656c696e65010c00010544656c617901040001074175746f41636b01020001055175657565010c00000035ff8201086170702e50696e67010469642d3101077b226e223a317d010103782d61020131013201011401046265616e010a01010000',
      'hex',
    );
    await raw.command(`put 0 0 60 ${goBody.length}`, ['INSERTED'], goBody);
    await raw.command('put 0 0 60 5', ['INSERTED'], Buffer.from('plain'));
    await driver.run();
    await waitUntil(
      () => queue.waiting.length >= 3,
      10_000,
      () => `3 jobs (have ${queue.waiting.length})`,
    );
    // beanstalkd hands out the lower priority first: the two raw puts (0) before ours (tube_priority 7)
    const [fromGo, plain, ours] = queue.waiting.splice(0);
    assert.equal(
      contextWithoutTrace(ours!.context()),
      '{"id":"w-1","job":"test.Job","driver":"beanstalk","headers":{"x-a":["1","2"]},"queue":"wire","pipeline":"wire"}',
    );
    assert.equal(fromGo!.item.id, 'id-1');
    assert.equal(fromGo!.item.autoAck, true, 'auto_ack came through');
    assert.equal(
      contextWithoutTrace(fromGo!.context()),
      '{"id":"id-1","job":"app.Ping","driver":"beanstalk","headers":{"x-a":["1","2"]},"queue":"wire","pipeline":"bean"}',
    );
    assert.equal(plain!.item.job, DEDUCED_JOB);
    assert.deepEqual(plain!.item.payload, Buffer.from('plain'));
    assert.equal(plain!.item.priority, 10);
    await ours!.ack();
    await fromGo!.ack(); // auto_ack: deleted when reserved, so this is a no-op
    await plain!.ack();
    const stats = await tubeStats('wire');
    assert.equal(stats['current-jobs-ready'], '0');
    assert.equal(stats['current-jobs-reserved'], '0');
  });

  it('settles a job without waiting for the reserve that is blocking on the same connection', async () => {
    // a blocking reserve returns at reserve_timeout, or with DEADLINE_SOON 1 s before a reserved job's ttr (10 s here)
    const ttrMs = 10_000;
    const { driver, queue } = await make('prompt', { tube: 'prompt', reserve_timeout: '30s' });
    await driver.run();
    await driver.push(job('quick', 'prompt'));
    await waitUntil(
      () => queue.waiting.length >= 1,
      10_000,
      () => 'the job',
    );
    await sleep(200); // the loop is back in its reserve by now
    let timer: NodeJS.Timeout | undefined;
    const halfTheTtr = new Promise<string>((resolve) => (timer = setTimeout(() => resolve('still waiting'), ttrMs / 2)));
    const acked = queue.waiting
      .shift()!
      .ack()
      .then(() => 'acked');
    const first = await Promise.race([acked, halfTheTtr]);
    clearTimeout(timer);
    // RoadRunner sends the delete behind a reserve-with-timeout and waits for it to time out
    assert.equal(first, 'acked');
    assert.equal((await tubeStats('prompt'))['current-jobs-reserved'], '0');
  });

  it('delays with beanstalkd, and reports ready, delayed and reserved jobs in Stat', async () => {
    const { driver, queue } = await make('delay', { tube: 'delay' });
    await driver.push(job('d-1', 'delay', { delaySeconds: 2 }));
    await driver.push(job('now-1', 'delay'));
    let state = await driver.state();
    assert.deepEqual(state, { pipeline: 'delay', driver: 'beanstalk', queue: 'delay', active: 1, delayed: 1, reserved: 0, ready: false, priority: 10 });
    await driver.run();
    await waitUntil(
      () => queue.waiting.length >= 1,
      10_000,
      () => 'the undelayed job',
    );
    assert.equal(queue.waiting[0]!.item.id, 'now-1');
    state = await driver.state();
    assert.equal(state.reserved, 1);
    assert.equal(state.ready, true);
    await queue.waiting.shift()!.ack();
    await waitUntil(
      () => queue.waiting.length >= 1,
      10_000,
      () => 'the delayed job',
    );
    const delayed = queue.waiting.shift()!;
    assert.equal(delayed.item.id, 'd-1');
    await delayed.ack();
  });

  it('nack deletes; nack with redelivery and requeue put a copy (merged headers, delay) and delete the original', async () => {
    const { driver, queue } = await make('settle', { tube: 'settle' });
    await driver.run();
    await driver.push(job('dropped', 'settle'));
    await driver.push(job('again', 'settle', { headers: { keep: ['1'], over: ['old'] } }));
    await driver.push(job('renack', 'settle'));
    await waitUntil(
      () => queue.waiting.length >= 3,
      10_000,
      () => '3 jobs',
    );
    const byId = new Map(queue.waiting.splice(0).map((j) => [j.item.id, j]));
    const firstTrace = traceOf(byId.get('again')!.item.headers);
    await byId.get('dropped')!.nack();
    await byId.get('again')!.requeue({ over: ['new'], attempts: ['1'] }, 1);
    await byId.get('renack')!.nackWithOptions(true, 0);
    await waitUntil(
      () => queue.waiting.length >= 2,
      10_000,
      () => 'the two redelivered jobs',
    );
    await sleep(SETTLE_MS);
    const again = queue.waiting.splice(0);
    assert.deepEqual(again.map((j) => j.item.id).sort(), ['again', 'renack'], 'each redelivered once, the nacked one never');
    const requeued = again.find((j) => j.item.id === 'again')!;
    assert.deepEqual(withoutTrace(requeued.item.headers), { keep: ['1'], over: ['new'], attempts: ['1'] });
    const requeuedTrace = traceOf(requeued.item.headers);
    assert.equal(requeuedTrace.traceId, firstTrace.traceId, 'the requeued job goes on with the trace it was delivered in');
    assert.notEqual(requeuedTrace.spanId, firstTrace.spanId);
    for (const j of again) await j.ack();
    const stats = await tubeStats('settle');
    assert.equal(stats['current-jobs-ready'], '0');
    assert.equal(stats['current-jobs-reserved'], '0');
    assert.equal(stats['current-jobs-delayed'], '0');
  });

  it('pause gives queued jobs back to the tube and stops reserving; resume picks them up', async () => {
    const { driver, queue } = await make('pause', { tube: 'pause' });
    await driver.run();
    await driver.push(job('p-1', 'pause'));
    await waitUntil(
      () => queue.waiting.length >= 1,
      10_000,
      () => 'p-1',
    );
    await driver.pause();
    assert.equal(queue.waiting.length, 0, 'the queued job was taken out of the queue');
    await assert.rejects(driver.pause(), /no active listeners, nothing to pause/);
    await driver.push(job('p-2', 'pause'));
    await sleep(SETTLE_MS);
    assert.equal(queue.waiting.length, 0);
    const state = await driver.state();
    assert.equal(state.ready, false);
    assert.equal(state.active, 2, 'both jobs wait as ready in the tube');
    await driver.resume();
    await assert.rejects(driver.resume(), /already in the active state/);
    await waitUntil(
      () => queue.waiting.length >= 2,
      10_000,
      () => 'both jobs after resume',
    );
    for (const j of queue.waiting.splice(0)) await j.ack();
  });

  it('after stop, settling fails with RoadRunner text and beanstalkd hands the job out again', async () => {
    const first = await make('stop', { tube: 'stop' });
    await first.driver.run();
    await first.driver.push(job('s-1', 'stop'));
    await waitUntil(
      () => first.queue.waiting.length >= 1,
      10_000,
      () => 's-1',
    );
    const taken = first.queue.waiting.shift()!;
    await first.driver.stop();
    await assert.rejects(taken.ack(), { message: STOPPED_TEXT });
    const second = await make('stop', { tube: 'stop' });
    await second.driver.run();
    await waitUntil(
      () => second.queue.waiting.length >= 1,
      10_000,
      () => 's-1 again',
    );
    await second.queue.waiting.shift()!.ack();
  });

  it('redials when beanstalkd is killed and restarted; nothing acknowledged is lost, nothing unacknowledged either', async () => {
    const { driver, queue } = await make('redial', { tube: 'redial' });
    await driver.run();
    for (let i = 0; i < 5; i++) await driver.push(job(`r-${i}`, 'redial'));
    await waitUntil(
      () => queue.waiting.length >= 5,
      10_000,
      () => '5 jobs',
    );
    const acked = queue.waiting.splice(0, 2);
    for (const j of acked) await j.ack();
    const unsettled = queue.waiting.splice(0, 2); // r-4 stays in the queue: the lost connection must take it out
    raw.close();
    await server.stopServer('SIGKILL');
    for (const j of unsettled) await assert.rejects(j.ack(), /lost|closed|stopped/);
    const restarting = (async () => {
      await sleep(700);
      await server.startServer();
    })();
    // a push while beanstalkd is down waits for the redial instead of failing
    await driver.push(job('r-late', 'redial'));
    await restarting;
    raw = await BeanstalkConnection.connect('tcp', `127.0.0.1:${server.port}`, 5000);
    const seen: string[] = [];
    await waitUntil(
      async () => {
        for (const j of queue.waiting.splice(0)) {
          seen.push(j.item.id);
          await j.ack();
        }
        return seen.length >= 4;
      },
      20_000,
      () => `the 3 unacknowledged jobs and r-late (have ${seen.join(', ')})`,
    );
    await sleep(SETTLE_MS);
    for (const j of queue.waiting.splice(0)) seen.push(j.item.id);
    assert.deepEqual(seen.sort(), ['r-2', 'r-3', 'r-4', 'r-late']);
  });

  it('takes the jobs reserved on a lost connection out of the queue at once, also while waiting for room in it', async () => {
    const queue = new FullAfter(2);
    const { driver } = await make('lost', { tube: 'lost' }, { queue });
    await driver.run();
    for (let i = 0; i < 3; i++) await driver.push(job(`l-${i}`, 'lost'));
    // two jobs wait in the queue; the third's insert waits for room, so the driver's loop does not dial again
    await waitUntil(
      () => queue.waiting.length === 2 && queue.blocked,
      10_000,
      () => `2 queued jobs and a third waiting (have ${queue.waiting.length})`,
    );
    raw.close();
    await server.stopServer('SIGKILL');
    await waitUntil(
      () => queue.waiting.length === 0,
      5_000,
      () => `the queue to drop the jobs of the lost connection (still ${queue.waiting.map((j) => j.item.id).join(', ')})`,
    );
    queue.open();
    await driver.stop();
    await server.startServer();
    raw = await BeanstalkConnection.connect('tcp', `127.0.0.1:${server.port}`, 5000);
  });

  it('fails construction with the address when beanstalkd is not there', async () => {
    const pipeline: PipelineConfig = { name: 'nowhere', driver: 'beanstalk', priority: 10, config: {}, declared: false };
    const context: DriverContext = {
      queue: new TestQueue(),
      log: pino({ level: 'silent' }),
      workDir: os.tmpdir(),
      timeoutMs: 2000,
      globalConfig: { beanstalk: { addr: 'tcp://127.0.0.1:1', timeout: '1s' } },
    };
    await assert.rejects(
      createBeanstalkDriver(pipeline, context),
      /beanstalk pipeline nowhere: cannot connect to tcp:\/\/127\.0\.0\.1:1: dial tcp 127\.0\.0\.1:1: .*ECONNREFUSED/,
    );
  });
});
