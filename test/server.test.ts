// The server's plugin registry: a plugin added with use() next to http (here over a fake pool, so no PHP) is found
// by its capabilities: informer and resetter over real RPC, /health and /ready, /metrics, and stop().
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { RpcClient } from '../src/cli/rpc-client.js';
import { loadConfig, type Config } from '../src/config/index.js';
import { HttpPlugin } from '../src/http/server.js';
import type { LogRoot } from '../src/log/index.js';
import type { HasStatus, HasWorkers, Plugin, Resettable, WorkerState } from '../src/plugin.js';
import type { WorkerPool } from '../src/pool/pool.js';
import { RrtsServer } from '../src/server.js';
import { stateName, WorkerState as Lifecycle } from '../src/worker/state.js';

const silent = pino({ level: 'silent' });
const logs: LogRoot = { channel: () => silent, flush: () => undefined, close: () => undefined };

/** A second plugin with a pool of its own, as a jobs plugin would have: one ready worker, nothing ready to take a job. */
class FakeJobsPlugin implements Plugin, HasWorkers, Resettable, HasStatus {
  readonly name = 'jobs';
  readonly workerMode = 'exec' as const;
  served = false;
  stoppedWithGraceMs: number | null = null;
  resets = 0;
  added = 0;
  removed = 0;

  async serve(): Promise<void> {
    this.served = true;
  }

  async stop(graceMs: number): Promise<void> {
    this.stoppedWithGraceMs = graceMs;
  }

  async workers(): Promise<WorkerState[]> {
    const worker = { pid: 424242, status: Lifecycle.Working, numExecs: 7, created: 1_700_000_000_000_000_000, memoryUsage: 1024 };
    return [{ ...worker, CPUPercent: 0, command: '', statusStr: stateName(Lifecycle.Working), uss: 0, pss: 0 }];
  }

  async addWorker(): Promise<void> {
    this.added++;
  }

  async removeWorker(): Promise<void> {
    this.removed++;
  }

  async reset(): Promise<void> {
    this.resets++;
  }

  async status(): Promise<number> {
    return 200;
  }

  async ready(): Promise<number> {
    return 503;
  }
}

/** The http plugin's pool, reduced to what its capabilities read: two idle workers (pids that do not exist). */
function fakeHttpPool(): { pool: WorkerPool; calls: { resets: number } } {
  const workers = [1, 2].map((i) => ({ pid: 4_194_300 + i, state: Lifecycle.Ready, statusName: 'ready', numExecs: 0, created: Date.now() }));
  const calls = { resets: 0 };
  const pool = {
    mode: 'exec',
    masterPid: null,
    isExtra: () => false,
    config: { debug: false },
    list: () => workers,
    reset: async () => void calls.resets++,
    addWorker: async () => undefined,
    removeWorker: async () => undefined,
  };
  return { pool: pool as unknown as WorkerPool, calls };
}

function configIn(dir: string, withHttp: boolean): Config {
  const file = path.join(dir, withHttp ? 'http.rr.yaml' : '.rr.yaml');
  const http = withHttp ? ['http:', '  address: 127.0.0.1:0'] : [];
  const lines = [
    "version: '3'",
    'server:',
    '  command: php never-started.php',
    'rpc:',
    '  listen: tcp://127.0.0.1:0',
    'status:',
    '  address: 127.0.0.1:0',
    'metrics:',
    '  address: 127.0.0.1:0',
    ...http,
  ];
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  return loadConfig({ configPath: file, workDir: dir, env: {} });
}

describe('RrtsServer: plugins found by their capabilities', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-server-test-'));
  const jobs = new FakeJobsPlugin();
  const httpPool = fakeHttpPool();
  let server: RrtsServer;
  let client: RpcClient;
  let status: string;
  let metrics: string;

  before(async () => {
    // no http section, so start() makes no PHP pool; the http plugin is added over a fake pool instead
    server = new RrtsServer(configIn(dir, false), logs);
    server.use(new HttpPlugin(configIn(dir, true).http!, httpPool.pool, silent));
    server.use(jobs);
    await server.start();
    client = await RpcClient.connect(server.rpc!.address, dir);
    status = `http://127.0.0.1:${server.status!.address!.port}`;
    metrics = `http://127.0.0.1:${server.metrics!.address!.port}`;
  });

  after(async () => {
    client?.close();
    await server?.stop(1000);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('serves the added plugins', () => {
    assert.equal(jobs.served, true);
  });

  it('informer.List and resetter.List name both', async () => {
    assert.deepEqual(await client.call('informer.List', true), ['http', 'jobs']);
    assert.deepEqual(await client.call('resetter.List', true), ['http', 'jobs']);
  });

  it('informer.Workers answers for each plugin from its own pool', async () => {
    const http = await client.call<{ workers: WorkerState[] }>('informer.Workers', 'http');
    assert.deepEqual(
      http.workers.map((w) => w.pid),
      [4_194_301, 4_194_302],
    );
    const ofJobs = await client.call<{ workers: WorkerState[] }>('informer.Workers', 'jobs');
    assert.deepEqual(
      ofJobs.workers.map((w) => [w.pid, w.statusStr, w.numExecs]),
      [[424242, 'working', 7]],
    );
  });

  it('informer.AddWorker/RemoveWorker and resetter.Reset reach the named plugin only', async () => {
    assert.equal(await client.call('informer.AddWorker', 'jobs'), true);
    assert.equal(await client.call('informer.RemoveWorker', 'jobs'), true);
    assert.equal(await client.call('resetter.Reset', 'jobs'), true);
    assert.deepEqual([jobs.added, jobs.removed, jobs.resets, httpPool.calls.resets], [1, 1, 1, 0]);
    assert.equal(await client.call('resetter.Reset', 'http'), true);
    assert.deepEqual([jobs.resets, httpPool.calls.resets], [1, 1]);
  });

  it('/health reports both; /ready is unavailable while one of them is not ready', async () => {
    const health = await fetch(`${status}/health`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), [
      { plugin_name: 'http', error_message: '', status_code: 200 },
      { plugin_name: 'jobs', error_message: '', status_code: 200 },
    ]);
    const ready = await fetch(`${status}/ready`);
    assert.equal(ready.status, 503);
    assert.deepEqual(await ready.json(), [
      { plugin_name: 'http', error_message: '', status_code: 200 },
      { plugin_name: 'jobs', error_message: 'internal server error, see logs', status_code: 503 },
    ]);
    const httpOnly = await fetch(`${status}/ready?plugin=http`);
    assert.equal(httpOnly.status, 200);
    await httpOnly.body?.cancel();
  });

  it('/metrics has the worker gauges of both', async () => {
    const text = await (await fetch(metrics)).text();
    assert.match(text, /^rr_http_total_workers 2$/m);
    assert.match(text, /^rr_jobs_total_workers 1$/m);
    assert.match(text, /^rr_jobs_workers_working 1$/m);
  });

  it('stop() stops the added plugin with what is left of the grace period', async () => {
    await server.stop(1000);
    assert.notEqual(jobs.stoppedWithGraceMs, null);
    assert.ok(jobs.stoppedWithGraceMs! <= 1000, String(jobs.stoppedWithGraceMs));
  });
});
