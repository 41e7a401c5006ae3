// Plugins made of nothing but a (fake) worker pool, answering their capabilities as the http and jobs plugins do
// (PoolPlugin, src/pool/capabilities.ts): for unit tests of the plugins that consume them (informer, resetter, status,
// metrics).
import type { Capabilities, Plugin } from '../../src/plugin.js';
import { PoolPlugin } from '../../src/pool/capabilities.js';
import type { WorkerPool } from '../../src/pool/pool.js';

class BarePoolPlugin extends PoolPlugin implements Plugin {
  constructor(
    readonly name: string,
    pool: WorkerPool,
  ) {
    super(pool);
  }

  async serve(): Promise<void> {}

  async stop(): Promise<void> {}
}

export function poolPlugin(name: string, pool: WorkerPool): PoolPlugin & Plugin {
  return new BarePoolPlugin(name, pool);
}

/** The capabilities of one plugin per pool, by name; the map is read at every call, so tests can add and remove pools. */
export function capabilitiesOf(pools: Map<string, WorkerPool>): Capabilities {
  const plugins = (): Array<PoolPlugin & Plugin> => [...pools].map(([name, pool]) => poolPlugin(name, pool));
  return { withWorkers: plugins, resettable: plugins, withStatus: plugins };
}
