// The boltdb driver end to end through `rrts serve` and the project's PHP consumer and producer: N jobs pushed over
// RPC are each acked once; a kill -9 of rrts with jobs in flight (exec and fork mode) loses nothing acked and
// delivers the un-acked ones again after a restart; delays; and jobs.Declare of a boltdb pipeline with the
// permissions the PHP SDK sends.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { killQuietly, MODES } from './harness.js';
import { countIds, startJobs, type JobsServer } from './jobs-harness.js';
import { traceOf } from '../jobs/trace-headers.js';

const servers: JobsServer[] = [];
const dirs: string[] = [];
after(async () => {
  for (const s of servers) await s.stop();
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** A folder for the journal that outlives one rrts (the harness's own folder goes with its server). */
function journalDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-boltdb-e2e-'));
  dirs.push(dir);
  return dir;
}

function boltdb(file: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { pipelines: { disk: { driver: 'boltdb', config: { file, priority: 10, ...extra } } }, consume: ['disk'] };
}

async function serve(...args: Parameters<typeof startJobs>): Promise<JobsServer> {
  const server = await startJobs(...args);
  servers.push(server);
  return server;
}

/** Until the pipeline has no job taken and not yet acked (a worker logs "done" just before rrts reads its ack). */
async function untilAcked(s: JobsServer): Promise<void> {
  for (let i = 0; i < 200 && (await s.stat('disk'))!.active > 0; i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal((await s.stat('disk'))!.active, 0);
}

describe('boltdb through rrts serve and PHP workers', () => {
  test('N jobs pushed over RPC are each delivered and acked exactly once', async () => {
    const s = await serve('exec', boltdb(path.join(journalDir(), 'q.db')), {}, 3);
    const N = 60;
    assert.deepEqual(await s.produce('push', 'disk', String(N)), { pushed: N });
    const done = await s.waitForDone(N);
    const counts = countIds(s.started());
    assert.equal(counts.size, N);
    assert.ok(
      [...counts.values()].every((n) => n === 1),
      'no job delivered twice',
    );
    assert.equal(done.length, N);
    // the tracing headers, stored with the job at push: a trace per Push call
    assert.equal(new Set(s.started().map((d) => traceOf(d.headers).traceId)).size, N);
    await untilAcked(s);
  });

  for (const mode of MODES) {
    test(`${mode} mode: kill -9 of rrts with jobs in flight: after a restart the un-acked jobs come again, nothing acked is lost or repeated`, async () => {
      const file = path.join(journalDir(), 'q.db');
      const first = await serve(mode, boltdb(file), {}, 2);
      assert.deepEqual(await first.produce('push', 'disk', '10', JSON.stringify({ prefix: 'quick' })), { pushed: 10 });
      await first.waitForDone(10);
      await untilAcked(first); // the acks are in the journal
      const slow = JSON.stringify({ prefix: 'slow', payload: { act: 'sleep', ms: 3000 } });
      assert.deepEqual(await first.produce('push', 'disk', '4', slow), { pushed: 4 });
      await first.rrts.waitFor(() => first.started().filter((d) => d.id.startsWith('slow-')).length === 2, 'two slow jobs in flight');

      // the PHP processes outlive a kill -9 of their parent: gone by pid (fork mode: workers, spares, masters, root)
      const php = [...first.rrts.workerPids(), ...first.rrts.sparePids(), ...first.rrts.masterPids(), ...first.rrts.rootPids()];
      first.rrts.proc.kill('SIGKILL');
      await first.rrts.exited;
      for (const pid of php) killQuietly(pid);
      const before = first.done().map((d) => d.id);
      assert.ok(!before.some((id) => id.startsWith('slow-')), 'no slow job was finished before the kill');

      const second = await serve(mode, boltdb(file), {}, 2);
      const again = await second.waitForDone(4, 60_000);
      assert.deepEqual(again.map((d) => d.id).sort(), ['slow-0', 'slow-1', 'slow-2', 'slow-3']);
      assert.ok(
        second.started().every((d) => d.id.startsWith('slow-')),
        `an acked job came again: ${JSON.stringify(second.started().map((d) => d.id))}`,
      );
      assert.equal(new Set(before).size, 10);
    });
  }

  test('a delayed job waits in the journal as delayed, then is delivered once', async () => {
    const s = await serve('exec', boltdb(path.join(journalDir(), 'q.db')), {}, 1);
    assert.deepEqual(await s.produce('push', 'disk', '3', JSON.stringify({ prefix: 'later', delay: 2 })), { pushed: 3 });
    assert.equal((await s.stat('disk'))!.delayed, 3);
    assert.equal(s.started().length, 0);
    const done = await s.waitForDone(3);
    assert.deepEqual(done.map((d) => d.id).sort(), ['later-0', 'later-1', 'later-2']);
    assert.equal((await s.stat('disk'))!.delayed, 0);
  });

  test('jobs.Declare of a boltdb pipeline as the PHP SDK sends it: permissions "493" warn and fall back to 0755', async () => {
    const dir = journalDir();
    const s = await serve('exec', { pipelines: {}, consume: [] }, {}, 1);
    const file = path.join(dir, 'declared.db');
    assert.equal(await s.produce('declare', 'name=dyn', 'driver=boltdb', 'priority=10', 'prefetch=10000', `file=${file}`, 'permissions=493'), 'ok');
    assert.deepEqual(await s.produce('resume', 'dyn'), 'ok');
    assert.deepEqual(await s.produce('push', 'dyn', '5', JSON.stringify({ prefix: 'dyn' })), { pushed: 5 });
    const done = await s.waitForDone(5);
    assert.deepEqual(done.map((d) => d.id).sort(), ['dyn-0', 'dyn-1', 'dyn-2', 'dyn-3', 'dyn-4']);
    assert.ok(s.started().every((d) => d.pipeline === 'dyn'));
    assert.equal(fs.statSync(file).mode & 0o777, 0o755 & ~process.umask());
    assert.ok(
      s.rrts.logs().some((l) => l.msg === 'failed to parse permissions, fallback to default 0755 (provided: 493)'),
      'RoadRunner\u2019s warning is logged',
    );
  });
});
