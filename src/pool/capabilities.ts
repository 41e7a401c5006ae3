// What a plugin that owns a worker pool answers through its capabilities (src/plugin.ts): the workers as the
// informer reports them, and the pool's liveness and readiness as the status plugin reports them.
import type { HasStatus, HasWorkers, Resettable, WorkerState } from '../plugin.js';
import { WorkerState as Lifecycle } from '../worker/state.js';
import { describeWorkers } from './info.js';
import type { WorkerPool } from './pool.js';

/** What statusOf/readinessOf look at: the pool's live workers and whether it is in a crash loop. */
export type CheckedPool = Pick<WorkerPool, 'list'> & Partial<Pick<WorkerPool, 'crashLooping'>>;

/** A pool is alive (200) while at least one worker is ready or working; otherwise 503. */
export function statusOf(pool: CheckedPool): number {
  return pool.list().some((w) => w.state === Lifecycle.Ready || w.state === Lifecycle.Working) ? 200 : 503;
}

/**
 * A pool is ready (200) only while at least one worker is idle and can take a job now, and workers are not in a crash
 * loop (docs/pool.md: a balancer should move traffic away even while a worker or two still run); otherwise 503.
 */
export function readinessOf(pool: CheckedPool): number {
  if (pool.crashLooping === true) return 503;
  return pool.list().some((w) => w.state === Lifecycle.Ready) ? 200 : 503;
}

/** The pool's workers in RoadRunner's State shape plus rrts's extras, sorted by pid. */
export async function workerStates(pool: Pick<WorkerPool, 'list' | 'mode' | 'masterPid' | 'isExtra'>): Promise<WorkerState[]> {
  const masterPid = pool.mode === 'fork' ? pool.masterPid : null;
  const extra = new Set(pool.list().flatMap((w) => (pool.isExtra(w) ? [w.pid] : [])));
  return (await describeWorkers(pool)).map((w) => {
    const state: WorkerState = {
      pid: w.pid,
      status: w.status,
      numExecs: w.numExecs,
      created: Math.round(w.created),
      memoryUsage: Math.round(w.memoryUsage),
      CPUPercent: w.CPUPercent,
      command: w.command,
      statusStr: w.statusStr,
      uss: w.uss,
      pss: w.pss,
    };
    if (masterPid !== null) state.masterPid = masterPid;
    if (extra.has(w.pid)) state.dynamic = true;
    return state;
  });
}

/**
 * The capabilities of a plugin that owns one worker pool, every one answered by the pool: the http and jobs plugins
 * extend it, so informer, resetter, status and metrics see every pool the same way.
 */
export abstract class PoolPlugin implements HasWorkers, Resettable, HasStatus {
  abstract readonly name: string;

  constructor(readonly pool: WorkerPool) {}

  get workerMode(): 'exec' | 'fork' {
    return this.pool.mode;
  }

  workers(): Promise<WorkerState[]> {
    return workerStates(this.pool);
  }

  addWorker(): Promise<void> {
    return this.pool.addWorker();
  }

  removeWorker(): Promise<void> {
    return this.pool.removeWorker();
  }

  reset(): Promise<void> {
    return this.pool.reset();
  }

  async status(): Promise<number> {
    return statusOf(this.pool);
  }

  async ready(): Promise<number> {
    return readinessOf(this.pool);
  }
}
