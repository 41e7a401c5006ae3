// Unit tests of the status plugin: /health, /ready and /jobs over real HTTP on loopback, against fake pools that
// only have the list() the plugin reads.

import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import type { StatusConfig } from '../../src/config/types.js';
import type { WorkerPool } from '../../src/pool/pool.js';
import { readinessOf, statusOf } from '../../src/pool/capabilities.js';
import { SHUTTING_DOWN, StatusPlugin } from '../../src/status/plugin.js';
import { capabilitiesOf, poolPlugin } from '../support/pool-plugins.js';
import { stateName, WorkerState } from '../../src/worker/state.js';

interface FakeWorker {
  pid: number;
  state: WorkerState;
  statusName: string;
}

/** Only the fields the status plugin reads; the pool reads `workers` live, so tests can change states. */
function poolOf(workers: FakeWorker[]): WorkerPool {
  return { list: () => workers, mode: 'exec', masterPid: null, isExtra: () => false } as unknown as WorkerPool;
}

function fakePool(...states: WorkerState[]): WorkerPool {
  return poolOf(states.map((state, i) => ({ pid: 1000 + i, state, statusName: stateName(state) })));
}

function memoryLogger(): { log: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { log, lines };
}

const started: StatusPlugin[] = [];

async function start(
  pools: Record<string, WorkerPool>,
  config: Partial<StatusConfig> = {},
): Promise<{ plugin: StatusPlugin; base: string; lines: Array<Record<string, unknown>> }> {
  const { log, lines } = memoryLogger();
  const map = new Map(Object.entries(pools));
  const plugin = new StatusPlugin({ address: '127.0.0.1:0', unavailableStatusCode: 503, checkTimeout: 60, ...config }, capabilitiesOf(map), log);
  await plugin.serve();
  started.push(plugin);
  return { plugin, base: `http://127.0.0.1:${plugin.address!.port}`, lines };
}

async function get(url: string): Promise<{ status: number; text: string; type: string | null }> {
  const res = await fetch(url);
  return { status: res.status, text: await res.text(), type: res.headers.get('content-type') };
}

after(async () => {
  await Promise.all(started.map((p) => p.stop()));
});

describe('statusOf / readinessOf', () => {
  it('a pool is alive with a ready or working worker, ready only with a ready one', () => {
    assert.equal(statusOf(fakePool(WorkerState.Ready)), 200);
    assert.equal(statusOf(fakePool(WorkerState.Working)), 200);
    assert.equal(statusOf(fakePool(WorkerState.Invalid, WorkerState.Working)), 200);
    assert.equal(statusOf(fakePool()), 503);
    assert.equal(statusOf(fakePool(WorkerState.Invalid, WorkerState.Stopping, WorkerState.Inactive)), 503);
    assert.equal(readinessOf(fakePool(WorkerState.Ready, WorkerState.Working)), 200);
    assert.equal(readinessOf(fakePool(WorkerState.Working, WorkerState.Working)), 503);
    assert.equal(readinessOf(fakePool()), 503);
  });
});

describe('StatusPlugin', () => {
  it('GET /health: 200 and a JSON report when a worker is ready', async () => {
    const { base } = await start({ http: fakePool(WorkerState.Ready) });
    const r = await get(`${base}/health?plugin=http`);
    assert.equal(r.status, 200);
    assert.match(r.type ?? '', /application\/json/);
    assert.deepEqual(JSON.parse(r.text), [{ plugin_name: 'http', error_message: '', status_code: 200 }]);
    assert.equal(r.text, '[{"plugin_name":"http","error_message":"","status_code":200}]');
  });

  it('GET /health: 503 when the pool has no ready or working worker', async () => {
    const { base } = await start({ http: fakePool() });
    const r = await get(`${base}/health?plugin=http`);
    assert.equal(r.status, 503);
    assert.deepEqual(JSON.parse(r.text), [{ plugin_name: 'http', error_message: 'internal server error, see logs', status_code: 503 }]);
    const invalid = await start({ http: fakePool(WorkerState.Invalid, WorkerState.Stopped) });
    assert.equal((await get(`${invalid.base}/health?plugin=http`)).status, 503);
  });

  it('GET /ready: 503 when every worker is busy, while /health stays 200', async () => {
    const workers = [WorkerState.Working, WorkerState.Working].map((state, i) => ({ pid: 1000 + i, state, statusName: stateName(state) }));
    const { base } = await start({ http: poolOf(workers) });
    const ready = await get(`${base}/ready?plugin=http`);
    assert.equal(ready.status, 503);
    assert.deepEqual(JSON.parse(ready.text), [{ plugin_name: 'http', error_message: 'internal server error, see logs', status_code: 503 }]);
    assert.equal((await get(`${base}/health?plugin=http`)).status, 200);
    // a worker comes free: ready again, read live on every request
    workers[1]!.state = WorkerState.Ready;
    const again = await get(`${base}/ready?plugin=http`);
    assert.equal(again.status, 200);
    assert.deepEqual(JSON.parse(again.text), [{ plugin_name: 'http', error_message: '', status_code: 200 }]);
  });

  it('plugin= picks the pools to check; without it every pool is checked', async () => {
    const { base } = await start({ http: fakePool(WorkerState.Ready), jobs: fakePool() });
    const one = await get(`${base}/health?plugin=http`);
    assert.equal(one.status, 200);
    assert.deepEqual(JSON.parse(one.text), [{ plugin_name: 'http', error_message: '', status_code: 200 }]);

    const all = await get(`${base}/health`);
    assert.equal(all.status, 503);
    assert.deepEqual(
      (JSON.parse(all.text) as Array<{ plugin_name: string; status_code: number }>).map((r) => [r.plugin_name, r.status_code]),
      [
        ['http', 200],
        ['jobs', 503],
      ],
    );

    const both = await get(`${base}/ready?plugin=jobs&plugin=http`);
    assert.equal(both.status, 503);
    assert.deepEqual(
      (JSON.parse(both.text) as Array<{ plugin_name: string }>).map((r) => r.plugin_name),
      ['jobs', 'http'],
    );
  });

  it('a plugin whose check fails (its workers in a process that is gone) counts as unavailable, and the error is logged', async () => {
    const { log, lines } = memoryLogger();
    const broken = { name: 'jobs', status: () => Promise.reject(new Error('worker process 4242 is gone')), ready: async () => 200 };
    const healthy = poolPlugin('http', fakePool(WorkerState.Ready));
    const plugin = new StatusPlugin({ address: '127.0.0.1:0', unavailableStatusCode: 503, checkTimeout: 60 }, { withStatus: () => [healthy, broken] }, log);
    await plugin.serve();
    started.push(plugin);
    const r = await get(`http://127.0.0.1:${plugin.address!.port}/health`);
    assert.equal(r.status, 503);
    assert.deepEqual(JSON.parse(r.text), [
      { plugin_name: 'http', error_message: '', status_code: 200 },
      { plugin_name: 'jobs', error_message: 'internal server error, see logs', status_code: 503 },
    ]);
    assert.ok(
      lines.some((l) => l['plugin'] === 'jobs' && l['level'] === 50 && l['err'] === 'worker process 4242 is gone'),
      JSON.stringify(lines),
    );
  });

  it('unknown plugin names are skipped and logged at debug', async () => {
    const { base, lines } = await start({ http: fakePool(WorkerState.Ready) });
    const r = await get(`${base}/health?plugin=nope&plugin=http`);
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.text), [{ plugin_name: 'http', error_message: '', status_code: 200 }]);
    const only = await get(`${base}/ready?plugin=nope`);
    assert.equal(only.status, 200);
    assert.equal(only.text, '[]');
    const logged = lines.filter((l) => l['plugin'] === 'nope');
    assert.equal(logged.length, 2);
    assert.ok(
      logged.every((l) => l['level'] === 20),
      'debug level',
    );
  });

  it('unavailable_status_code is used for the response and the report', async () => {
    const { base } = await start({ http: fakePool(WorkerState.Working) }, { unavailableStatusCode: 500 });
    const r = await get(`${base}/ready?plugin=http`);
    assert.equal(r.status, 500);
    assert.deepEqual(JSON.parse(r.text), [{ plugin_name: 'http', error_message: 'internal server error, see logs', status_code: 500 }]);
    const jobs = await get(`${base}/jobs`);
    assert.equal(jobs.status, 500);
  });

  it("GET /jobs without a jobs plugin: unavailable, with RoadRunner's JSON body", async () => {
    const { base } = await start({ http: fakePool(WorkerState.Ready) });
    const r = await get(`${base}/jobs`);
    assert.equal(r.status, 503);
    assert.match(r.type ?? '', /application\/json/);
    assert.deepEqual(JSON.parse(r.text), { error_message: 'jobs plugin not found' });
  });

  it('other paths: 404', async () => {
    const { base } = await start({ http: fakePool(WorkerState.Ready) });
    assert.equal((await get(`${base}/`)).status, 404);
    assert.equal((await get(`${base}/healthz`)).status, 404);
  });

  it('after shuttingDown(): /health 200, /ready and /jobs unavailable, all with "service is shutting down"', async () => {
    const { plugin, base } = await start({ http: fakePool(WorkerState.Ready) }, { unavailableStatusCode: 502 });
    plugin.shuttingDown();
    const health = await get(`${base}/health?plugin=http`);
    assert.equal(health.status, 200);
    assert.equal(health.text.trim(), SHUTTING_DOWN);
    assert.equal(SHUTTING_DOWN, 'service is shutting down');
    assert.match(health.type ?? '', /text\/plain/);
    const ready = await get(`${base}/ready?plugin=http`);
    assert.equal(ready.status, 502);
    assert.equal(ready.text.trim(), SHUTTING_DOWN);
    const jobs = await get(`${base}/jobs`);
    assert.equal(jobs.status, 502);
    assert.equal(jobs.text.trim(), SHUTTING_DOWN);
  });

  it('with the default 503', async () => {
    const { plugin, base } = await start({ http: fakePool(WorkerState.Ready) });
    plugin.shuttingDown();
    assert.equal((await get(`${base}/ready`)).status, 503);
    assert.equal((await get(`${base}/jobs`)).status, 503);
    assert.equal((await get(`${base}/health`)).status, 200);
  });

  it('":port" listens on all interfaces', async () => {
    const { plugin } = await start({ http: fakePool(WorkerState.Ready) }, { address: ':0' });
    assert.ok(['::', '0.0.0.0'].includes(plugin.address!.address), plugin.address!.address);
    const r = await get(`http://127.0.0.1:${plugin.address!.port}/health`);
    assert.equal(r.status, 200);
  });

  it('stop() closes the server, keep-alive connections included', async () => {
    const { log } = memoryLogger();
    const map = new Map([['http', fakePool(WorkerState.Ready)]]);
    const plugin = new StatusPlugin({ address: '127.0.0.1:0', unavailableStatusCode: 503, checkTimeout: 1 }, capabilitiesOf(map), log);
    await plugin.serve();
    const base = `http://127.0.0.1:${plugin.address!.port}`;
    assert.equal((await get(`${base}/health`)).status, 200);
    await plugin.stop();
    assert.equal(plugin.address, null);
    await assert.rejects(fetch(`${base}/health`));
    await plugin.stop(); // twice is fine
  });

  it('a taken address fails serve()', async () => {
    const { plugin } = await start({});
    const { log } = memoryLogger();
    const second = new StatusPlugin(
      { address: `127.0.0.1:${plugin.address!.port}`, unavailableStatusCode: 503, checkTimeout: 60 },
      capabilitiesOf(new Map()),
      log,
    );
    await assert.rejects(second.serve(), /EADDRINUSE/);
  });
});
