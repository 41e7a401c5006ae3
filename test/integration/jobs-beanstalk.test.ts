// The beanstalk driver end to end through `rrts serve`, a private beanstalkd and the project's PHP consumer and
// producer: N jobs each acked once, a delay, nacks with and without redelivery, a requeue, and beanstalkd killed
// and restarted on its binlog mid-run with nothing lost (docs/jobs-beanstalk.md).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Beanstalkd } from '../support/beanstalkd.js';
import { countIds, startJobs, type JobsServer } from './jobs-harness.js';
import { traceOf, withoutTrace } from '../jobs/trace-headers.js';

let server: Beanstalkd;
const servers: JobsServer[] = [];
before(async () => {
  server = await Beanstalkd.start();
});
after(async () => {
  for (const s of servers) await s.stop();
  await server?.destroy();
});

/** rrts with one consuming beanstalk pipeline `bean` on `tube`. */
async function serve(tube: string, workers = 2): Promise<JobsServer> {
  const s = await startJobs(
    'exec',
    { pipelines: { bean: { driver: 'beanstalk', config: { tube, priority: 10 } } }, consume: ['bean'] },
    { beanstalk: { addr: server.addr, timeout: '10s' } },
    workers,
  );
  servers.push(s);
  return s;
}

describe('beanstalk through rrts serve and PHP workers', () => {
  test('N jobs pushed over RPC are each delivered and acked exactly once', async () => {
    const s = await serve('exactly-once', 3);
    const N = 60;
    assert.deepEqual(await s.produce('push', 'bean', String(N)), { pushed: N });
    await s.waitForDone(N);
    const counts = countIds(s.started());
    assert.equal(counts.size, N);
    assert.ok(
      [...counts.values()].every((n) => n === 1),
      'no job delivered twice',
    );
    const row = await s.untilIdle('bean');
    assert.equal(row.active, 0);
    assert.equal(row.reserved, 0);
    assert.equal(row.driver, 'beanstalk');
    assert.equal(row.queue, 'exactly-once');
    assert.equal(row.ready, true);
    assert.ok(
      s.started().every((d) => d.pipeline === 'bean' && d.job === 'test.Job'),
      'the context names the pipeline and the job',
    );
  });

  test('a delayed job waits in beanstalkd as delayed, then is delivered once', async () => {
    const s = await serve('delayed', 1);
    assert.deepEqual(await s.produce('push', 'bean', '3', JSON.stringify({ prefix: 'later', delay: 2 })), { pushed: 3 });
    assert.equal((await s.stat('bean'))!.delayed, 3);
    assert.equal(s.started().length, 0);
    const done = await s.waitForDone(3);
    assert.deepEqual(done.map((d) => d.id).sort(), ['later-0', 'later-1', 'later-2']);
    assert.equal((await s.untilIdle('bean')).delayed, 0);
  });

  test('nack drops the job; nack with requeue and a delay and requeue with headers deliver it once more', async () => {
    const s = await serve('answers', 2);
    await s.produce('push', 'bean', '2', JSON.stringify({ prefix: 'renack', payload: { act: 'nack-redeliver-once', delay: 1 } }));
    await s.produce('push', 'bean', '2', JSON.stringify({ prefix: 'requeue', payload: { act: 'requeue-once' }, headers: { keep: ['k'] } }));
    await s.produce('push', 'bean', '2', JSON.stringify({ prefix: 'drop', payload: { act: 'nack' } }));
    await s.waitForDone(10);
    const row = await s.untilIdle('bean');
    assert.equal(row.active + row.reserved + row.delayed, 0);
    const counts = countIds(s.started());
    assert.deepEqual(Object.fromEntries([...counts].sort(([a], [b]) => a.localeCompare(b))), {
      'drop-0': 1,
      'drop-1': 1,
      'renack-0': 2,
      'renack-1': 2,
      'requeue-0': 2,
      'requeue-1': 2,
    });
    const second = s.started().filter((d) => d.id.startsWith('requeue-') && d.headers?.attempt);
    assert.equal(second.length, 2);
    for (const d of second) assert.deepEqual(withoutTrace(d.headers), { attempt: ['2'], keep: ['k'] });
    // the tracing headers: the requeued copy goes on with the trace of its first delivery
    for (const d of second) assert.equal(traceOf(d.headers).traceId, traceOf(s.started().find((f) => f.id === d.id)!.headers).traceId);
  });

  test('jobs.Declare of a beanstalk pipeline with the keys the PHP SDK sends, then resume and push', async () => {
    const s = await startJobs('exec', { pipelines: {}, consume: [] }, { beanstalk: { addr: server.addr, timeout: '10s' } }, 1);
    servers.push(s);
    const declared = await s.produce('declare', 'name=dyn', 'driver=beanstalk', 'priority=10', 'tube_priority=1', 'tube=declared', 'reserve_timeout=5');
    assert.equal(declared, 'ok');
    assert.equal(await s.produce('resume', 'dyn'), 'ok');
    assert.deepEqual(await s.produce('push', 'dyn', '3', JSON.stringify({ prefix: 'dyn' })), { pushed: 3 });
    const done = await s.waitForDone(3);
    assert.deepEqual(done.map((d) => d.id).sort(), ['dyn-0', 'dyn-1', 'dyn-2']);
    assert.ok(s.started().every((d) => d.pipeline === 'dyn'));
    const row = (await s.stat('dyn'))!;
    assert.equal(row.queue, 'declared');
  });

  test('beanstalkd killed and restarted on its binlog mid-run: every job is done, none twice unless it was in flight', async () => {
    const s = await serve('restart', 2);
    const N = 20;
    const slow = JSON.stringify({ prefix: 'r', payload: { act: 'sleep', ms: 150 } });
    assert.deepEqual(await s.produce('push', 'bean', String(N), slow), { pushed: N });
    await s.rrts.waitFor(() => s.done().length >= 4, '4 jobs done before the kill');
    await server.stopServer('SIGKILL');
    const inFlightAtKill = s.started().length - s.done().length;
    await new Promise((r) => setTimeout(r, 1000));
    await server.startServer();
    await s.rrts.waitFor(() => new Set(s.done().map((d) => d.id)).size >= N, `all ${N} jobs done`, 60_000);
    const row = await s.untilIdle('bean');
    assert.equal(row.active + row.reserved, 0, 'the tube is empty at the end');
    const counts = countIds(s.done());
    assert.equal(counts.size, N);
    const twice = [...counts].filter(([, n]) => n > 1).map(([id]) => id);
    // a job running when beanstalkd died cannot be deleted any more, so beanstalkd hands it out again
    assert.ok(twice.length <= inFlightAtKill + 2, `done twice: ${twice.join(', ')} with ${inFlightAtKill} in flight at the kill`);
    assert.ok(
      s.rrts.logs().some((l) => l.msg === 'beanstalk connection restored'),
      'the redial is logged',
    );
  });
});
