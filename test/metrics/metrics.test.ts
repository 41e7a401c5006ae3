// Unit tests of the metrics plugin and the http_metrics middleware: the exposition text over real HTTP on loopback,
// pool gauges from a fake pool, application metrics from config and from the `metrics.*` RPC methods.

import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { Registry } from 'prom-client';
import type { MetricsConfig } from '../../src/config/types.js';
import { ConfigError } from '../../src/errors.js';
import { HttpMetrics } from '../../src/metrics/http-middleware.js';
import { MetricsPlugin, parseCollector } from '../../src/metrics/plugin.js';
import type { WorkerPool } from '../../src/pool/pool.js';
import { stateName, WorkerState } from '../../src/worker/state.js';
import { capabilitiesOf } from '../support/pool-plugins.js';
import { sleep } from '../support/sleep.js';

const silent = pino({ level: 'silent' });

/** A pid that does not exist (above the default pid_max), so its memory reads as unknown. */
const GONE_PID = 4_194_400;

function fakePool(workers: Array<[number, WorkerState]>, mode: 'exec' | 'fork' = 'exec'): WorkerPool {
  const list = workers.map(([pid, state]) => ({ pid, state, statusName: stateName(state), numExecs: 0, created: Date.now() }));
  return { list: () => list, mode, masterPid: null, isExtra: () => false } as unknown as WorkerPool;
}

const started: MetricsPlugin[] = [];

function make(pools: Map<string, WorkerPool>, collect: Record<string, unknown> = {}): MetricsPlugin {
  const config: MetricsConfig = { address: '127.0.0.1:0', collect };
  const plugin = new MetricsPlugin(config, capabilitiesOf(pools), silent);
  started.push(plugin);
  return plugin;
}

async function serve(plugin: MetricsPlugin): Promise<string> {
  await plugin.serve();
  return `http://127.0.0.1:${plugin.address!.port}`;
}

after(async () => {
  await Promise.all(started.map((p) => p.stop()));
});

// --- a small Prometheus text-format reader

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
// Values are read with Go's ParseFloat, which takes NaN in any case (prom-client writes `Nan`).
const VALUE = '(?:[+-]?(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE][+-]?\\d+)?|[Nn][Aa][Nn]|[+-]Inf)';
const SAMPLE_LINE = new RegExp(`^(${NAME})(?:\\{((?:${LABEL})(?:,${LABEL})*)?,?\\})? (${VALUE})(?: -?\\d+)?$`);
const COMMENT_LINE = new RegExp(`^# (?:HELP (${NAME}) .*|TYPE (${NAME}) (counter|gauge|histogram|summary|untyped))$`);

function parseExposition(text: string): { samples: Sample[]; help: Set<string>; types: Map<string, string> } {
  assert.ok(text.endsWith('\n'), 'ends with a newline');
  const samples: Sample[] = [];
  const help = new Set<string>();
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const c = COMMENT_LINE.exec(line);
      assert.ok(c, `bad comment line: ${line}`);
      if (c[1]) help.add(c[1]);
      if (c[2]) types.set(c[2], c[3]!);
      continue;
    }
    const m = SAMPLE_LINE.exec(line);
    assert.ok(m, `bad sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    const raw = m[3]!;
    samples.push({ name: m[1]!, labels, value: raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : /^nan$/i.test(raw) ? NaN : Number(raw) });
  }
  return { samples, help, types };
}

function find(samples: Sample[], name: string, labels: Record<string, string> = {}): Sample[] {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = find(samples, name, labels);
  assert.ok(found.length <= 1, `${name} ${JSON.stringify(labels)} matches ${found.length} samples`);
  return found[0]?.value;
}

async function scrape(base: string, path = '/'): Promise<ReturnType<typeof parseExposition>> {
  const res = await fetch(`${base}${path}`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parseExposition(await res.text());
}

describe('MetricsPlugin: exposition and pool gauges', () => {
  const pools = new Map([
    [
      'http',
      fakePool([
        [process.pid, WorkerState.Ready],
        [GONE_PID, WorkerState.Working],
        [GONE_PID + 1, WorkerState.MaxJobsReached],
      ]),
    ],
  ]);

  it('serves valid Prometheus text with RoadRunner pool gauges', async () => {
    const base = await serve(make(pools));
    const { samples, help, types } = await scrape(base);
    assert.ok(help.has('rr_http_total_workers'));
    assert.equal(types.get('rr_http_total_workers'), 'gauge');
    assert.equal(types.get('rr_http_worker_state'), 'gauge');
    assert.equal(value(samples, 'rr_http_total_workers'), 3);
    assert.equal(value(samples, 'rr_http_workers_ready'), 1);
    assert.equal(value(samples, 'rr_http_workers_working'), 1);
    assert.equal(value(samples, 'rr_http_workers_invalid'), 1);
    assert.equal(value(samples, 'rr_http_worker_state', { state: 'ready', pid: String(process.pid) }), 0);
    assert.equal(value(samples, 'rr_http_worker_state', { state: 'working', pid: String(GONE_PID) }), 0);
    assert.equal(value(samples, 'rr_http_worker_state', { state: 'maxJobsReached', pid: String(GONE_PID + 1) }), 0);
    assert.equal(find(samples, 'rr_http_worker_state').length, 3);
    // memory: this process is a real one; the others are gone and count as 0
    const own = value(samples, 'rr_http_worker_memory_bytes', { pid: String(process.pid) });
    assert.ok(own !== undefined && own > 1024 * 1024, `own RSS ${own}`);
    assert.equal(value(samples, 'rr_http_worker_memory_bytes', { pid: String(GONE_PID) }), 0);
    assert.equal(value(samples, 'rr_http_workers_memory_bytes'), own);
    // rrts additions: USS/PSS only for workers whose memory could be read
    const uss = value(samples, 'rrts_worker_uss_bytes', { pool: 'http', pid: String(process.pid) });
    const pss = value(samples, 'rrts_worker_pss_bytes', { pool: 'http', pid: String(process.pid) });
    assert.ok(uss !== undefined && uss > 0 && uss <= own, `uss ${uss}`);
    assert.ok(pss !== undefined && pss >= uss, `pss ${pss}`);
    assert.equal(find(samples, 'rrts_worker_uss_bytes', { pid: String(GONE_PID) }).length, 0);
    // Node process metrics in the plugin's own registry
    assert.ok(value(samples, 'process_resident_memory_bytes')! > 0);
    assert.ok(find(samples, 'nodejs_heap_size_used_bytes').length === 1);
  });

  it('any path serves the metrics', async () => {
    const base = await serve(make(pools));
    for (const path of ['/', '/metrics', '/some/other/path?x=1']) {
      const { samples } = await scrape(base, path);
      assert.equal(value(samples, 'rr_http_total_workers'), 3, path);
    }
  });

  it('uses its own registry, not the global one', async () => {
    const { register } = await import('prom-client');
    const plugin = make(pools);
    assert.notEqual(plugin.registry, register);
    assert.equal(register.getSingleMetric('rrts_forks_total'), undefined);
  });

  it('gauges follow worker states and pools that come and go', async () => {
    const list: Array<{ pid: number; state: WorkerState; statusName: string }> = [];
    const live = new Map<string, WorkerPool>();
    const plugin = make(live);
    const base = await serve(plugin);
    let { samples } = await scrape(base);
    assert.equal(find(samples, 'rr_http_total_workers').length, 0);

    live.set('http', { list: () => list, mode: 'fork', masterPid: null, isExtra: () => false } as unknown as WorkerPool);
    list.push({ pid: GONE_PID, state: WorkerState.Ready, statusName: 'ready' });
    ({ samples } = await scrape(base));
    assert.equal(value(samples, 'rr_http_total_workers'), 1);
    assert.equal(value(samples, 'rr_http_workers_ready'), 1);
    // fork pools show the fork counters from 0
    assert.equal(value(samples, 'rrts_forks_total', { pool: 'http' }), 0);
    assert.equal(value(samples, 'rrts_master_restarts_total', { pool: 'http' }), 0);

    list[0]!.state = WorkerState.Working;
    list[0]!.statusName = 'working';
    ({ samples } = await scrape(base));
    assert.equal(value(samples, 'rr_http_workers_ready'), 0);
    assert.equal(value(samples, 'rr_http_workers_working'), 1);
    // the old state's series is gone
    assert.deepEqual(
      find(samples, 'rr_http_worker_state').map((s) => s.labels['state']),
      ['working'],
    );

    live.delete('http');
    ({ samples } = await scrape(base));
    assert.equal(find(samples, 'rr_http_total_workers').length, 0);
    assert.equal(find(samples, 'rr_http_worker_state').length, 0);
  });

  it('countFork, countMasterRestart, observeWorkerStart', async () => {
    const plugin = make(new Map([['http', fakePool([], 'fork')]]));
    plugin.countFork('http');
    plugin.countFork('http');
    plugin.countMasterRestart('http');
    plugin.observeWorkerStart('http', 'fork', 0.004);
    plugin.observeWorkerStart('http', 'exec', 0.3);
    const { samples, types } = parseExposition(await plugin.scrape());
    assert.equal(value(samples, 'rrts_forks_total', { pool: 'http' }), 2);
    assert.equal(value(samples, 'rrts_master_restarts_total', { pool: 'http' }), 1);
    assert.equal(types.get('rrts_worker_start_seconds'), 'histogram');
    assert.equal(value(samples, 'rrts_worker_start_seconds_count', { pool: 'http', mode: 'fork' }), 1);
    assert.equal(value(samples, 'rrts_worker_start_seconds_bucket', { pool: 'http', mode: 'fork', le: '0.005' }), 1);
    assert.equal(value(samples, 'rrts_worker_start_seconds_bucket', { pool: 'http', mode: 'exec', le: '0.25' }), 0);
    assert.equal(value(samples, 'rrts_worker_start_seconds_bucket', { pool: 'http', mode: 'exec', le: '0.5' }), 1);
  });

  it('stop() closes the server and the uptime timer', async () => {
    const plugin = make(pools);
    const base = await serve(plugin);
    const httpMetrics = plugin.httpMetrics();
    assert.equal(plugin.httpMetrics(), httpMetrics, 'one per plugin');
    assert.equal(httpMetrics.running, true);
    await scrape(base); // leaves a keep-alive connection open
    await plugin.stop();
    assert.equal(plugin.address, null);
    assert.equal(httpMetrics.running, false);
    await assert.rejects(fetch(base));
    await plugin.stop();
  });
});

describe('MetricsPlugin: application metrics', () => {
  const collect = {
    app_requests: { type: 'counter', help: 'Requests.', labels: ['type', 'code'] },
    app_memory: { type: 'gauge', help: 'Memory.' },
    app_latency: { type: 'histogram', help: 'Latency.', buckets: [0.1, 0.5, '1'] },
    app_sizes: { type: 'summary', help: 'Sizes.', objectives: [{ '0.5': 0.05 }, { '0.9': 0.01 }] },
    jobs: { type: 'counter', help: 'Jobs.', namespace: 'app', subsystem: 'queue' },
  };

  it('metrics.collect registers the collectors at start', async () => {
    const plugin = make(new Map(), collect);
    const { samples, types, help } = parseExposition(await plugin.scrape());
    assert.equal(types.get('app_requests'), 'counter');
    assert.equal(types.get('app_memory'), 'gauge');
    assert.equal(types.get('app_latency'), 'histogram');
    assert.equal(types.get('app_sizes'), 'summary');
    assert.equal(types.get('app_queue_jobs'), 'counter');
    assert.ok(help.has('app_queue_jobs'));
    assert.deepEqual(
      find(samples, 'app_latency_bucket').map((s) => s.labels['le']),
      ['0.1', '0.5', '1', '+Inf'],
    );
  });

  it('an unknown type fails start-up naming metrics.collect.<name>.type', () => {
    assert.throws(
      () => make(new Map(), { good: { type: 'gauge', help: 'x' }, bad_one: { type: 'meter', help: 'x' } }),
      (err: unknown) => err instanceof ConfigError && /metrics\.collect\.bad_one\.type/.test(err.message) && /meter/.test(err.message),
    );
    assert.throws(() => make(new Map(), { x: 'gauge' }), /metrics\.collect\.x\b/);
    assert.throws(() => make(new Map(), { x: { type: 'histogram', buckets: [1, 0.5] } }), /metrics\.collect\.x\.buckets.*increasing/);
    assert.throws(() => make(new Map(), { x: { type: 'gauge', labels: 'a' } }), /metrics\.collect\.x\.labels/);
    assert.throws(() => make(new Map(), { 'bad-name': { type: 'gauge' } }), /metrics\.collect\.bad-name/);
  });

  it('parseCollector reads the settings', () => {
    const fail = (field: string, message: string): never => {
      throw new Error(`${field}: ${message}`);
    };
    assert.deepEqual(parseCollector({ type: 'summary', objectives: { '0.99': 0.001, '0.5': 0.05 }, labels: ['a'] }, fail), {
      type: 'summary',
      help: '',
      labels: ['a'],
      buckets: [],
      quantiles: [0.5, 0.99],
      namespace: '',
      subsystem: '',
    });
    assert.throws(() => parseCollector({ type: 'summary', objectives: { '2': 0.1 } }, fail), /^Error: objectives: /);
    assert.throws(() => parseCollector({}, fail), /^Error: type: unknown collector type undefined/);
  });

  it('rpcService: Declare, Add, Sub, Set, Observe, Unregister', async () => {
    const plugin = make(new Map(), collect);
    const rpc = plugin.rpcService();
    assert.deepEqual(Object.keys(rpc).sort(), ['Add', 'Declare', 'Observe', 'Set', 'Sub', 'Unregister']);

    assert.equal(await rpc['Add']!({ name: 'app_requests', value: 2, labels: ['GET', '200'] }), true);
    assert.equal(await rpc['Add']!({ name: 'app_requests', value: 1.5, labels: ['GET', '200'] }), true);
    assert.equal(await rpc['Add']!({ name: 'app_requests', value: 1, labels: ['POST', '500'] }), true);
    assert.equal(await rpc['Set']!({ name: 'app_memory', value: 100 }), true);
    assert.equal(await rpc['Add']!({ name: 'app_memory', value: 5 }), true);
    assert.equal(await rpc['Sub']!({ name: 'app_memory', value: 25, labels: null }), true);
    assert.equal(await rpc['Observe']!({ name: 'app_latency', value: 0.3 }), true);
    assert.equal(await rpc['Observe']!({ name: 'app_latency', value: 2 }), true);
    assert.equal(await rpc['Observe']!({ name: 'app_sizes', value: 10 }), true);
    assert.equal(await rpc['Add']!({ name: 'jobs', value: 1 }), true);

    assert.equal(await rpc['Declare']!({ name: 'declared', collector: { type: 'gauge', help: 'At run time.', labels: ['worker'], namespace: 'php' } }), true);
    assert.equal(await rpc['Set']!({ name: 'declared', value: 7, labels: ['w1'] }), true);

    let { samples } = parseExposition(await plugin.scrape());
    assert.equal(value(samples, 'app_requests', { type: 'GET', code: '200' }), 3.5);
    assert.equal(value(samples, 'app_requests', { type: 'POST', code: '500' }), 1);
    assert.equal(value(samples, 'app_memory'), 80);
    assert.equal(value(samples, 'app_latency_count'), 2);
    assert.equal(value(samples, 'app_latency_sum'), 2.3);
    assert.equal(value(samples, 'app_latency_bucket', { le: '0.5' }), 1);
    assert.equal(value(samples, 'app_latency_bucket', { le: '+Inf' }), 2);
    assert.equal(value(samples, 'app_sizes', { quantile: '0.5' }), 10);
    assert.equal(value(samples, 'app_sizes_count'), 1);
    assert.equal(value(samples, 'app_queue_jobs'), 1);
    assert.equal(value(samples, 'php_declared', { worker: 'w1' }), 7);

    assert.equal(await rpc['Unregister']!('declared'), true);
    ({ samples } = parseExposition(await plugin.scrape()));
    assert.equal(find(samples, 'php_declared').length, 0);
    // the name is free again
    assert.equal(await rpc['Declare']!({ name: 'declared', collector: { type: 'counter', help: 'Again.' } }), true);
  });

  it("rpcService: errors like RoadRunner's", async () => {
    const plugin = make(new Map(), collect);
    const rpc = plugin.rpcService();
    await assert.rejects(rpc['Add']!({ name: 'missing', value: 1 }), /^MetricsError: metrics_plugin_add: undefined collector missing, try first Declare/);
    await assert.rejects(rpc['Sub']!({ name: 'missing', value: 1 }), /undefined collector missing$/);
    await assert.rejects(rpc['Set']!({ name: 'missing', value: 1 }), /undefined collector missing$/);
    await assert.rejects(rpc['Observe']!({ name: 'missing', value: 1 }), /undefined collector missing$/);
    await assert.rejects(rpc['Unregister']!('missing'), /metrics_plugin_unregister: undefined collector missing/);
    await assert.rejects(rpc['Observe']!({ name: 'app_memory', value: 1 }), /collector `app_memory` does not support method `Observe`/);
    await assert.rejects(rpc['Sub']!({ name: 'app_requests', value: 1, labels: ['a', 'b'] }), /does not support method `Sub`/);
    await assert.rejects(rpc['Set']!({ name: 'app_latency', value: 1 }), /does not support method `Set`/);
    await assert.rejects(rpc['Add']!({ name: 'app_requests', value: 1 }), /required labels for collector app_requests/);
    await assert.rejects(rpc['Add']!({ name: 'app_requests', value: 1, labels: ['GET'] }), /inconsistent label cardinality: expected 2 label values but got 1/);
    await assert.rejects(rpc['Add']!({ name: 'jobs', value: -1 }), /counter cannot decrease/);
    await assert.rejects(rpc['Add']!({ name: 'jobs', value: 'x' }), /value must be a number/);
    await assert.rejects(rpc['Add']!('jobs'), /expected \{"name"/);
    await assert.rejects(
      rpc['Declare']!({ name: 'app_memory', collector: { type: 'gauge', help: 'x' } }),
      /metrics_plugin_declare: tried to register existing collector with the name `app_memory`/,
    );
    await assert.rejects(rpc['Declare']!({ name: 'n', collector: { type: 'meter' } }), /metrics_plugin_declare: unknown collector type 'meter'/);
    await assert.rejects(
      rpc['Declare']!({ name: 'resident_memory_bytes', collector: { type: 'gauge', namespace: 'process' } }),
      /metrics_plugin_declare: a metric named process_resident_memory_bytes is already registered/,
    );
    // nothing changed by the failures
    const { samples } = parseExposition(await plugin.scrape());
    assert.equal(value(samples, 'app_queue_jobs'), 0);
  });
});

describe('HttpMetrics', () => {
  it('counts requests by status, their durations, the queue, no-free-workers', async () => {
    const registry = new Registry();
    const m = new HttpMetrics(registry);
    try {
      const end1 = m.begin();
      const end2 = m.begin();
      const end3 = m.begin();
      let { samples } = parseExposition(await registry.metrics());
      assert.equal(value(samples, 'rr_http_requests_queue'), 3);
      end1(200);
      end2(200);
      end2(200); // a second report of the same request is ignored
      end3(500);
      m.noFreeWorkers();
      const parsed = parseExposition(await registry.metrics());
      samples = parsed.samples;
      assert.equal(parsed.types.get('rr_http_request_duration_seconds'), 'histogram');
      assert.equal(parsed.types.get('rr_http_request_total'), 'counter');
      assert.equal(parsed.types.get('rr_http_uptime_seconds'), 'counter');
      assert.equal(value(samples, 'rr_http_requests_queue'), 0);
      assert.equal(value(samples, 'rr_http_request_total', { status: '200' }), 2);
      assert.equal(value(samples, 'rr_http_request_total', { status: '500' }), 1);
      assert.equal(value(samples, 'rr_http_request_duration_seconds_count', { status: '200' }), 2);
      // every request in +Inf; which smaller bucket depends on how long this process was descheduled meanwhile
      assert.equal(value(samples, 'rr_http_request_duration_seconds_bucket', { status: '200', le: '+Inf' }), 2);
      const sum = value(samples, 'rr_http_request_duration_seconds_sum', { status: '200' }) ?? -1;
      assert.ok(sum >= 0 && sum < 30, `durations in seconds, not milliseconds: sum ${sum}`);
      assert.deepEqual(
        find(samples, 'rr_http_request_duration_seconds_bucket', { status: '500' }).map((s) => s.labels['le']),
        ['0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '20', '30', '60', '+Inf'],
      );
      assert.equal(value(samples, 'rr_http_no_free_workers_total'), 1);
    } finally {
      m.stop();
    }
  });

  it('a slow request lands in the right bucket', async () => {
    const registry = new Registry();
    const m = new HttpMetrics(registry);
    try {
      const end = m.begin();
      await sleep(30);
      end(404);
      const { samples } = parseExposition(await registry.metrics());
      assert.equal(value(samples, 'rr_http_request_duration_seconds_bucket', { status: '404', le: '0.025' }), 0);
      assert.equal(value(samples, 'rr_http_request_duration_seconds_bucket', { status: '404', le: '0.1' }), 1);
      assert.ok(value(samples, 'rr_http_request_duration_seconds_sum', { status: '404' })! >= 0.029);
    } finally {
      m.stop();
    }
  });

  it('uptime counts seconds until stop()', async () => {
    const registry = new Registry();
    const m = new HttpMetrics(registry);
    await sleep(1150);
    m.stop();
    assert.equal(m.running, false);
    const first = value(parseExposition(await registry.metrics()).samples, 'rr_http_uptime_seconds');
    assert.equal(first, 1);
    await sleep(1100);
    assert.equal(value(parseExposition(await registry.metrics()).samples, 'rr_http_uptime_seconds'), 1, 'stopped');
  });
});
