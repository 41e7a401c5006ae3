// Fork mode with http and jobs: both pools' masters come from one root (one opcache segment), each master preloads
// with its own pool's RR_MODE, both pools serve, and a reset of one pool replaces only its own workers.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { childrenOf, freePort, isForkRoot, isForkSpare, ROOT, startRrts, type RrtsInstance } from './harness.js';
import { request } from './client.js';
import { JobsServer } from './jobs-harness.js';

const run = promisify(execFile);
const RPC_CLIENT = path.join(ROOT, 'test', 'fixtures', 'php', 'rpc-client.php');
const WORKER = path.join(ROOT, 'test', 'fixtures', 'php', 'http-and-jobs.php');
const PRELOAD = path.join(ROOT, 'test', 'fixtures', 'php', 'mode-preload.php');

const servers: JobsServer[] = [];
after(async () => {
  for (const s of servers) await s.stop();
});

interface Tree {
  roots: number[];
  /** master pid -> its workers (spares left out) */
  masters: Map<number, number[]>;
}

function tree(rrts: RrtsInstance): Tree {
  const roots = childrenOf(rrts.pid).filter(isForkRoot);
  const masters = new Map<number, number[]>();
  for (const master of roots.flatMap((pid) => childrenOf(pid)))
    masters.set(
      master,
      childrenOf(master).filter((pid) => !isForkSpare(pid)),
    );
  return { roots, masters };
}

async function rpc(s: JobsServer, method: string, arg: unknown): Promise<unknown> {
  const { stdout } = await run('php', [RPC_CLIENT, s.rpc, method, JSON.stringify(arg)]);
  return JSON.parse(stdout) as unknown;
}

async function workersOf(s: JobsServer, pool: string): Promise<number[]> {
  const { workers } = (await rpc(s, 'informer.Workers', pool)) as { workers: Array<{ pid: number }> };
  return workers.map((w) => w.pid).sort((a, b) => a - b);
}

/** The master whose workers are exactly `workers`. */
function masterOf(t: Tree, workers: number[]): number {
  const found = [...t.masters].find(([, children]) => workers.every((pid) => children.includes(pid)));
  assert.ok(found, `a master with the workers ${workers.join(', ')}: ${JSON.stringify([...t.masters])}`);
  return found[0];
}

describe('fork mode: one root for the http and the jobs pool', () => {
  test('both masters come from one root, preload with their own RR_MODE, serve, and reset alone', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-jobs-fork-'));
    const rpcAddress = `tcp://127.0.0.1:${await freePort()}`;
    let rrts: RrtsInstance;
    try {
      rrts = await startRrts({
        mode: 'fork',
        config: {
          server: { command: `php ${WORKER}`, env: { JOBS_DIR: dir }, fork: { enabled: true, preload: PRELOAD } },
          http: { pool: { num_workers: 2, allocate_timeout: '20s' } },
          rpc: { listen: rpcAddress },
          jobs: { pool: { num_workers: 2, allocate_timeout: '20s' }, pipelines: { main: { driver: 'memory', config: { priority: 10 } } }, consume: ['main'] },
        },
      });
    } catch (err) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    const s = new JobsServer(rrts, rpcAddress, dir);
    servers.push(s);

    const http = await workersOf(s, 'http');
    const jobs = await workersOf(s, 'jobs');
    assert.equal(http.length, 2);
    assert.equal(jobs.length, 2);
    const t = tree(rrts);
    assert.equal(t.roots.length, 1, `one fork root, not one per pool: ${t.roots.join(', ')}`);
    assert.equal(t.masters.size, 2, 'a master per pool, both children of the root');
    const httpMaster = masterOf(t, http);
    const jobsMaster = masterOf(t, jobs);
    assert.notEqual(httpMaster, jobsMaster);

    // each master ran the preload with its own pool's RR_MODE, though the root has the first pool's
    const preloaded = new Map(
      fs
        .readFileSync(path.join(dir, 'preload.log'), 'utf8')
        .trim()
        .split('\n')
        .map((line) => line.split(' ') as [string, string])
        .map(([pid, mode]) => [Number(pid), mode]),
    );
    assert.equal(preloaded.get(httpMaster), 'http');
    assert.equal(preloaded.get(jobsMaster), 'jobs');

    // both serve
    const served = await request(`${rrts.url}/pid`);
    assert.equal(served.status, 200);
    assert.ok(http.includes(Number(served.body.toString())), `served by an http worker: ${served.body.toString()}`);
    assert.deepEqual(await s.produce('push', 'main', '6'), { pushed: 6 });
    await s.waitForDone(6);
    assert.ok(
      s.started().every((d) => jobs.includes(d.pid) && d.mode === 'jobs'),
      `every job taken by a jobs worker (${jobs.join(', ')}): ${JSON.stringify(s.started().map((d) => [d.pid, d.mode]))}`,
    );

    // a reset of http replaces the http workers under a new master from the same root; jobs keeps its own
    assert.equal(await rpc(s, 'resetter.Reset', 'http'), true);
    const http2 = await workersOf(s, 'http');
    assert.ok(
      http2.every((pid) => !http.includes(pid)),
      'fresh http workers',
    );
    assert.deepEqual(await workersOf(s, 'jobs'), jobs, 'the jobs workers were left alone');
    await rrts.waitFor(() => tree(rrts).masters.size === 2, 'the old http master to stop');
    const t2 = tree(rrts);
    assert.deepEqual(t2.roots, t.roots, 'the same root');
    assert.equal(masterOf(t2, jobs), jobsMaster, 'the same jobs master');
    assert.notEqual(masterOf(t2, http2), httpMaster);

    // and the other way round
    assert.equal(await rpc(s, 'resetter.Reset', 'jobs'), true);
    const jobs2 = await workersOf(s, 'jobs');
    assert.ok(
      jobs2.every((pid) => !jobs.includes(pid)),
      'fresh jobs workers',
    );
    assert.deepEqual(await workersOf(s, 'http'), http2, 'the http workers were left alone');
    await rrts.waitFor(() => tree(rrts).masters.size === 2, 'the old jobs master to stop');
    const t3 = tree(rrts);
    assert.deepEqual(t3.roots, t.roots, 'still the same root');
    assert.equal(masterOf(t3, http2), masterOf(t2, http2), 'the same http master');

    assert.deepEqual(await s.produce('push', 'main', '3', JSON.stringify({ prefix: 'after' })), { pushed: 3 });
    const after = await s.waitForDone(9);
    assert.ok(after.filter((d) => d.id.startsWith('after-')).every((d) => jobs2.includes(d.pid)));
    assert.equal((await request(`${rrts.url}/pid`)).status, 200);
  });

  test('with two front processes: the fronts\u2019 masters and the jobs master come from one root', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-jobs-fork-'));
    const rpcAddress = `tcp://127.0.0.1:${await freePort()}`;
    let rrts: RrtsInstance;
    try {
      rrts = await startRrts({
        mode: 'fork',
        config: {
          server: { command: `php ${WORKER}`, env: { JOBS_DIR: dir }, fork: { enabled: true, preload: PRELOAD } },
          http: { front: { processes: 2 }, pool: { num_workers: 2, allocate_timeout: '20s' } },
          rpc: { listen: rpcAddress },
          jobs: { pool: { num_workers: 2, allocate_timeout: '20s' }, pipelines: { main: { driver: 'memory', config: { priority: 10 } } }, consume: ['main'] },
        },
      });
    } catch (err) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    const s = new JobsServer(rrts, rpcAddress, dir);
    servers.push(s);
    const jobs = await workersOf(s, 'jobs');
    assert.equal(jobs.length, 2);
    // two fronts with a master each, and the jobs master: all under one root
    await rrts.waitFor(() => tree(rrts).masters.size === 3, 'three masters');
    const t = tree(rrts);
    assert.equal(t.roots.length, 1, `one fork root: ${t.roots.join(', ')}`);
    const jobsMaster = masterOf(t, jobs);
    const preloaded = fs.readFileSync(path.join(dir, 'preload.log'), 'utf8');
    assert.match(preloaded, new RegExp(`^${jobsMaster} jobs$`, 'm'));
    assert.equal((await request(`${rrts.url}/pid`)).status, 200);
    assert.deepEqual(await s.produce('push', 'main', '4'), { pushed: 4 });
    await s.waitForDone(4);
    assert.ok(s.started().every((d) => jobs.includes(d.pid)));
  });
});
