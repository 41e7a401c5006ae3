// The amqp driver end to end: `rrts serve` with PHP consumers, the PHP producer speaking protobuf RPC, and a private
// RabbitMQ (test/support/rabbitmq.ts): exactly-once delivery with acks, crashes with and without requeue_on_fail,
// delays through dead-letter queues, priorities, pause/resume, jobs.Declare/Destroy, a broker restart mid-run, and
// a graceful stop with a job in flight.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { RabbitMq } from '../support/rabbitmq.js';
import { Inspector } from '../jobs/amqp-harness.js';
import { alive, killQuietly, MODES, sleep, type Mode } from './harness.js';
import { countIds, PRODUCER, startJobs, type Delivery, type JobsServer } from './jobs-harness.js';
import { traceOf } from '../jobs/trace-headers.js';

const run = promisify(execFile);

let broker: RabbitMq;
let inspector: Inspector;
const servers: JobsServer[] = [];

before(async () => {
  broker = await RabbitMq.start();
  inspector = await Inspector.open(broker);
});
after(async () => {
  for (const s of servers) await s.stop();
  await inspector?.close();
  await broker?.destroy();
});

/** An amqp pipeline with a queue, routing key and exchange of its own, so tests sharing the broker do not meet. */
function rabbit(name: string, config: Record<string, unknown> = {}): Record<string, unknown> {
  return { driver: 'amqp', config: { queue: `e2e-${name}`, routing_key: `e2e-${name}`, exchange: `e2e-${name}-x`, prefetch: 10, ...config } };
}

async function serve(jobs: Record<string, unknown>, options: { workers?: number; mode?: Mode; extra?: Record<string, unknown> } = {}): Promise<JobsServer> {
  const server = await startJobs(options.mode ?? 'exec', jobs, { amqp: { addr: broker.url }, ...options.extra }, options.workers ?? 2);
  servers.push(server);
  return server;
}

async function stopServer(s: JobsServer): Promise<void> {
  servers.splice(servers.indexOf(s), 1);
  await s.stop();
}

/** Bounded wait for a condition checked over RPC or on the broker. */
async function until(condition: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** One worker for pollers that hold jobs while a blocked one runs: they wait for it longer than the harness's 20 s. */
const SLOW_POOL = { num_workers: 1, allocate_timeout: '120s' };

const ids = (deliveries: Delivery[]): string[] => deliveries.map((d) => d.id);

describe('amqp through rrts serve, PHP workers and a real RabbitMQ', () => {
  test('N jobs pushed over RPC one by one and in a batch are each delivered and acked exactly once', async () => {
    const s = await serve({ pipelines: { rabbit: rabbit('once') }, consume: ['rabbit'] }, { workers: 3 });
    assert.deepEqual(await s.produce('push', 'rabbit', '60', JSON.stringify({ prefix: 'one' })), { pushed: 60 });
    assert.deepEqual(await s.produce('batch', 'rabbit', '60', JSON.stringify({ prefix: 'batch', headers: { 'x-a': ['1'] } })), { pushed: 60 });
    const done = await s.waitForDone(120);
    const starts = countIds(s.started());
    assert.equal(starts.size, 120);
    assert.ok(
      [...starts.values()].every((n) => n === 1),
      'no job delivered twice',
    );
    assert.equal(countIds(done).size, 120);
    const batchJob = s.started().find((d) => d.id === 'batch-7')!;
    assert.deepEqual([batchJob.pipeline, batchJob.headers?.['x-a'], batchJob.headers?.rr_id, batchJob.mode], ['rabbit', ['1'], ['batch-7'], 'jobs']);
    // the tracing headers: the push's span travels in rr_headers, the delivery goes on with its trace
    assert.equal(traceOf(batchJob.headers).traceId, traceOf(JSON.parse(batchJob.headers!.rr_headers![0]!) as Record<string, string[]>).traceId);
    // an unacked job would be back in the queue once rrts's connection is gone
    await stopServer(s);
    assert.equal(await inspector.ready('e2e-once'), 0, 'every job was acked');
  });

  test('a crashed or failed worker: redelivered with requeue_on_fail, dropped without (as RoadRunner); Worker::stop() runs it again', async () => {
    const s = await serve({
      pipelines: { requeue: rabbit('requeue', { requeue_on_fail: true }), drop: rabbit('drop') },
      consume: ['requeue', 'drop'],
    });
    for (const pipeline of ['requeue', 'drop']) {
      for (const act of ['crash-once', 'error-once']) {
        await s.produce('push', pipeline, '2', JSON.stringify({ prefix: `${pipeline}-${act}`, payload: { act } }));
      }
    }
    await s.produce('push', 'drop', '2', JSON.stringify({ prefix: 'drop-stop-once', payload: { act: 'stop-once' } }));
    // requeue: 4 jobs done after a second delivery; drop: the 2 stopped ones done on another worker
    await s.waitForDone(6);
    await s.rrts.waitFor(() => s.started().length >= 16, `16 starts (have ${s.started().length})`, 30_000);
    const starts = Object.fromEntries(countIds(s.started()));
    const done = Object.fromEntries(countIds(s.done()));
    for (const act of ['crash-once', 'error-once']) {
      for (const n of [0, 1]) {
        assert.equal(starts[`requeue-${act}-${n}`], 2, `requeue-${act}-${n} delivered again`);
        assert.equal(done[`requeue-${act}-${n}`], 1);
        assert.equal(starts[`drop-${act}-${n}`], 1, `drop-${act}-${n} nacked without requeue`);
        assert.equal(done[`drop-${act}-${n}`], undefined);
      }
    }
    for (const n of [0, 1]) assert.deepEqual([starts[`drop-stop-once-${n}`], done[`drop-stop-once-${n}`]], [2, 1]);
    await stopServer(s);
    assert.equal(await inspector.ready('e2e-requeue'), 0);
    assert.equal(await inspector.ready('e2e-drop'), 0, 'the dropped jobs are gone, not waiting unacked');
  });

  test('delays go through the dead-letter delay queue and come back once; nack with a delay takes the same way', async () => {
    const s = await serve({ pipelines: { later: rabbit('later') }, consume: ['later'] });
    const pushedAt = process.hrtime.bigint();
    // blocking until released, so they cannot be settled (and uncounted) before the stat below
    await s.produce('push', 'later', '2', JSON.stringify({ prefix: 'later', delay: 2, payload: { act: 'block', name: 'later' } }));
    assert.equal((await s.stat('later'))!.delayed, 2);
    fs.writeFileSync(path.join(s.dir, 'release-later'), '');
    await s.produce('push', 'later', '1', JSON.stringify({ prefix: 'again', payload: { act: 'nack-redeliver-once', delay: 1 } }));
    await s.produce('push', 'later', '1', JSON.stringify({ prefix: 'now' }));
    // the consumer logs "done" after every answer, the nack too: 5 answers for 4 jobs
    const done = await s.waitForDone(5);
    assert.deepEqual([...countIds(done).keys()].sort(), ['again-0', 'later-0', 'later-1', 'now-0']);
    assert.equal((await s.stat('later'))!.delayed, 0);
    for (const d of s.started().filter((d) => d.id.startsWith('later-'))) {
      // RabbitMQ moves a message on at its TTL, never before (hrtime is CLOCK_MONOTONIC in PHP and Node)
      const waitedMs = Number((BigInt((d as Delivery & { t: number }).t) - pushedAt) / 1_000_000n);
      assert.ok(waitedMs >= 1900, `${d.id} started ${waitedMs} ms after its push`);
      assert.deepEqual(d.headers?.['x-first-death-queue'], ['delayed-2000.e2e-later-x.e2e-later']);
      assert.deepEqual(d.headers?.['x-first-death-reason'], ['expired']);
    }
    const again = s.started().filter((d) => d.id === 'again-0');
    assert.equal(again.length, 2);
    assert.equal(again[0]!.headers?.['x-first-death-queue'], undefined);
    assert.deepEqual(again[1]!.headers?.['x-first-death-queue'], ['delayed-1000.e2e-later-x.e2e-later']);
  });

  test('priorities: once the pollers hold their jobs, lower numbers come first and equal ones in push order', async () => {
    // one worker, 3 pollers: the first three deliveries go to the waiting pollers and block until released
    // the blocked pollers wait for the one worker: a generous allocate_timeout, so a slow machine does not nack them
    const s = await serve({ pool: SLOW_POOL, pipelines: { prio: rabbit('prio', { prefetch: 100 }) } }, { workers: 1 });
    await s.produce('push', 'prio', '3', JSON.stringify({ prefix: 'block', priority: 9, payload: { act: 'block', name: 'prio' } }));
    const pushes: Array<[string, number]> = [];
    for (let i = 0; i < 12; i++) pushes.push([`p${i}`, [5, 1, 3][i % 3]!]);
    for (const [id, priority] of pushes) await s.produce('push', 'prio', '1', JSON.stringify({ prefix: id, priority }));
    assert.deepEqual((await s.stat('prio'))!.active, 15);
    assert.equal(await s.produce('resume', 'prio'), 'ok');
    await s.rrts.waitFor(() => s.started().length === 1, 'the first blocking job to start');
    // every job left the broker for rrts's priority queue (prefetch 100)
    await until(async () => (await s.stat('prio'))!.active === 0, 'the broker queue to be empty');
    fs.writeFileSync(path.join(s.dir, 'release-prio'), '');
    const order = ids(await s.waitForDone(15));
    assert.deepEqual(order.slice(0, 3).sort(), ['block-0', 'block-1', 'block-2']);
    assert.deepEqual(
      order.slice(3),
      [1, 3, 5].flatMap((p) => pushes.filter(([, q]) => q === p).map(([id]) => `${id}-0`)),
    );
  });

  test('pause and resume at run time; jobs.Declare as the SDK sends it, push before resume, destroy deletes the queue', async () => {
    const s = await serve({ pipelines: { pr: rabbit('pr') }, consume: ['pr'] });
    assert.equal(await s.produce('pause', 'pr'), 'ok');
    assert.deepEqual(await s.produce('pause', 'pr'), { error: 'no active listeners, nothing to pause' });
    await s.produce('push', 'pr', '3', JSON.stringify({ prefix: 'paused' }));
    assert.deepEqual(await s.stat('pr'), { pipeline: 'pr', driver: 'amqp', queue: 'e2e-pr', active: 3, delayed: 0, reserved: 0, ready: false, priority: 10 });
    assert.equal(s.started().length, 0);
    assert.equal(await s.produce('resume', 'pr'), 'ok');
    assert.deepEqual(await s.produce('resume', 'pr'), { error: 'amqp listener is already in the active state' });
    assert.deepEqual(ids(await s.waitForDone(3)).sort(), ['paused-0', 'paused-1', 'paused-2']);

    // AMQPCreateInfo('dyn', queue: 'e2e-dyn', exchange: 'e2e-dyn-x', routingKey: 'e2e-dyn', deleteQueueOnStop: true)
    const declare = [
      'name=dyn',
      'driver=amqp',
      'priority=10',
      'prefetch=100',
      'queue=e2e-dyn',
      'queue_auto_delete=false',
      'exchange=e2e-dyn-x',
      'exchange_durable=false',
      'exchange_type=direct',
      'exchange_auto_delete=false',
      'routing_key=e2e-dyn',
      'exclusive=false',
      'multiple_ack=false',
      'requeue_on_fail=false',
      'durable=false',
      'consume_all=false',
      'delete_queue_on_stop=true',
      'redial_timeout=60',
    ];
    assert.equal(await s.produce('declare', ...declare), 'ok');
    assert.deepEqual(((await s.produce('list')) as string[]).sort(), ['dyn', 'pr']);
    // RoadRunner loses these (no queue is bound before the pipeline consumes); rrts declares the queue at the push
    await s.produce('push', 'dyn', '2', JSON.stringify({ prefix: 'dyn' }));
    assert.deepEqual(await s.stat('dyn'), {
      pipeline: 'dyn',
      driver: 'amqp',
      queue: 'e2e-dyn',
      active: 2,
      delayed: 0,
      reserved: 0,
      ready: false,
      priority: 10,
    });
    assert.equal(await s.produce('resume', 'dyn'), 'ok');
    const done = await s.waitForDone(5);
    assert.deepEqual(ids(done.filter((d) => d.id.startsWith('dyn-'))).sort(), ['dyn-0', 'dyn-1']);
    assert.ok(
      s
        .started()
        .filter((d) => d.id.startsWith('dyn-'))
        .every((d) => d.pipeline === 'dyn'),
    );
    assert.deepEqual(await s.produce('destroy', 'dyn'), ['dyn']);
    assert.equal(await inspector.ready('e2e-dyn'), null, 'delete_queue_on_stop deleted the queue');
    assert.deepEqual(await s.produce('list'), ['pr']);
    assert.deepEqual(await s.produce('push', 'dyn', '1'), { error: 'rpc_push:\n\tjobs_plugin_push: no such pipeline, requested: dyn' });
  });

  test('the broker restarted mid-run: rrts redials, pushes wait for it, nothing confirmed is lost, duplicates only from the restart', async () => {
    const prefetch = 10;
    const s = await serve(
      {
        // pushes wait through the redial for up to jobs.timeout
        timeout: 120,
        pipelines: { restart: rabbit('restart', { durable: true, exchange_durable: true, prefetch }) },
        consume: ['restart'],
      },
      { workers: 2 },
    );
    const N = 200;
    const GATE_AT = 80;
    const gate = path.join(s.dir, 'gate');
    const progressFile = path.join(s.dir, 'progress.log');
    const progress = (): string[] => (fs.existsSync(progressFile) ? fs.readFileSync(progressFile, 'utf8').split('\n') : []);
    const options = { prefix: 'r', payload: { act: 'sleep', ms: 20 }, pace_ms: 5, gate_at: GATE_AT, gate_file: gate, progress_file: progressFile };
    const producing = run('php', [PRODUCER, s.rpc, 'push-each', 'restart', String(N), JSON.stringify(options)], { timeout: 300_000 });
    const producer = producing.child.pid!;
    // a second rrts, stopped while the broker is down
    const other = await serve({ timeout: 120, pipelines: { gone: rabbit('gone') }, consume: ['gone'] }, { workers: 1 });
    const lost = (r: JobsServer) => r.rrts.logs().some((l) => l.msg === 'amqp connection lost, redialing');
    try {
      // jobs acked, jobs running and jobs delivered and waiting when the broker goes
      await s.rrts.waitFor(() => fs.existsSync(`${gate}.reached`) && s.done().length >= 30, 'the first jobs done', 60_000);
      await broker.stopServer();
      await s.rrts.waitFor(() => lost(s), 'rrts to notice the broker is gone', 60_000);
      await other.rrts.waitFor(() => lost(other), 'the other rrts to notice the broker is gone', 60_000);
      // SIGTERM while the broker is down and a push waits for it: the push is answered, rrts exits 0 without PHP
      const otherProgress = path.join(other.dir, 'progress.log');
      const pending = run('php', [PRODUCER, other.rpc, 'push-each', 'gone', '1', JSON.stringify({ prefix: 'pending', progress_file: otherProgress })], {
        timeout: 60_000,
      }).then(
        (r) => r.stdout,
        (err: Error & { stdout?: string }) => `failed: ${err.message} ${err.stdout ?? ''}`,
      );
      await other.rrts.waitFor(() => fs.existsSync(otherProgress), 'the pending push to be sent');
      const otherPhp = other.rrts.workerPids();
      other.rrts.proc.kill('SIGTERM');
      assert.deepEqual(await other.rrts.exited, { code: 0, signal: null });
      // the push waited in the driver (it fails as the pipeline stops), or the stop came before rrts read it
      assert.match(await pending, /amqp pipeline gone is stopped|no such pipeline|connection closed/);
      assert.deepEqual(
        otherPhp.filter((pid) => alive(pid)),
        [],
      );
      await stopServer(other);
      fs.writeFileSync(gate, '');
      // this push reaches rrts while the broker is down: it must wait for the redial, not fail
      await s.rrts.waitFor(() => progress().includes(`r-${GATE_AT} sent`), 'a push during the outage', 30_000);
      assert.ok(!progress().includes(`r-${GATE_AT} ok`), 'the push during the outage waited');
      await broker.startServer();
      // the test's own connection went with the broker
      await inspector.close();
      inspector = await Inspector.open(broker);
      const { stdout } = await producing;
      const result = JSON.parse(stdout) as { ok: string[]; failed: Record<string, string> };
      assert.deepEqual(result.failed, {}, 'no push failed: each waited for the redial');
      assert.equal(result.ok.length, N);
      await s.rrts.waitFor(
        () => result.ok.every((id) => s.done().some((d) => d.id === id)),
        `every confirmed job done (${countIds(s.done()).size} of ${N})`,
        90_000,
      );
      assert.ok(s.rrts.logs().some((l) => l.msg === 'amqp connection restored'));
      assert.equal((await s.stat('restart'))!.ready, true, 'the consumer was restored');
    } finally {
      killQuietly(producer);
    }
    // at least once: the jobs unacked when the connection died (at most prefetch) come again; no push was in flight
    // when the broker went (the producer waited at the gate), so none is published twice
    const starts = countIds(s.started());
    const extra = [...starts.values()].reduce((sum, n) => sum + n - 1, 0);
    assert.equal(starts.size, N);
    assert.ok(extra <= prefetch, `${extra} extra deliveries`);
    await stopServer(s);
    assert.equal(await inspector.ready('e2e-restart'), 0, 'every job was acked in the end');
  });

  for (const mode of MODES) {
    test(`${mode} mode: SIGTERM with a job in flight: it finishes and is acked, the waiting ones go back to the broker, exit 0, no PHP left`, async () => {
      const queue = `e2e-grace-${mode}`;
      const s = await serve(
        { pool: SLOW_POOL, pipelines: { grace: rabbit(`grace-${mode}`) }, consume: ['grace'] },
        { mode, workers: 1, extra: { endure: { grace_period: '60s' } } },
      );
      await s.produce('push', 'grace', '1', JSON.stringify({ prefix: 'slow', payload: { act: 'block', name: 'grace' } }));
      await s.rrts.waitFor(() => s.started().length === 1, 'the slow job to start');
      // delivered to rrts and waiting: two held by the pollers, four in the priority queue (prefetch 10)
      await s.produce('push', 'grace', '6', JSON.stringify({ prefix: 'waiting' }));
      await until(async () => (await s.stat('grace'))!.active === 0, 'every job delivered to rrts');
      const php = [...s.rrts.workerPids(), ...s.rrts.sparePids(), ...s.rrts.masterPids(), ...s.rrts.rootPids()];
      assert.ok(php.length >= 1);
      s.rrts.proc.kill('SIGTERM');
      await s.rrts.waitFor(() => s.rrts.stdout.includes('stop signal received'), 'rrts to begin its stop');
      fs.writeFileSync(path.join(s.dir, 'release-grace'), '');
      assert.deepEqual(await s.rrts.exited, { code: 0, signal: null });
      const done = countIds(s.done());
      assert.equal(done.get('slow-0'), 1, 'the job in flight finished');
      assert.ok(
        [...done.values()].every((n) => n === 1),
        'no job ran twice',
      );
      assert.doesNotMatch(s.rrts.stderr, /cannot settle job|failed to acknowledge/);
      assert.deepEqual(
        php.filter((pid) => alive(pid)),
        [],
        'every PHP process exited with rrts',
      );
      await stopServer(s);
      // acked jobs are gone from the broker; every other one is back in the queue, none lost
      assert.equal(await inspector.ready(queue), 7 - done.size, `done: ${[...done.keys()].join(', ')}`);
    });
  }
});
