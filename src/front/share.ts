// How http.pool is split between the front processes (docs/front.md §2): each front runs a pool of its own, and
// the counts that bound the whole (num_workers, max_queue_size, dynamic_allocator's max_workers and spawn_rate) are divided so that the sums stay what was written.
import type { Config, PoolConfig } from '../config/types.js';

/** `total` in `parts` whole shares that differ by one at most, the larger ones first; 0 stays 0 (unlimited). */
export function shareOf(total: number, parts: number, index: number): number {
  if (total === 0) return 0;
  return Math.floor(total / parts) + (index < total % parts ? 1 : 0);
}

/** Front `index`'s pool: its share of the workers and of the queue; per-worker limits (max_jobs, ttl) unchanged. */
export function poolShare(pool: PoolConfig, parts: number, index: number): PoolConfig {
  const maxQueueSize = pool.maxQueueSize === 0 ? 0 : Math.max(1, shareOf(pool.maxQueueSize, parts, index));
  const dynamic = pool.dynamicAllocator;
  // each front grows its own pool: the extra workers of all fronts together stay within max_workers
  const dynamicAllocator = dynamic && {
    ...dynamic,
    maxWorkers: shareOf(dynamic.maxWorkers, parts, index),
    spawnRate: Math.max(1, shareOf(dynamic.spawnRate, parts, index)),
  };
  return { ...pool, numWorkers: shareOf(pool.numWorkers, parts, index), maxQueueSize, dynamicAllocator };
}

/** The config front `index` runs: its pool share; on_init and status are the primary's, and so are the warnings. */
export function frontConfig(config: Config, parts: number, index: number): Config {
  const http = config.http!;
  return {
    ...config,
    http: { ...http, pool: poolShare(http.pool, parts, index) },
    server: { ...config.server, onInit: null },
    status: null,
    warnings: [],
  };
}
