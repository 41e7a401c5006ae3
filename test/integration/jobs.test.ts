// The jobs plugin through `rrts serve` with real PHP consumers and a PHP producer speaking protobuf RPC: exactly-once
// delivery with acks, redelivery after a crash, an ERROR frame and Worker::stop(), delays, priorities, pause/resume,
// declare/destroy at run time, stat, and a graceful stop with a job in flight (exec and fork mode where it matters).
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { BIN, freePort, MODES, ROOT, startRrts } from './harness.js';
import { CONSUMER, countIds, startJobs, type JobsServer } from './jobs-harness.js';
import { traceOf, withoutTrace } from '../jobs/trace-headers.js';

const run = promisify(execFile);
const RPC_CLIENT = path.join(ROOT, 'test', 'fixtures', 'php', 'rpc-client.php');

async function informerWorkers(s: JobsServer): Promise<number[]> {
  const { stdout } = await run('php', [RPC_CLIENT, s.rpc, 'informer.Workers', JSON.stringify('jobs')]);
  return (JSON.parse(stdout) as { workers: Array<{ pid: number }> }).workers.map((w) => w.pid);
}

const servers: JobsServer[] = [];
after(async () => {
  for (const s of servers) await s.stop();
});

async function serve(...args: Parameters<typeof startJobs>): Promise<JobsServer> {
  const server = await startJobs(...args);
  servers.push(server);
  return server;
}

const memory = (priority = 10, prefetch = 100_000): Record<string, unknown> => ({ driver: 'memory', config: { priority, prefetch } });

for (const mode of MODES) {
  describe(`jobs, ${mode} mode`, () => {
    test('N jobs pushed one by one and in a batch are each run exactly once, as RAW frames, with RR_MODE=jobs', async () => {
      const s = await serve(mode, { pipelines: { main: memory() }, consume: ['main'] });
      assert.deepEqual(await s.produce('push', 'main', '100', JSON.stringify({ prefix: 'one' })), { pushed: 100 });
      const producerTrace = `00-${'ab'.repeat(16)}-${'cd'.repeat(8)}-01`;
      const batchHeaders = { 'x-a': ['1'], Traceparent: [producerTrace] };
      assert.deepEqual(await s.produce('batch', 'main', '100', JSON.stringify({ prefix: 'batch', headers: batchHeaders })), { pushed: 100 });
      const done = await s.waitForDone(200);
      const counts = countIds(s.started());
      assert.equal(counts.size, 200);
      assert.ok(
        [...counts.values()].every((n) => n === 1),
        'every job started once',
      );
      assert.equal(countIds(done).size, 200);
      const batchJob = s.started().find((d) => d.id === 'batch-7')!;
      assert.deepEqual(withoutTrace(batchJob.headers), { 'x-a': ['1'] });
      // RoadRunner's tracing headers: a trace per Push call, one per PushBatch call (the producer's Traceparent is
      // replaced, as RoadRunner's push span does), a span per delivery
      const traces = (prefix: string) =>
        s
          .started()
          .filter((d) => d.id.startsWith(prefix))
          .map((d) => traceOf(d.headers));
      const one = traces('one-');
      const batch = traces('batch-');
      assert.equal(new Set(one.map((t) => t.traceId)).size, 100, 'each Push its own trace');
      assert.equal(new Set(batch.map((t) => t.traceId)).size, 1, 'the PushBatch call one trace');
      assert.notEqual(batch[0]!.traceId, 'ab'.repeat(16));
      assert.equal(new Set([...one, ...batch].map((t) => t.spanId)).size, 200, 'each delivery its own span');
      assert.equal(batchJob.pipeline, 'main');
      assert.ok(s.started().every((d) => d.flags === 0x04 && d.mode === 'jobs'));
      const stat = (await s.produce('stat')) as Array<{ pipeline: string; active: number }>;
      assert.equal(stat.find((p) => p.pipeline === 'main')!.active, 0);
      await s.stop();
      servers.splice(servers.indexOf(s), 1);
    });

    test('a job whose worker crashed, sent an ERROR frame or asked to stop is delivered again and done once', async () => {
      const s = await serve(mode, { pipelines: { main: memory() }, consume: ['main'] });
      for (const act of ['crash-once', 'error-once', 'stop-once']) {
        await s.produce('push', 'main', '2', JSON.stringify({ prefix: act, payload: { act } }));
      }
      const done = await s.waitForDone(6);
      assert.deepEqual([...countIds(done).values()], [1, 1, 1, 1, 1, 1]);
      for (const [id, n] of countIds(s.started())) assert.equal(n, 2, `${id} started twice`);
      await s.stop();
      servers.splice(servers.indexOf(s), 1);
    });

    test('SIGTERM with a job in flight: the job finishes and is acked, then rrts exits without waiting out the grace period', async () => {
      const s = await serve(mode, { pipelines: { main: memory() }, consume: ['main'] }, { endure: { grace_period: '60s' } });
      await s.produce('push', 'main', '1', JSON.stringify({ prefix: 'slow', payload: { act: 'sleep', ms: 1500 } }));
      await s.rrts.waitFor(() => s.started().length === 1, 'the slow job to start');
      const began = Date.now();
      s.rrts.proc.kill('SIGTERM');
      const exit = await s.rrts.exited;
      assert.deepEqual(exit, { code: 0, signal: null });
      assert.deepEqual(
        s.done().map((d) => d.id),
        ['slow-0'],
      );
      // RR 2025.1 waits the whole grace period here (#2194): its idle pollers never wake
      assert.ok(Date.now() - began < 60_000, 'stopped before the grace period ran out');
      assert.doesNotMatch(s.rrts.stderr, /cannot settle job/);
    });
  });
}

describe('jobs, exec mode: pipelines and RPC', () => {
  test('answers: nack drops, nack with redelivery and requeue deliver again (headers merged), fail acks, garbage is acked', async () => {
    const s = await serve('exec', { pipelines: { main: memory() }, consume: ['main'] });
    for (const act of ['nack', 'nack-redeliver-once', 'requeue-once', 'fail', 'fail-requeue-once', 'garbage', 'complete']) {
      await s.produce('push', 'main', '1', JSON.stringify({ prefix: act, payload: { act } }));
    }
    await s.waitForDone(10);
    const starts = countIds(s.started());
    assert.deepEqual(Object.fromEntries(starts), {
      'nack-0': 1,
      'nack-redeliver-once-0': 2,
      'requeue-once-0': 2,
      'fail-0': 1,
      'fail-requeue-once-0': 2,
      'garbage-0': 1,
      'complete-0': 1,
    });
    const requeued = s.started().filter((d) => d.id === 'requeue-once-0');
    assert.deepEqual(withoutTrace(requeued[1]!.headers), { attempt: ['2'] });
    // a requeued job goes on with the trace it was delivered in, in a new span
    const [firstRun, secondRun] = requeued.map((d) => traceOf(d.headers));
    assert.equal(secondRun!.traceId, firstRun!.traceId);
    assert.notEqual(secondRun!.spanId, firstRun!.spanId);
    assert.match(s.rrts.stderr, /response handler error/);
  });

  test('max_queue_size below the pollers: refused runs come back after a pause, every job runs once, RPC stays responsive', async () => {
    // one worker and a queue of one: two of the three pollers are refused at once by the pool on every try
    const s = await serve(
      'exec',
      { pool: { num_workers: 1, max_queue_size: 1, allocate_timeout: '20s' }, pipelines: { main: memory() }, consume: ['main'] },
      {},
      1,
    );
    await s.produce('push', 'main', '5', JSON.stringify({ payload: { act: 'sleep', ms: 200 } }));
    const stat = (await s.produce('stat')) as Array<{ pipeline: string }>;
    assert.equal(stat[0]!.pipeline, 'main');
    const done = await s.waitForDone(5);
    assert.deepEqual([...countIds(done).values()], [1, 1, 1, 1, 1]);
    assert.deepEqual([...countIds(s.started()).values()], [1, 1, 1, 1, 1]);
  });

  test('priorities: lower numbers first, equal ones in push order, once the waiting pollers have theirs', async () => {
    // one worker, so 3 pollers: the first three jobs are out of the queue as soon as it consumes
    const s = await serve('exec', { pipelines: { main: memory() } }, {}, 1);
    const pushes: Array<[string, number]> = [];
    for (let i = 0; i < 12; i++) pushes.push([`p${i}`, [5, 1, 3][i % 3]!]);
    for (const [id, priority] of pushes) await s.produce('push', 'main', '1', JSON.stringify({ prefix: id, priority }));
    const stat = (await s.produce('stat')) as Array<{ ready: boolean; active: number }>;
    assert.deepEqual([stat[0]!.ready, stat[0]!.active], [false, 0]);
    assert.equal(await s.produce('resume', 'main'), 'ok');
    const order = (await s.waitForDone(12)).map((d) => d.id.replace(/-0$/, ''));
    const rest = pushes.slice(3);
    const expected = [...pushes.slice(0, 3).map(([id]) => id), ...[1, 3, 5].flatMap((p) => rest.filter(([, q]) => q === p).map(([id]) => id))];
    assert.deepEqual(order, expected);
  });

  test('pause stops intake, resume restarts it; errors are RoadRunner texts', async () => {
    const s = await serve('exec', { pipelines: { main: memory(), other: memory() }, consume: ['main'] });
    assert.equal(await s.produce('pause', 'main'), 'ok');
    assert.deepEqual(await s.produce('pause', 'main'), { error: 'no active listeners, nothing to pause' });
    assert.deepEqual(await s.produce('pause', 'nope'), { error: 'no such pipeline, requested: nope' });
    await s.produce('push', 'main', '3');
    const paused = (await s.produce('stat')) as Array<{ pipeline: string; ready: boolean; active: number }>;
    assert.deepEqual(
      paused.find((p) => p.pipeline === 'main'),
      { pipeline: 'main', driver: 'memory', queue: 'main', active: 0, delayed: 0, reserved: 0, ready: false, priority: 10 },
    );
    assert.equal(s.started().length, 0);
    assert.equal(await s.produce('resume', 'main'), 'ok');
    assert.deepEqual(await s.produce('resume', 'main'), { error: 'memory listener is already in the active state' });
    await s.waitForDone(3);
  });

  test('a delayed job waits (counted as delayed) while a later one runs, then runs', async () => {
    const s = await serve('exec', { pipelines: { main: memory() }, consume: ['main'] });
    await s.produce('push', 'main', '1', JSON.stringify({ prefix: 'later', delay: 2 }));
    await s.produce('push', 'main', '1', JSON.stringify({ prefix: 'now' }));
    await s.waitForDone(1);
    const stat = (await s.produce('stat')) as Array<{ delayed: number }>;
    const done = await s.waitForDone(2);
    assert.deepEqual(
      done.map((d) => d.id),
      ['now-0', 'later-0'],
    );
    assert.ok(stat[0]!.delayed <= 1);
  });

  test('declare, list, push, resume and destroy at run time; unknown and skipped pipelines', async () => {
    const s = await serve('exec', { pipelines: { main: memory(), gone: { driver: 'ephemeral' } }, consume: ['main'] });
    // the start-up summary names each pipeline with its driver
    const summary = s.rrts.logs().filter((l) => l.plugin === 'jobs' && typeof l.pipeline === 'string');
    assert.deepEqual(
      summary.map((l) => [l.pipeline, l.driver, l.state]),
      [
        ['main', 'memory', 'consuming'],
        ['gone', 'ephemeral', 'skipped'],
      ],
    );
    assert.equal(await s.produce('declare', 'name=dyn', 'driver=memory', 'priority=3', 'prefetch=10'), 'ok');
    assert.deepEqual(await s.produce('declare', 'name=dyn', 'driver=memory'), {
      error: 'rpc_declare_pipeline: pipeline already exists, name: dyn, driver: memory',
    });
    assert.deepEqual(await s.produce('declare', 'name=x'), {
      error: 'rpc_declare_pipeline:\n\tjobs_plugin_declare: no associated driver with the pipeline, pipeline name: x',
    });
    assert.equal(await s.produce('declare', 'name=odd', 'driver=nosuch'), 'ok'); // as RoadRunner: success, nothing created
    assert.deepEqual(((await s.produce('list')) as string[]).sort(), ['dyn', 'gone', 'main']);
    await s.produce('push', 'dyn', '2');
    const stat = (await s.produce('stat')) as Array<{ pipeline: string; priority: number; ready: boolean }>;
    assert.deepEqual(stat.map((p) => [p.pipeline, p.priority, p.ready]).sort(), [
      ['dyn', 3, false],
      ['main', 10, true],
    ]);
    assert.equal(await s.produce('resume', 'dyn'), 'ok');
    await s.waitForDone(2);
    assert.deepEqual(await s.produce('destroy', 'dyn'), ['dyn']);
    assert.deepEqual(((await s.produce('list')) as string[]).sort(), ['gone', 'main']);
    assert.deepEqual(await s.produce('push', 'dyn', '1'), { error: 'rpc_push:\n\tjobs_plugin_push: no such pipeline, requested: dyn' });
    assert.deepEqual(await s.produce('push', 'gone', '1'), {
      error: 'rpc_push:\n\tjobs_plugin_push: consumer not registered for the requested driver: ephemeral',
    });
    assert.deepEqual(await s.produce('destroy', 'dyn'), { error: 'rpc_destroy_pipeline:\n\tjobs_plugin_destroy: no such pipeline, requested: dyn' });
  });
});

describe('jobs, exec mode: start-up and the other plugins', () => {
  test('a memory pipeline without its config section fails the start, naming the key', async () => {
    const rrts = await startRrts({
      expectFailure: true,
      config: { server: { command: `php ${CONSUMER}` }, http: null, jobs: { pool: { num_workers: 1 }, pipelines: { bare: { driver: 'memory' } } } },
    });
    const exit = await rrts.exited;
    await rrts.stop();
    assert.notEqual(exit.code, 0);
    assert.match(
      rrts.stderr + rrts.stdout,
      /jobs: cannot start: jobs_plugin_serve: pipeline bare \(driver memory\): config not found by provided key: jobs\.pipelines\.bare\.config/,
    );
    assert.doesNotMatch(rrts.stderr, /\n\s+at /, 'no stack trace');
  });

  test('informer.Workers and Jobs("jobs"), resetter.Reset("jobs"), /health, /ready?plugin=jobs and GET /jobs see the jobs plugin', async () => {
    const statusPort = await freePort();
    const s = await serve('exec', { pipelines: { main: memory() }, consume: ['main'] }, { status: { address: `127.0.0.1:${statusPort}` } });
    const rpc = async (method: string, arg: unknown): Promise<unknown> => {
      const { stdout } = await run('php', [RPC_CLIENT, s.rpc, method, JSON.stringify(arg)]);
      return JSON.parse(stdout) as unknown;
    };
    const before = (await rpc('informer.Workers', 'jobs')) as { workers: Array<{ pid: number }> };
    assert.equal(before.workers.length, 2);
    assert.ok(((await rpc('informer.List', true)) as string[]).includes('jobs'));
    assert.equal(await rpc('resetter.Reset', 'jobs'), true);
    const after = (await rpc('informer.Workers', 'jobs')) as { workers: Array<{ pid: number }> };
    assert.equal(after.workers.length, 2);
    assert.ok(
      after.workers.every((w) => !before.workers.some((b) => b.pid === w.pid)),
      'fresh workers after the reset',
    );
    for (const path of ['health', 'ready']) {
      const response = await fetch(`http://127.0.0.1:${statusPort}/${path}?plugin=jobs`);
      assert.equal(response.status, 200, path);
    }
    await s.produce('push', 'main', '3');
    await s.waitForDone(3);
    assert.deepEqual(await rpc('informer.Jobs', 'jobs'), [
      { Pipeline: 'main', Driver: 'memory', Queue: 'main', Active: 0, Delayed: 0, Reserved: 0, Ready: true, Priority: 10, ErrorMessage: '' },
    ]);
    assert.deepEqual(await rpc('informer.Jobs', 'http'), []);
    const jobs = await fetch(`http://127.0.0.1:${statusPort}/jobs`);
    assert.equal(jobs.status, 200);
    assert.deepEqual(await jobs.json(), [
      { pipeline: 'main', priority: 10, ready: true, queue: 'main', active: 0, delayed: 0, reserved: 0, driver: 'memory', error_message: '' },
    ]);
  });
});

describe('jobs, SIGHUP', () => {
  for (const mode of MODES) {
    test(`${mode} mode: a reload replaces the jobs workers too, and jobs keep being done`, async () => {
      const s = await serve(mode, { pipelines: { main: memory() }, consume: ['main'] });
      const before = (await informerWorkers(s)).sort();
      s.rrts.proc.kill('SIGHUP');
      await s.rrts.waitFor(() => s.rrts.logs().some((l) => l.msg === 'jobs: workers reset'), 'the jobs reset', 30_000);
      const after = await informerWorkers(s);
      assert.equal(after.length, 2);
      assert.ok(
        after.every((pid) => !before.includes(pid)),
        `fresh workers: ${before.join(',')} -> ${after.join(',')}`,
      );
      await s.produce('push', 'main', '4');
      const done = await s.waitForDone(4);
      assert.ok(done.every((d) => after.includes(d.pid)));
    });
  }
});

describe('jobs metrics', () => {
  test('rr_jobs_* count answers and pushes by pipeline, driver and source; the jobs pool has its gauges', async () => {
    const metricsPort = await freePort();
    const s = await serve('exec', { pipelines: { main: memory() }, consume: ['main'] }, { metrics: { address: `127.0.0.1:${metricsPort}` } });
    await s.produce('push', 'main', '3', JSON.stringify({ prefix: 'one' }));
    await s.produce('batch', 'main', '2', JSON.stringify({ prefix: 'two', payload: { act: 'garbage' } }));
    assert.ok('error' in ((await s.produce('push', 'nope', '1')) as object));
    await s.waitForDone(5);
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const value = (line: string): number => Number(new RegExp(`^${line.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);
    assert.equal(value('rr_jobs_push_ok'), 5);
    assert.equal(value('rr_jobs_push_err'), 0);
    assert.equal(value('rr_jobs_jobs_ok'), 3);
    assert.equal(value('rr_jobs_jobs_err'), 2); // the garbage answers: acked, counted as errors
    assert.equal(value('rr_jobs_requests_total{job="main",driver="memory",source="single"}'), 3);
    assert.equal(value('rr_jobs_requests_total{job="main",driver="memory",source="batch"}'), 2);
    assert.equal(value('rr_jobs_push_latency_count{job="main",driver="memory",source="single"}'), 3);
    assert.equal(value('rr_jobs_total_workers'), 2);
  });
});

describe('rrts jobs (the CLI)', () => {
  test('--list, --pause, --resume, --destroy print the PIPELINE(S) table; errors exit 1', async () => {
    const s = await serve('exec', { pipelines: { main: memory(), other: memory() }, consume: ['main', 'other'] });
    const config = path.join(s.rrts.dir, '.rr.yaml');
    const cli = async (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
      try {
        const { stdout, stderr } = await run(process.execPath, [BIN, 'jobs', '-c', config, ...args]);
        return { code: 0, stdout, stderr };
      } catch (err) {
        const e = err as { code: number; stdout: string; stderr: string };
        return { code: e.code, stdout: e.stdout, stderr: e.stderr };
      }
    };
    const list = await cli('--list');
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /PIPELINE\(S\)/);
    assert.match(list.stdout, /│ main +│/);
    assert.match(list.stdout, /│ other +│/);
    const paused = await cli('--pause', 'main,other');
    assert.equal(paused.code, 0, paused.stderr);
    assert.match(paused.stdout, /│ other +│/);
    const stat = (await s.produce('stat')) as Array<{ ready: boolean }>;
    assert.deepEqual(
      stat.map((p) => p.ready),
      [false, false],
    );
    const again = await cli('--pause', 'main');
    assert.equal(again.code, 1);
    assert.match(again.stderr, /no active listeners, nothing to pause/);
    assert.equal((await cli('--resume', 'main', '-s')).stdout, '');
    const destroyed = await cli('--destroy', 'other');
    assert.match(destroyed.stdout, /│ other +│/);
    assert.deepEqual(await s.produce('list'), ['main']);
  });
});
