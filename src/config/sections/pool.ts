// `<plugin>.pool` (docs/compatibility.md §1.8): worker count, job limits, timeouts and the optional supervisor, with
// RoadRunner's defaults (0 means "use the default" for every number and duration here).
import type { DynamicAllocatorConfig, PoolConfig, SupervisorConfig } from '../types.js';
import type { SectionReader } from '../reader.js';
import type { SectionContext } from './context.js';

export const MAX_WORKERS = 500;
const DEFAULT_POOL_TIMEOUT_MS = 60_000;
const DEFAULT_WATCH_TICK_MS = 5_000;
/** RoadRunner 2024.3's dynamic allocator limits (pool/config.go): larger values are lowered to these. */
export const MAX_DYNAMIC_WORKERS = 100;
export const MAX_SPAWN_RATE = 100;
const DEFAULT_DYNAMIC_WORKERS = 10;
const DEFAULT_SPAWN_RATE = 5;
const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
/** RoadRunner takes an idle_timeout under a second for a mistake and uses the default. */
const MIN_IDLE_TIMEOUT_MS = 1_000;

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
    dynamicAllocator: readDynamicAllocator(pool.section('dynamic_allocator'), ctx),
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

/**
 * RoadRunner's InitDefaults for the section, with a warning where it silently changes a value: 0 means the default,
 * max_workers and spawn_rate are capped at 100, an idle_timeout under a second means a minute.
 */
function readDynamicAllocator(section: SectionReader | null, ctx: SectionContext): DynamicAllocatorConfig | null {
  if (!section) return null;
  const capped = (key: string, written: number, fallback: number, cap: number): number => {
    if (written > cap) ctx.warnings.push(`${section.keyPath(key)}: ${written} is over RoadRunner's limit, using ${cap}`);
    return Math.min(written || fallback, cap);
  };
  const maxWorkers = capped('max_workers', section.uint('max_workers'), DEFAULT_DYNAMIC_WORKERS, MAX_DYNAMIC_WORKERS);
  const spawnRate = capped('spawn_rate', section.uint('spawn_rate'), DEFAULT_SPAWN_RATE, MAX_SPAWN_RATE);
  const idle = section.duration('idle_timeout');
  if (idle > 0 && idle < MIN_IDLE_TIMEOUT_MS) {
    ctx.warnings.push(`${section.keyPath('idle_timeout')}: ${idle} ms is under 1s, using 1m as RoadRunner does`);
  }
  return {
    maxWorkers,
    spawnRate,
    idleTimeout: idle < MIN_IDLE_TIMEOUT_MS ? DEFAULT_IDLE_TIMEOUT_MS : idle,
    scaleOnWait: section.has('scale_on_wait') ? section.duration('scale_on_wait') : null,
  };
}
