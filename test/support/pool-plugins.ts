// Plugins made of nothing but a (fake) worker pool, answering their capabilities the way the http plugin does
// (src/pool/capabilities.ts): for unit tests of the plugins that consume them (informer, resetter, status, metrics).
import type { Capabilities, HasStatus, HasWorkers, Plugin, Resettable } from '../../src/plugin.js';
import { readinessOf, statusOf, workerStates } from '../../src/pool/capabilities.js';
import type { WorkerPool } from '../../src/pool/pool.js';

export type PoolPlugin = Plugin & HasWorkers & Resettable & HasStatus;

export function poolPlugin(name: string, pool: WorkerPool): PoolPlugin {
  return {
    name,
    serve: async () => undefined,
    stop: async () => undefined,
    get workerMode() {
      return pool.mode;
    },
    workers: () => workerStates(pool),
    addWorker: () => pool.addWorker(),
    removeWorker: () => pool.removeWorker(),
    reset: () => pool.reset(),
    status: async () => statusOf(pool),
    ready: async () => readinessOf(pool),
  };
}

/** The capabilities of one plugin per pool, by name; the map is read at every call, so tests can add and remove pools. */
export function capabilitiesOf(pools: Map<string, WorkerPool>): Capabilities {
  const plugins = (): PoolPlugin[] => [...pools].map(([name, pool]) => poolPlugin(name, pool));
  return { withWorkers: plugins, resettable: plugins, withStatus: plugins };
}
