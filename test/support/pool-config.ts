// A pool section with RoadRunner's defaults for the pool's unit tests, changed only where a test says so.
import type { PoolConfig } from '../../src/config/types.js';

export function poolConfig(overrides: Partial<PoolConfig> = {}): PoolConfig {
  return {
    debug: false,
    command: null,
    numWorkers: 1,
    maxJobs: 0,
    maxQueueSize: 0,
    allocateTimeout: 60_000,
    resetTimeout: 60_000,
    streamTimeout: 60_000,
    destroyTimeout: 1_000,
    supervisor: null,
    dynamicAllocator: null,
    ...overrides,
  };
}
