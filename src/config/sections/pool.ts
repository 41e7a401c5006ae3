// `<plugin>.pool` (docs/compatibility.md §1.8): worker count, job limits, timeouts and the optional supervisor, with
// RoadRunner's defaults (0 means "use the default" for every number and duration here).
import type { PoolConfig, SupervisorConfig } from '../types.js';
import type { SectionReader } from '../reader.js';
import type { SectionContext } from './context.js';

export const MAX_WORKERS = 500;
const DEFAULT_POOL_TIMEOUT_MS = 60_000;
const DEFAULT_WATCH_TICK_MS = 5_000;

export function readPool(pool: SectionReader, ctx: SectionContext): PoolConfig {
  const command = pool.command('command');
  return {
    debug: pool.bool('debug'),
    command: command.length > 0 ? command : null,
    numWorkers: readNumWorkers(pool, ctx),
    maxJobs: pool.uint('max_jobs'),
    maxQueueSize: pool.uint('max_queue_size'),
    allocateTimeout: pool.duration('allocate_timeout') || DEFAULT_POOL_TIMEOUT_MS,
    resetTimeout: pool.duration('reset_timeout') || DEFAULT_POOL_TIMEOUT_MS,
    streamTimeout: pool.duration('stream_timeout') || DEFAULT_POOL_TIMEOUT_MS,
    destroyTimeout: pool.duration('destroy_timeout') || DEFAULT_POOL_TIMEOUT_MS,
    supervisor: readSupervisor(pool.section('supervisor')),
  };
}

function readNumWorkers(pool: SectionReader, ctx: SectionContext): number {
  const written = pool.uint('num_workers');
  if (written > MAX_WORKERS) {
    pool.fail('num_workers', `number of workers can't be more than ${MAX_WORKERS}, got ${written}`);
  }
  return written || Math.min(ctx.cpus, MAX_WORKERS);
}

/** The supervisor only runs when its section exists. */
function readSupervisor(supervisor: SectionReader | null): SupervisorConfig | null {
  if (!supervisor) return null;
  return {
    watchTick: supervisor.duration('watch_tick') || DEFAULT_WATCH_TICK_MS,
    ttl: supervisor.duration('ttl'),
    idleTtl: supervisor.duration('idle_ttl'),
    maxWorkerMemory: supervisor.megabytes('max_worker_memory'),
    execTtl: supervisor.duration('exec_ttl'),
  };
}
