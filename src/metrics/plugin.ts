// The metrics plugin (docs/compatibility.md §1.12, §4.2, §5): a Prometheus registry served as text on every path of
// metrics.address, holding the process metrics, the worker gauges of every plugin that has workers (HasWorkers) under
// RoadRunner's names (read when scraped), rrts's own spawn metrics, and the application's metrics declared in config
// or over RPC (`metrics.*`).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { AggregatorRegistry, collectDefaultMetrics, Counter, Gauge, Histogram, Registry, Summary } from 'prom-client';
import type { MetricsConfig } from '../config/types.js';
import { ConfigError, MetricsError } from '../errors.js';
import { closeNow, listenOnAddress, refuseMalformedRequests } from '../listen.js';
import type { Capabilities, Plugin, WorkerState } from '../plugin.js';
import { HttpMetrics } from './http-middleware.js';

export type CollectorType = 'counter' | 'gauge' | 'histogram' | 'summary';

/** One application metric's settings: `metrics.collect.<name>`, or the `collector` of `metrics.Declare`. */
export interface CollectorSpec {
  type: CollectorType;
  help: string;
  /** label names; values arrive over RPC in this order */
  labels: string[];
  /** histogram only; empty = the default buckets */
  buckets: number[];
  /** summary only: the quantiles to report (the keys of RoadRunner's `objectives`; the error margins are not used) */
  quantiles: number[];
  namespace: string;
  subsystem: string;
}

type AppMetric = Counter<string> | Gauge<string> | Histogram<string> | Summary<string>;

interface AppCollector {
  spec: CollectorSpec;
  /** the name as exposed: namespace_subsystem_name */
  fullName: string;
  metric: AppMetric;
}

type Operation = 'Add' | 'Sub' | 'Observe' | 'Set';

/** Which collector types each value operation works on (RoadRunner's rpc.go). */
const SUPPORTS: Readonly<Record<Operation, readonly CollectorType[]>> = {
  Add: ['counter', 'gauge'],
  Sub: ['gauge'],
  Observe: ['histogram', 'summary'],
  Set: ['gauge'],
};

const OP_NAME: Readonly<Record<Operation | 'Declare' | 'Unregister', string>> = {
  Add: 'metrics_plugin_add',
  Sub: 'metrics_plugin_sub',
  Observe: 'metrics_plugin_observe',
  Set: 'metrics_plugin_set',
  Declare: 'metrics_plugin_declare',
  Unregister: 'metrics_plugin_unregister',
};

const TYPES: readonly CollectorType[] = ['counter', 'gauge', 'histogram', 'summary'];

/** Fork starts take milliseconds, exec starts hundreds of them: buckets that separate the two. */
const WORKER_START_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Counted the same in every process (a clock): summed, they would grow N times too fast. */
const MAX_ACROSS_PROCESSES = new Set(['rr_http_uptime_seconds']);

/** Go client's summary window (DefMaxAge 10 min, DefAgeBuckets 5). */
const SUMMARY_WINDOW = { maxAgeSeconds: 600, ageBuckets: 5 };

export class MetricsPlugin implements Plugin {
  readonly name = 'metrics';
  private readonly reg = new Registry();
  private server: http.Server | null = null;
  private readonly app = new Map<string, AppCollector>();
  /** pool name -> the metric names registered for it */
  private readonly poolMetrics = new Map<string, string[]>();
  /** one workers() per pool per scrape, shared by all the gauges that read it */
  private readonly snapshots = new Map<string, Promise<WorkerState[]>>();
  private readonly forks: Counter<'pool'>;
  private readonly masterRestarts: Counter<'pool'>;
  private readonly workerStart: Histogram<'pool' | 'mode'>;
  private httpMetricsOwned: HttpMetrics | null = null;

  /** Registers the process metrics and the `metrics.collect` collectors; a bad collector throws a ConfigError. */
  constructor(
    private readonly config: MetricsConfig,
    private readonly plugins: Pick<Capabilities, 'withWorkers' | 'withMetrics'>,
    private readonly log: Logger,
  ) {
    collectDefaultMetrics({ register: this.reg });
    const registers = [this.reg];
    this.forks = new Counter({ name: 'rrts_forks_total', help: 'Workers forked by the pool master (fork mode).', labelNames: ['pool'], registers });
    this.masterRestarts = new Counter({
      name: 'rrts_master_restarts_total',
      help: 'Times the pool master was restarted after it died (fork mode).',
      labelNames: ['pool'],
      registers,
    });
    this.workerStart = new Histogram({
      name: 'rrts_worker_start_seconds',
      help: 'Time from asking for a worker to its first ready state.',
      labelNames: ['pool', 'mode'],
      buckets: WORKER_START_BUCKETS,
      registers,
    });
    const uss: Gauge<'pool' | 'pid'> = new Gauge({
      name: 'rrts_worker_uss_bytes',
      help: "Worker's unique set size: memory only this worker uses.",
      labelNames: ['pool', 'pid'],
      registers,
      collect: () => this.collectPerWorker(uss, (w) => w.uss),
    });
    const pss: Gauge<'pool' | 'pid'> = new Gauge({
      name: 'rrts_worker_pss_bytes',
      help: "Worker's proportional set size: its own memory plus its share of memory shared with other processes.",
      labelNames: ['pool', 'pid'],
      registers,
      collect: () => this.collectPerWorker(pss, (w) => w.pss),
    });
    const dynamic: Gauge<'pool'> = new Gauge({
      name: 'rrts_dynamic_workers',
      help: 'Workers pool.dynamic_allocator runs beyond num_workers (counted in rr_<pool>_total_workers too).',
      labelNames: ['pool'],
      registers,
      collect: async () => {
        const names = [...this.poolMetrics.keys()];
        const all = await Promise.all(names.map((name) => this.workersOf(name)));
        dynamic.reset();
        names.forEach((pool, i) => dynamic.set({ pool }, (all[i] ?? []).filter((w) => w.dynamic === true).length));
      },
    });
    for (const [name, raw] of Object.entries(config.collect)) {
      const key = `metrics.collect.${name}`;
      const spec = parseCollector(raw, (field, message) => {
        throw new ConfigError(message, { key: field ? `${key}.${field}` : key });
      });
      try {
        this.declare(name, spec);
      } catch (err) {
        throw new ConfigError((err as Error).message, { key });
      }
    }
  }

  /** The registry (not prom-client's global one); other plugins register their metrics here. */
  get registry(): Registry {
    return this.reg;
  }

  /** The bound address (useful with port 0). */
  get address(): AddressInfo | null {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a : null;
  }

  async serve(): Promise<void> {
    this.syncPools();
    const server = http.createServer({ requestTimeout: 120_000, headersTimeout: 120_000, keepAliveTimeout: 60_000, maxHeaderSize: 1 << 20 }, (_req, res) => {
      this.scrape().then(
        (text) => {
          res.writeHead(200, { 'Content-Type': this.reg.contentType, 'Content-Length': Buffer.byteLength(text) });
          res.end(text);
        },
        (err: unknown) => {
          this.log.error({ err: (err as Error).message }, 'metrics scrape failed');
          res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
          res.end(`An error has occurred while serving metrics:\n\n${(err as Error).message}\n`);
        },
      );
    });
    refuseMalformedRequests(server, this.log, 'metrics');
    await listenOnAddress(server, this.config.address);
    this.server = server;
    this.log.debug({ address: this.config.address }, 'metrics server was started');
  }

  /** Close the server and every connection, and stop the http_metrics uptime clock. */
  async stop(): Promise<void> {
    this.httpMetricsOwned?.stop();
    const server = this.server;
    if (!server) return;
    this.server = null;
    await closeNow(server);
  }

  /**
   * The exposition text, with gauges for pools that appeared since the last scrape, and the metrics of plugins in
   * other processes (HasMetrics) summed across them.
   */
  async scrape(): Promise<string> {
    this.syncPools();
    const own = await this.reg.metrics();
    const remote = (await Promise.all((this.plugins.withMetrics?.() ?? []).map((p) => p.metricsJson()))).flat();
    if (remote.length === 0) return own;
    for (const metrics of remote) {
      for (const m of metrics) if (MAX_ACROSS_PROCESSES.has(m.name)) (m as { aggregator: string }).aggregator = 'max';
    }
    const summed = await AggregatorRegistry.aggregate(remote).metrics();
    return summed === '' ? own : `${own}${own.endsWith('\n') ? '' : '\n'}${summed}`;
  }

  /** The `http_metrics` middleware's metrics, created on first use in this registry and stopped with the plugin. */
  httpMetrics(): HttpMetrics {
    this.httpMetricsOwned ??= new HttpMetrics(this.reg);
    return this.httpMetricsOwned;
  }

  /** A fork-mode pool's master forked a worker. */
  countFork(pool: string): void {
    this.forks.inc({ pool });
  }

  /** A fork-mode pool's master died and was started again. */
  countMasterRestart(pool: string): void {
    this.masterRestarts.inc({ pool });
  }

  /** A worker took `seconds` from spawn (or fork request) to ready. */
  observeWorkerStart(pool: string, mode: string, seconds: number): void {
    this.workerStart.observe({ pool, mode }, seconds);
  }

  /**
   * RoadRunner's `metrics` RPC service by method name (`Add`, `Sub`, `Observe`, `Set`, `Declare`, `Unregister`), for
   * `rpc.register('metrics', …)`; every method resolves to true or rejects with a MetricsError.
   */
  rpcService(): Record<string, (arg: unknown) => Promise<unknown>> {
    return {
      Add: async (arg) => this.apply('Add', arg),
      Sub: async (arg) => this.apply('Sub', arg),
      Observe: async (arg) => this.apply('Observe', arg),
      Set: async (arg) => this.apply('Set', arg),
      Declare: async (arg) => {
        const { name, collector } = parseDeclare(arg);
        const spec = parseCollector(collector, (_field, message) => {
          throw new MetricsError(`${OP_NAME.Declare}: ${message}`);
        });
        try {
          this.declare(name, spec);
        } catch (err) {
          throw new MetricsError(`${OP_NAME.Declare}: ${(err as Error).message}`);
        }
        this.log.debug({ name, type: spec.type, namespace: spec.namespace }, 'metric successfully added');
        return true;
      },
      Unregister: async (arg) => {
        const name = typeof arg === 'string' ? arg : String((arg as { name?: unknown } | null)?.name ?? '');
        const c = this.app.get(name);
        if (!c) throw new MetricsError(`${OP_NAME.Unregister}: undefined collector ${name}`);
        this.app.delete(name);
        this.reg.removeSingleMetric(c.fullName);
        this.log.debug({ name }, 'collector was successfully unregistered');
        return true;
      },
    };
  }

  // --- application metrics

  private declare(name: string, spec: CollectorSpec): void {
    if (this.app.has(name)) throw new MetricsError(`tried to register existing collector with the name \`${name}\``);
    const fullName = appMetricName(name, spec);
    if (this.reg.getSingleMetric(fullName)) throw new MetricsError(`a metric named ${fullName} is already registered`);
    this.app.set(name, { spec, fullName, metric: createAppMetric(fullName, spec, [this.reg]) });
  }

  private apply(op: Operation, arg: unknown): true {
    const m = parseMetric(arg, OP_NAME[op]);
    const c = this.app.get(m.name);
    if (!c) {
      const hint = op === 'Add' ? ', try first Declare the desired collector' : '';
      this.log.error({ collector: m.name }, 'undefined collector');
      throw new MetricsError(`${OP_NAME[op]}: undefined collector ${m.name}${hint}`);
    }
    if (!SUPPORTS[op].includes(c.spec.type)) throw new MetricsError(`${OP_NAME[op]}: collector \`${m.name}\` does not support method \`${op}\``);
    const labels = labelsFor(c, m, OP_NAME[op]);
    try {
      switch (op) {
        case 'Add':
          if (c.spec.type === 'counter' && m.value < 0) throw new Error('counter cannot decrease in value');
          (c.metric as Counter<string> | Gauge<string>).inc(labels, m.value);
          break;
        case 'Sub':
          (c.metric as Gauge<string>).dec(labels, m.value);
          break;
        case 'Observe':
          (c.metric as Histogram<string> | Summary<string>).observe(labels, m.value);
          break;
        case 'Set':
          (c.metric as Gauge<string>).set(labels, m.value);
          break;
      }
    } catch (err) {
      throw new MetricsError(`${OP_NAME[op]}: ${(err as Error).message}`);
    }
    return true;
  }

  // --- pool gauges

  /** Register RoadRunner's seven gauges for pools that appeared, and drop those of pools that are gone. */
  private syncPools(): void {
    const pools = this.plugins.withWorkers();
    for (const { name, workerMode } of pools) {
      if (this.poolMetrics.has(name)) continue;
      this.poolMetrics.set(name, this.registerPoolGauges(name));
      if (workerMode === 'fork') {
        // show the counters at 0 from the start, so rate() has a baseline
        this.forks.inc({ pool: name }, 0);
        this.masterRestarts.inc({ pool: name }, 0);
      }
    }
    for (const [name, metricNames] of this.poolMetrics) {
      if (pools.some((p) => p.name === name)) continue;
      for (const metricName of metricNames) this.reg.removeSingleMetric(metricName);
      this.poolMetrics.delete(name);
    }
  }

  private registerPoolGauges(pool: string): string[] {
    const prefix = `rr_${pool.replace(/[^a-zA-Z0-9_]/g, '_')}`;
    const title = pool.toUpperCase();
    const registers = [this.reg];
    const workers = (): Promise<WorkerState[]> => this.workersOf(pool);
    const scalar = (suffix: string, help: string, value: (ws: WorkerState[]) => number): Gauge => {
      const g: Gauge = new Gauge({
        name: `${prefix}_${suffix}`,
        help,
        registers,
        collect: async () => g.set(value(await workers())),
      });
      return g;
    };
    const count = (ws: WorkerState[], state: string): number => ws.filter((w) => w.statusStr === state).length;
    const gauges: Gauge<string>[] = [
      scalar('total_workers', `Total number of workers used by the ${title} plugin`, (ws) => ws.length),
      scalar('workers_memory_bytes', `Memory usage by ${title} workers.`, (ws) => ws.reduce((sum, w) => sum + w.memoryUsage, 0)),
      scalar('workers_ready', `${title} workers currently in ready state`, (ws) => count(ws, 'ready')),
      scalar('workers_working', `${title} workers currently in working state`, (ws) => count(ws, 'working')),
      scalar(
        'workers_invalid',
        `${title} workers currently in invalid,killing,destroyed,errored,inactive states`,
        (ws) => ws.length - count(ws, 'ready') - count(ws, 'working'),
      ),
    ];
    const memory: Gauge<'pid'> = new Gauge({
      name: `${prefix}_worker_memory_bytes`,
      help: 'Worker current memory usage',
      labelNames: ['pid'],
      registers,
      collect: async () => {
        const ws = await workers();
        memory.reset();
        for (const w of ws) memory.set({ pid: String(w.pid) }, w.memoryUsage);
      },
    });
    const state: Gauge<'state' | 'pid'> = new Gauge({
      name: `${prefix}_worker_state`,
      help: 'Worker current state',
      labelNames: ['state', 'pid'],
      registers,
      collect: async () => {
        const ws = await workers();
        state.reset();
        for (const w of ws) state.set({ state: w.statusStr, pid: String(w.pid) }, 0);
      },
    });
    gauges.push(memory, state);
    return gauges.map((g) => (g as unknown as { name: string }).name);
  }

  /** USS/PSS per worker of every pool; workers whose memory could not be read are left out rather than shown as 0. */
  private async collectPerWorker(gauge: Gauge<'pool' | 'pid'>, value: (w: WorkerState) => number): Promise<void> {
    const names = [...this.poolMetrics.keys()];
    const all = await Promise.all(names.map((name) => this.workersOf(name)));
    gauge.reset();
    names.forEach((pool, i) => {
      for (const w of all[i] ?? []) {
        const v = value(w);
        if (v > 0) gauge.set({ pool, pid: String(w.pid) }, v);
      }
    });
  }

  /** The pool's workers as of this scrape: every gauge's collect() starts in the same tick, so they share one read. */
  private workersOf(name: string): Promise<WorkerState[]> {
    let snapshot = this.snapshots.get(name);
    if (!snapshot) {
      const plugin = this.plugins.withWorkers().find((p) => p.name === name);
      snapshot = plugin ? plugin.workers().catch(() => []) : Promise.resolve([]);
      this.snapshots.set(name, snapshot);
      void snapshot.finally(() => this.snapshots.delete(name));
    }
    return snapshot;
  }
}

/** The name a collector is exposed under: namespace_subsystem_name. */
export function appMetricName(name: string, spec: CollectorSpec): string {
  return [spec.namespace, spec.subsystem, name].filter((part) => part !== '').join('_');
}

/** The prom-client metric of a collector; throws prom-client's error for a bad metric or label name. */
export function createAppMetric(fullName: string, spec: CollectorSpec, registers: Registry[]): AppMetric {
  const base = { name: fullName, help: spec.help || fullName, labelNames: spec.labels, registers };
  switch (spec.type) {
    case 'counter':
      return new Counter(base);
    case 'gauge':
      return new Gauge(base);
    case 'histogram':
      return new Histogram(spec.buckets.length > 0 ? { ...base, buckets: spec.buckets } : base);
    case 'summary':
      return new Summary(spec.quantiles.length > 0 ? { ...base, percentiles: spec.quantiles, ...SUMMARY_WINDOW } : { ...base, percentiles: [] });
  }
}

// --- argument and config parsing (pure)

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describeValue(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'string' ? `'${v}'` : typeof v === 'object' ? 'a map' : String(v);
}

function toNumber(v: unknown): number | null {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return null;
}

/**
 * Read one collector's settings. `fail(field, message)` must throw; `field` is the key under the collector
 * (`type`, `labels`, …) or '' for the collector itself.
 */
export function parseCollector(raw: unknown, fail: (field: string, message: string) => never): CollectorSpec {
  if (!isMap(raw)) return fail('', `expected a map with type, help, labels, …, got ${describeValue(raw)}`);
  const type = raw['type'];
  if (typeof type !== 'string' || !(TYPES as readonly string[]).includes(type)) {
    return fail('type', `unknown collector type ${describeValue(type)}, expected counter, gauge, histogram or summary`);
  }
  const text = (field: string): string => {
    const v = raw[field];
    if (v === undefined || v === null) return '';
    if (typeof v !== 'string') return fail(field, `expected a string, got ${describeValue(v)}`);
    return v;
  };
  const list = (field: string): unknown[] => {
    const v = raw[field];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) return fail(field, `expected a list, got ${describeValue(v)}`);
    return v;
  };
  const labels = list('labels').map((l) => (typeof l === 'string' ? l : fail('labels', `expected label names (strings), got ${describeValue(l)}`)));
  const buckets = list('buckets').map((b) => toNumber(b) ?? fail('buckets', `expected numbers, got ${describeValue(b)}`));
  for (let i = 1; i < buckets.length; i++) {
    if (buckets[i]! <= buckets[i - 1]!) fail('buckets', `buckets must be in increasing order, got ${buckets.join(', ')}`);
  }
  return {
    type: type as CollectorType,
    help: text('help'),
    labels,
    buckets,
    // other types do not use objectives (RoadRunner's samples up to 2024 set them on a histogram, with quantiles over 1)
    quantiles: type === 'summary' ? parseObjectives(raw['objectives'], (message) => fail('objectives', message)) : [],
    namespace: text('namespace'),
    subsystem: text('subsystem'),
  };
}

/** Objectives as a map `{0.5: 0.05, 0.9: 0.01}` or a list of such one-entry maps; returns the quantiles, sorted. */
function parseObjectives(raw: unknown, fail: (message: string) => never): number[] {
  if (raw === undefined || raw === null) return [];
  let entries: string[];
  if (isMap(raw)) entries = Object.keys(raw);
  else if (Array.isArray(raw))
    entries = raw.flatMap((item) => (isMap(item) ? Object.keys(item) : fail(`expected maps of quantile: error, got ${describeValue(item)}`)));
  else return fail(`expected a map of quantile: error, got ${describeValue(raw)}`);
  const quantiles = entries.map((k) => {
    const q = toNumber(k);
    return q !== null && q >= 0 && q <= 1 ? q : fail(`quantiles must be from 0 to 1, got ${k}`); // Prometheus: 0 ≤ φ ≤ 1
  });
  return [...new Set(quantiles)].sort((a, b) => a - b);
}

interface MetricValue {
  name: string;
  value: number;
  labels: string[];
}

function parseMetric(arg: unknown, op: string): MetricValue {
  if (!isMap(arg) || typeof arg['name'] !== 'string') throw new MetricsError(`${op}: expected {"name", "value", "labels"}, got ${describeValue(arg)}`);
  const value = arg['value'] ?? 0;
  if (typeof value !== 'number') throw new MetricsError(`${op}: value must be a number, got ${describeValue(value)}`);
  const labels = arg['labels'] ?? [];
  if (!Array.isArray(labels) || !labels.every((l) => typeof l === 'string')) {
    throw new MetricsError(`${op}: labels must be a list of label values (strings), got ${describeValue(labels)}`);
  }
  return { name: arg['name'], value, labels };
}

function parseDeclare(arg: unknown): { name: string; collector: unknown } {
  if (!isMap(arg) || typeof arg['name'] !== 'string' || arg['name'] === '') {
    throw new MetricsError(`${OP_NAME.Declare}: expected {"name", "collector": {…}}, got ${describeValue(arg)}`);
  }
  return { name: arg['name'], collector: arg['collector'] };
}

/** Label values by name, in the declared order; collectors without labels ignore any given (as RoadRunner does). */
function labelsFor(c: AppCollector, m: MetricValue, op: string): Record<string, string> {
  const names = c.spec.labels;
  if (names.length === 0) return {};
  if (m.labels.length === 0) throw new MetricsError(`${op}: required labels for collector ${m.name}`);
  if (m.labels.length !== names.length) {
    const got = `${m.labels.length} in ${JSON.stringify(m.labels)}`;
    throw new MetricsError(`${op}: inconsistent label cardinality: expected ${names.length} label values but got ${got}`);
  }
  return Object.fromEntries(names.map((n, i) => [n, m.labels[i]!]));
}
