// The plugin shape (RoadRunner's Name/Serve/Stop) and the small optional capabilities other plugins look for: the
// informer and metrics read HasWorkers, the resetter Resettable, the status plugin HasStatus (docs/architecture.md).
// Capabilities are async so a plugin's workers may live in another process and answer through a proxy.
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { PipelineState } from './jobs/driver.js';

export interface Plugin {
  /** the config section's key; RPC clients and /health?plugin= name the plugin by it */
  readonly name: string;
  serve(): Promise<void>;
  /** Stop, letting work in progress finish for at most `graceMs`; also called when serve() failed or never ran. */
  stop(graceMs: number): Promise<void>;
}

/**
 * One worker as `informer.Workers` reports it: RoadRunner's State (that key order, those types) and rrts's
 * additions, which RoadRunner's PHP SDK ignores (it reads the keys by name): `uss`/`pss` (the worker's own memory,
 * bytes, 0 when unknown), for fork pools only `masterPid` (the pool's current fork master), and for workers
 * pool.dynamic_allocator added beyond num_workers only, `dynamic: true`.
 */
export interface WorkerState {
  pid: number;
  status: number;
  numExecs: number;
  created: number;
  memoryUsage: number;
  CPUPercent: number;
  command: string;
  statusStr: string;
  uss: number;
  pss: number;
  masterPid?: number;
  dynamic?: boolean;
}

/** A plugin with a worker pool: informer.Workers/AddWorker/RemoveWorker and the pool gauges of /metrics. */
export interface HasWorkers {
  readonly name: string;
  /** how its workers are born; fork pools also count forks and master restarts */
  readonly workerMode: 'exec' | 'fork';
  /** the live workers, sorted by pid */
  workers(): Promise<WorkerState[]>;
  addWorker(): Promise<void>;
  /** stops one idle worker, never the last one */
  removeWorker(): Promise<void>;
}

/** A plugin whose workers can be replaced by fresh ones (resetter.Reset, SIGHUP). */
export interface Resettable {
  readonly name: string;
  /** Rolling reset; resolves once no old worker is left. Resets asked for while one runs wait for it. */
  reset(): Promise<void>;
}

/** A plugin /health and /ready can ask. */
export interface HasStatus {
  readonly name: string;
  /** liveness: 200 while it can serve at all, 503 otherwise */
  status(): Promise<number>;
  /** readiness: 200 while it can take a request now, 503 otherwise */
  ready(): Promise<number>;
}

/** prom-client's JSON of one registry (Registry.getMetricsAsJSON). */
export type MetricsJson = Array<MetricObjectWithValues<MetricValue<string>>>;

/**
 * A plugin whose metrics live in other processes (the HTTP front processes' http_metrics): /metrics sums them
 * (prom-client's AggregatorRegistry) into the one scrape.
 */
export interface HasMetrics {
  readonly name: string;
  /** one registry's JSON per process */
  metricsJson(): Promise<MetricsJson[]>;
}

export function hasMetrics(plugin: Plugin): plugin is Plugin & HasMetrics {
  return typeof (plugin as Partial<HasMetrics>).metricsJson === 'function';
}

/** A plugin with queues (jobs): informer.Jobs and the status plugin's GET /jobs read its pipelines. */
export interface HasPipelines {
  readonly name: string;
  /** one entry per pipeline that has a driver (jobs.Stat's, in RoadRunner's Stat shape) */
  pipelineStates(): Promise<PipelineReport[]>;
}

/** A pipeline as informer.Jobs and GET /jobs report it: a driver's state, its error text always present. */
export type PipelineReport = Required<PipelineState>;

export function hasPipelines(plugin: object): plugin is HasPipelines {
  return typeof (plugin as Partial<HasPipelines>).pipelineStates === 'function';
}

export function hasWorkers(plugin: Plugin): plugin is Plugin & HasWorkers {
  const p = plugin as Partial<HasWorkers>;
  return typeof p.workers === 'function' && typeof p.addWorker === 'function' && typeof p.removeWorker === 'function';
}

export function isResettable(plugin: Plugin): plugin is Plugin & Resettable {
  return typeof (plugin as Partial<Resettable>).reset === 'function';
}

export function hasStatus(plugin: Plugin): plugin is Plugin & HasStatus {
  const p = plugin as Partial<HasStatus>;
  return typeof p.status === 'function' && typeof p.ready === 'function';
}

/** Who has which capability; what the informer, resetter, status and metrics plugins are given. */
export interface Capabilities {
  withWorkers(): HasWorkers[];
  resettable(): Resettable[];
  withStatus(): HasStatus[];
  /** optional: hosts without plugins in other processes leave it out */
  withMetrics?(): HasMetrics[];
}

/** The running plugins in the order they were registered, and the capabilities collected from them. */
export class PluginRegistry implements Capabilities {
  private readonly plugins: Plugin[] = [];

  /** A name is registered once: it is how RPC and /health tell the plugins apart. */
  register(plugin: Plugin): void {
    if (this.plugins.some((p) => p.name === plugin.name)) throw new Error(`plugin '${plugin.name}' is registered twice`);
    this.plugins.push(plugin);
  }

  get all(): readonly Plugin[] {
    return this.plugins;
  }

  withWorkers(): Array<Plugin & HasWorkers> {
    return this.plugins.filter(hasWorkers);
  }

  resettable(): Array<Plugin & Resettable> {
    return this.plugins.filter(isResettable);
  }

  withStatus(): Array<Plugin & HasStatus> {
    return this.plugins.filter(hasStatus);
  }

  withMetrics(): Array<Plugin & HasMetrics> {
    return this.plugins.filter(hasMetrics);
  }
}
