// The boltdb driver against a real file in a temp folder, through a small JobQueue in place of the jobs plugin:
// exactly-once delivery with acks, what survives a close and reopen, delays, prefetch, pause/resume, nack and
// requeue semantics (headers kept), the context JSON, the config keys, and a torn or foreign file.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { ConfigError } from '../../src/errors.js';
import type { DeliveredJob } from '../../src/jobs/driver.js';
import { openBoltdbDriver } from '../../src/jobs/drivers/boltdb.js';
import { ids, jobItem, openDriver, pipelineConfig, testContext, TestQueue } from './boltdb-helpers.js';
import { tempDir } from './boltdb-tmp.js';
import { contextWithoutTrace, traceOf, withoutTrace } from './trace-headers.js';

/** Lets the driver's pump (promise continuations only, no timers) run to its end. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await nextTurn();
}

describe('boltdb: delivery', () => {
  test('N pushed jobs reach the queue exactly once, and acked ones are gone after a reopen', async () => {
    const dir = tempDir();
    const { driver, queue } = await openDriver(dir, { config: { prefetch: 10_000 } });
    const n = 500;
    await Promise.all(Array.from({ length: n }, (_, i) => driver.push(jobItem('disk', i))));
    assert.deepEqual(await driver.state(), {
      pipeline: 'disk',
      driver: 'boltdb',
      queue: 'push',
      active: n,
      delayed: 0,
      reserved: 0,
      ready: false,
      priority: 10,
    });
    await driver.run();
    const taken = await queue.takeN(n);
    await settle();
    assert.equal(queue.jobs.length, 0, 'no job is delivered twice');
    assert.equal(new Set(ids(taken)).size, n);
    assert.deepEqual(
      taken.map((job) => JSON.parse(job.item.payload.toString()).n).sort((a: number, b: number) => a - b),
      Array.from({ length: n }, (_, i) => i),
    );
    await Promise.all(taken.map((job) => job.ack()));
    assert.equal((await driver.state()).active, 0);
    await driver.stop();

    const again = await openDriver(dir);
    await again.driver.run();
    await settle();
    assert.equal(again.queue.jobs.length, 0);
    assert.equal((await again.driver.state()).active, 0);
    await again.driver.stop();
  });

  test('jobs come out in push order, with the pipeline name and their priority', async () => {
    const dir = tempDir();
    const { driver, queue } = await openDriver(dir);
    for (let i = 0; i < 20; i++) await driver.push(jobItem('disk', i, { priority: i === 3 ? 1 : 10 }));
    await driver.run();
    const taken = await queue.takeN(20);
    assert.deepEqual(
      ids(taken),
      Array.from({ length: 20 }, (_, i) => `id-${i}`),
    );
    assert.equal(taken[3]!.item.priority, 1);
    assert.equal(taken[0]!.item.pipeline, 'disk');
    await driver.stop();
  });

  test('un-acked jobs survive a close, with payload, headers and options', async () => {
    const dir = tempDir();
    const first = await openDriver(dir);
    const payload = Buffer.from([0, 1, 2, 255, 254, 0x0a]);
    await first.driver.push(jobItem('disk', 1, { payload, headers: { 'x-a': ['1', '2'], 'X-B': [] }, priority: 4, autoAck: true }));
    await first.driver.push(jobItem('disk', 2));
    await first.driver.stop();

    const second = await openDriver(dir);
    assert.equal((await second.driver.state()).active, 2);
    await second.driver.run();
    const [one, two] = await second.queue.takeN(2);
    assert.ok(one && two);
    assert.equal(one.item.id, 'id-1');
    assert.deepEqual(one.item.payload, payload);
    assert.deepEqual(withoutTrace(one.item.headers), { 'x-a': ['1', '2'], 'X-B': [] });
    assert.equal(one.item.priority, 4);
    assert.equal(one.item.autoAck, true);
    assert.equal(two.item.id, 'id-2');
    await second.driver.stop();
  });

  test('jobs of several MiB read back whole, between small ones', async () => {
    const dir = tempDir();
    const first = await openDriver(dir);
    const big = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    await first.driver.push(jobItem('disk', 0));
    await first.driver.push(jobItem('disk', 1, { payload: big }));
    await first.driver.push(jobItem('disk', 2, { payload: big.subarray(0, 1024 * 1024 - 3) }));
    await first.driver.push(jobItem('disk', 3));
    await first.driver.stop();
    const second = await openDriver(dir);
    await second.driver.run();
    const jobs = await second.queue.takeN(4);
    assert.deepEqual(ids(jobs), ['id-0', 'id-1', 'id-2', 'id-3']);
    assert.ok(jobs[1]!.item.payload.equals(big));
    assert.ok(jobs[2]!.item.payload.equals(big.subarray(0, 1024 * 1024 - 3)));
    assert.equal(second.context.records.length, 0, 'nothing cut off');
    await second.driver.stop();
  });

  test('jobs taken and not acked when the pipeline stopped go back to push on the next open', async () => {
    const dir = tempDir();
    const first = await openDriver(dir);
    for (let i = 0; i < 5; i++) await first.driver.push(jobItem('disk', i));
    await first.driver.run();
    const taken = await first.queue.takeN(5);
    await taken[0]!.ack();
    await taken[2]!.ack();
    await first.driver.stop();
    // the workers' answers after the stop fail, as RoadRunner's do
    await assert.rejects(taken[1]!.ack(), /failed to acknowledge the JOB, the pipeline is probably stopped/);

    const second = await openDriver(dir);
    await second.driver.run();
    const again = await second.queue.takeN(3);
    assert.deepEqual(ids(again), ['id-1', 'id-3', 'id-4']);
    await settle();
    assert.equal(second.queue.jobs.length, 0);
    await second.driver.stop();
  });

  test('the context JSON is boltjobs Item.Context: field order, queue "push", sorted headers, Go escapes', async () => {
    const dir = tempDir();
    const { driver, queue } = await openDriver(dir, { name: 'acc-main' });
    await driver.push(jobItem('acc-main', 1, { id: 'id-1', job: 'acc.Ping', payload: Buffer.from('{"n":1}') }));
    await driver.push(jobItem('acc-main', 2, { id: 'id-2', job: 'a<b>&c', headers: { b: ['2'], B: ['1'], '10': ['x'], '9': ['y'] } }));
    await driver.run();
    const [plain, fancy] = await queue.takeN(2);
    // docs/jobs.md §2.6 vector J3 (context part) has "headers":null, Go's nil map; a delivered job always carries
    // the tracing headers, as on RoadRunner
    assert.equal(contextWithoutTrace(plain!.context()), '{"id":"id-1","job":"acc.Ping","driver":"boltdb","headers":{},"queue":"push","pipeline":"acc-main"}');
    assert.equal(
      contextWithoutTrace(fancy!.context()),
      '{"id":"id-2","job":"a\\u003cb\\u003e\\u0026c","driver":"boltdb","headers":{"10":["x"],"9":["y"],"B":["1"],"b":["2"]},"queue":"push","pipeline":"acc-main"}',
    );
    await driver.stop();
  });
});

describe('boltdb: acknowledgements', () => {
  test('nack and nack without redelivery both redeliver (RoadRunner boltdb semantics)', async () => {
    const dir = tempDir();
    const { driver, queue } = await openDriver(dir);
    await driver.push(jobItem('disk', 1));
    await driver.run();
    const [first] = await queue.takeN(1);
    await first!.nack();
    const [second] = await queue.takeN(1);
    assert.equal(second!.item.id, 'id-1');
    await second!.nackWithOptions(false, 0);
    const [third] = await queue.takeN(1);
    assert.equal(third!.item.id, 'id-1');
    await assert.rejects(second!.ack(), /already acknowledged/);
    await third!.ack();
    await settle();
    assert.equal(queue.jobs.length, 0);
    assert.equal((await driver.state()).active, 0);
    await driver.stop();
  });

  test('requeue merges headers (sent names replace) and keeps the pushed ones, also across a reopen', async () => {
    const dir = tempDir();
    const first = await openDriver(dir);
    await first.driver.push(jobItem('disk', 1, { headers: { 'x-a': ['1'], attempts: ['1'] } }));
    await first.driver.run();
    const [job] = await first.queue.takeN(1);
    assert.deepEqual(withoutTrace(job!.item.headers), { 'x-a': ['1'], attempts: ['1'] });
    const { traceId } = traceOf(job!.item.headers);
    await job!.requeue({ attempts: ['2'], 'x-new': ['n'] }, 0);
    const [requeued] = await first.queue.takeN(1);
    assert.equal(requeued!.item.id, 'id-1');
    assert.deepEqual(withoutTrace(requeued!.item.headers), { 'x-a': ['1'], attempts: ['2'], 'x-new': ['n'] });
    assert.equal(traceOf(requeued!.item.headers).traceId, traceId, 'the requeued job goes on with its trace');
    assert.match(contextWithoutTrace(requeued!.context()), /"headers":\{"attempts":\["2"\],"x-a":\["1"\],"x-new":\["n"\]\}/);
    await first.driver.stop();

    const second = await openDriver(dir);
    await second.driver.run();
    const [reopened] = await second.queue.takeN(1);
    assert.deepEqual(withoutTrace(reopened!.item.headers), { 'x-a': ['1'], attempts: ['2'], 'x-new': ['n'] });
    assert.equal(traceOf(reopened!.item.headers).traceId, traceId, 'the trace is stored with the job');
    await second.driver.stop();
  });

  test('auto_ack jobs are forgotten when taken; a nack does not bring them back, a requeue does', async () => {
    const dir = tempDir();
    const first = await openDriver(dir);
    await first.driver.push(jobItem('disk', 1, { autoAck: true }));
    await first.driver.push(jobItem('disk', 2, { autoAck: true }));
    await first.driver.run();
    const [one, two] = await first.queue.takeN(2);
    await one!.nack();
    await two!.requeue({ again: ['1'] }, 0);
    await first.queue.waitFor(1);
    assert.deepEqual(ids(first.queue.jobs), ['id-2']);
    await first.driver.stop();

    // id-2 was taken again (and so forgotten again) but never left the queue for a worker before the stop: kept
    const second = await openDriver(dir);
    await second.driver.run();
    const left = await second.queue.takeN(1);
    assert.deepEqual(ids(left), ['id-2']);
    await second.driver.stop();
  });
});

describe('boltdb: delays', () => {
  test('a delayed job waits its delay counted in milliseconds; two in the same second both run', async () => {
    const dir = tempDir();
    const { driver, queue } = await openDriver(dir);
    await driver.run();
    const pushedAt = Date.now();
    await driver.push(jobItem('disk', 1, { delaySeconds: 1 }));
    await driver.push(jobItem('disk', 2, { delaySeconds: 1 }));
    await driver.push(jobItem('disk', 3));
    const [now] = await queue.takeN(1);
    assert.equal(now!.item.id, 'id-3');
    const state = await driver.state();
    assert.equal(state.delayed, 2);
    assert.equal(state.active, 1);
    const later = await queue.takeN(2, 10_000);
    const arrivedAt = Date.now();
    assert.deepEqual(ids(later).sort(), ['id-1', 'id-2']);
    assert.ok(arrivedAt - pushedAt >= 1000, `delivered after ${arrivedAt - pushedAt} ms, before its 1 s delay`);
    assert.equal((await driver.state()).delayed, 0);
    await driver.stop();
  });

  test('delays survive a reopen, two due in the same second included, and still end when they were due', async () => {
    const dir = tempDir();
    const first = await openDriver(dir);
    const pushedAt = Date.now();
    await first.driver.push(jobItem('disk', 1, { delaySeconds: 2 }));
    await first.driver.push(jobItem('disk', 2, { delaySeconds: 2 }));
    await first.driver.stop();
    const second = await openDriver(dir);
    assert.equal((await second.driver.state()).delayed, 2);
    await second.driver.run();
    const jobs = await second.queue.takeN(2, 10_000);
    assert.deepEqual(ids(jobs).sort(), ['id-1', 'id-2']);
    assert.ok(Date.now() - pushedAt >= 2000);
    await second.driver.stop();
  });

  test('requeue and nack with redelivery wait their delay', async () => {
    const dir = tempDir();
    const { driver, queue } = await openDriver(dir);
    await driver.push(jobItem('disk', 1));
    await driver.run();
    const [job] = await queue.takeN(1);
    const requeuedAt = Date.now();
    await job!.nackWithOptions(true, 1);
    assert.equal((await driver.state()).delayed, 1);
    const [again] = await queue.takeN(1, 10_000);
    assert.ok(Date.now() - requeuedAt >= 1000);
    assert.equal(again!.item.id, 'id-1');
    await driver.stop();
  });
});

describe('boltdb: prefetch, pause and resume', () => {
  test('prefetch bounds the jobs taken and not settled; every ack lets the next one in', async () => {
    const dir = tempDir();
    const { driver, queue } = await openDriver(dir, { config: { prefetch: 3 } });
    for (let i = 0; i < 10; i++) await driver.push(jobItem('disk', i));
    await driver.run();
    await queue.waitFor(3);
    await settle();
    assert.equal(queue.jobs.length, 3);
    const first = queue.take()!;
    await settle();
    assert.equal(queue.jobs.length, 2, 'a job a worker is running still counts');
    await first.ack();
    await queue.waitFor(3);
    await settle();
    assert.equal(queue.jobs.length, 3);
    assert.equal((await driver.state()).active, 9);
    await driver.stop();
  });

  test('without a prefetch limit in the way, a backlog moves into the queue at once (not one per 500 ms)', async () => {
    const dir = tempDir();
    const { driver, queue } = await openDriver(dir);
    for (let i = 0; i < 200; i++) await driver.push(jobItem('disk', i));
    await driver.run();
    await settle();
    assert.equal(queue.jobs.length, 200);
    await driver.stop();
  });

  test('pause takes the pipeline\u2019s jobs out of the queue, resume puts them back first in line', async () => {
    const dir = tempDir();
    const { driver, queue } = await openDriver(dir, { config: { prefetch: 4 } });
    for (let i = 0; i < 6; i++) await driver.push(jobItem('disk', i));
    await driver.run();
    await queue.waitFor(4);
    const running = queue.take()!;
    await driver.pause();
    assert.equal(queue.jobs.length, 0);
    assert.deepEqual(await driver.state(), {
      pipeline: 'disk',
      driver: 'boltdb',
      queue: 'push',
      active: 6,
      delayed: 0,
      reserved: 0,
      ready: false,
      priority: 10,
    });
    await assert.rejects(driver.pause(), /^JobsDriverError: no active listeners, nothing to pause$/);
    // the job a worker was running is settled as usual
    await running.ack();
    await driver.push(jobItem('disk', 6));
    await settle();
    assert.equal(queue.jobs.length, 0, 'a paused pipeline takes nothing');
    await driver.resume();
    await assert.rejects(driver.resume(), /boltdb listener is already in the active state/);
    const taken = await queue.takeN(4);
    assert.deepEqual(ids(taken), ['id-1', 'id-2', 'id-3', 'id-4']);
    await driver.stop();
  });

  test('pause while the queue is full: the job waiting to get in is taken back too', async () => {
    const dir = tempDir();
    const queue = new TestQueue(2);
    const { driver } = await openDriver(dir, { queue });
    for (let i = 0; i < 5; i++) await driver.push(jobItem('disk', i));
    await driver.run();
    await queue.waitFor(2);
    await driver.pause();
    // pause made room: the blocked insert lands, and the driver takes it back
    await settle();
    assert.equal(queue.jobs.length, 0);
    assert.equal((await driver.state()).active, 5);
    await driver.resume();
    const taken = await queue.takeN(5);
    assert.deepEqual(ids(taken), ['id-0', 'id-1', 'id-2', 'id-3', 'id-4']);
    await driver.stop();
  });
});

describe('boltdb: the file', () => {
  test('file defaults to rr.db in the config file\u2019s directory; permissions are the number the loader read', async () => {
    const dir = tempDir();
    const umask = process.umask();
    const { driver } = await openDriver(dir, { config: { permissions: 0o755 } });
    await driver.stop();
    assert.ok(existsSync(join(dir, 'rr.db')));
    assert.equal(statSync(join(dir, 'rr.db')).mode & 0o777, 0o755 & ~umask);

    const other = await openDriver(dir, { config: { file: 'sub.db', permissions: 0o640 } });
    await other.driver.stop();
    assert.equal(statSync(join(dir, 'sub.db')).mode & 0o777, 0o640 & ~umask);
  });

  test('Declare: permissions are an octal string; the SDK\u2019s decimal "493" gets RoadRunner\u2019s warning and 0755', async () => {
    const dir = tempDir();
    const umask = process.umask();
    const declared = await openDriver(dir, { declared: true, config: { file: 'a.db', permissions: '0600', prefetch: '5' } });
    assert.equal(declared.driver.options.prefetch, 5);
    await declared.driver.stop();
    assert.equal(statSync(join(dir, 'a.db')).mode & 0o777, 0o600 & ~umask);

    const sdk = await openDriver(dir, { declared: true, config: { file: 'b.db', permissions: '493' } });
    await sdk.driver.stop();
    assert.equal(statSync(join(dir, 'b.db')).mode & 0o777, 0o755 & ~umask);
    assert.ok(sdk.context.records.some((r) => r.msg === 'failed to parse permissions, fallback to default 0755 (provided: 493)' && r.pipeline === 'disk'));
  });

  test('a bad key is a ConfigError naming the pipeline and the key', async () => {
    const dir = tempDir();
    const queue = new TestQueue();
    await assert.rejects(openBoltdbDriver(pipelineConfig('disk', { prefetch: 'many' }), testContext(queue, dir)), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /key 'jobs\.pipelines\.disk\.config\.prefetch'.*expected a whole number/);
      return true;
    });
    await assert.rejects(
      openBoltdbDriver(pipelineConfig('disk', { permissions: 'rwx' }), testContext(queue, dir)),
      /jobs\.pipelines\.disk\.config\.permissions/,
    );
    await assert.rejects(
      openBoltdbDriver(pipelineConfig('dyn', { prefetch: '-1' }, true), testContext(queue, dir)),
      /jobs\.Declare of pipeline 'dyn', key 'prefetch'/,
    );
    await assert.rejects(
      openBoltdbDriver(pipelineConfig('disk', { file: 'no/such/folder/rr.db' }), testContext(queue, dir)),
      /^JournalError: boltdb pipeline 'disk': cannot create .*no\/such\/folder\/rr\.db\.lock: the folder .*no\/such\/folder does not exist$/,
    );
  });

  test('a file that is not a journal (a bbolt file) is refused, naming it', async () => {
    const dir = tempDir();
    const file = join(dir, 'rr.db');
    // a bbolt meta page starts with a page header; its magic is 0xED0CDAED
    const bbolt = Buffer.alloc(4096);
    bbolt.writeUInt32LE(0xed0cdaed, 16);
    writeFileSync(file, bbolt);
    await assert.rejects(openDriver(dir), (error: Error) => {
      assert.match(error.message, /boltdb pipeline 'disk': .*rr\.db is not an rrts jobs journal/);
      return true;
    });
    // the lock was given back: a correct file opens after the bad one
    writeFileSync(file, '');
    const { driver } = await openDriver(dir);
    await driver.stop();
  });

  test('a record torn at the end by a crash is cut off (and kept aside); later pushes survive', async () => {
    const dir = tempDir();
    const file = join(dir, 'rr.db');
    const first = await openDriver(dir);
    for (let i = 0; i < 3; i++) await first.driver.push(jobItem('disk', i, { payload: Buffer.alloc(1000, i) }));
    await first.driver.stop();
    const whole = readFileSync(file);
    // the head of a fourth record and half its body, as a kill in the middle of write() leaves it
    const torn = Buffer.alloc(8 + 600, 7);
    torn.writeUInt32LE(1100, 0);
    appendFileSync(file, torn);

    const second = await openDriver(dir);
    assert.equal((await second.driver.state()).active, 3);
    assert.equal(statSync(file).size, whole.length);
    assert.deepEqual(readFileSync(`${file}.torn`), torn);
    const warning = second.context.records.find((r) => r.bytes === torn.length);
    assert.ok(warning, 'the cut is logged with its size');
    await second.driver.push(jobItem('disk', 3));
    await second.driver.stop();

    const third = await openDriver(dir);
    await third.driver.run();
    const jobs = await third.queue.takeN(4);
    assert.deepEqual(ids(jobs), ['id-0', 'id-1', 'id-2', 'id-3']);
    assert.deepEqual(jobs[1]!.item.payload, Buffer.alloc(1000, 1));
    await third.driver.stop();
  });

  test('a flipped bit in the last record fails its CRC and only that record is dropped', async () => {
    const dir = tempDir();
    const file = join(dir, 'rr.db');
    const first = await openDriver(dir);
    for (let i = 0; i < 3; i++) await first.driver.push(jobItem('disk', i, { payload: Buffer.alloc(100, i) }));
    await first.driver.stop();
    const bytes = readFileSync(file);
    bytes[bytes.length - 10]! ^= 0x01;
    writeFileSync(file, bytes);
    const second = await openDriver(dir);
    await second.driver.run();
    const jobs = await second.queue.takeN(2);
    await settle();
    assert.equal(second.queue.jobs.length, 0);
    assert.deepEqual(ids(jobs), ['id-0', 'id-1']);
    await second.driver.stop();
  });

  test('compaction keeps the file near the size of the live jobs, and keeps them', async () => {
    const dir = tempDir();
    const file = join(dir, 'rr.db');
    const tuning = { compactMinBytes: 64 * 1024 };
    const { driver, queue } = await openDriver(dir, { tuning });
    await driver.run();
    // 5 jobs stay, 2000 go through push + ack (about 2 MB of records)
    for (let i = 0; i < 5; i++) await driver.push(jobItem('disk', i, { id: `keep-${i}`, payload: Buffer.alloc(1000, i) }));
    const kept: DeliveredJob[] = await queue.takeN(5);
    for (let round = 0; round < 20; round++) {
      await Promise.all(Array.from({ length: 100 }, (_, i) => driver.push(jobItem('disk', i, { id: `churn-${round}-${i}`, payload: Buffer.alloc(1000) }))));
      const churn = await queue.takeN(100);
      await Promise.all(churn.map((job) => job.ack()));
    }
    assert.ok(statSync(file).size < 200 * 1024, `file is ${statSync(file).size} bytes after compaction`);
    assert.ok(kept.length === 5);
    await driver.stop();

    const again = await openDriver(dir, { tuning });
    await again.driver.run();
    const jobs = await again.queue.takeN(5);
    assert.deepEqual(ids(jobs), ['keep-0', 'keep-1', 'keep-2', 'keep-3', 'keep-4']);
    assert.deepEqual(jobs[4]!.item.payload, Buffer.alloc(1000, 4));
    await settle();
    assert.equal(again.queue.jobs.length, 0);
    await again.driver.stop();
  });
});
