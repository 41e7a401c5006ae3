// Helpers of the jobs unit tests: the vectors taken from the real PHP SDK (test/fixtures/jobs-vectors.json), a
// plugin with no worker pool behind it (for RPC and driver tests that run no job), and a recording DeliveredJob.
import { readFileSync } from 'node:fs';
import pino from 'pino';
import type { JobsConfig } from '../../src/config/types.js';
import type { DeliveredJob, JobHeaders, JobItem } from '../../src/jobs/driver.js';
import { JobsPlugin } from '../../src/jobs/plugin.js';
import type { WorkerPool } from '../../src/pool/pool.js';
import { poolConfig } from '../support/pool-config.js';

export const silent = pino({ level: 'silent' });

interface Vector {
  hex: string;
  context?: Record<string, unknown>;
  body?: unknown;
}

// Compiled tests run from dist/test/jobs/, so the fixture is three levels up from here.
const VECTORS = JSON.parse(readFileSync(new URL('../../../test/fixtures/jobs-vectors.json', import.meta.url), 'utf8')) as Record<string, Vector>;

export function jobsVector(id: string): Vector & { bytes: Buffer } {
  const v = VECTORS[id];
  if (!v) throw new Error(`vector ${id} missing from jobs-vectors.json`);
  return { ...v, bytes: Buffer.from(v.hex, 'hex') };
}

export function jobsConfig(overrides: Partial<JobsConfig> = {}): JobsConfig {
  return {
    pool: poolConfig({ destroyTimeout: 60_000 }),
    timeout: 60_000,
    pipelineSize: 1_000_000,
    parallelism: 10,
    pipelines: [],
    consume: [],
    ...overrides,
  };
}

/** A plugin whose pool is never used: its pipelines are created, pushed to and stated, no job runs. */
export function poolessPlugin(overrides: Partial<JobsConfig> = {}): JobsPlugin {
  return new JobsPlugin(jobsConfig(overrides), {} as WorkerPool, silent, { globalConfig: {}, workDir: process.cwd() });
}

export function item(overrides: Partial<JobItem> = {}): JobItem {
  return {
    id: 'id-1',
    job: 'acc.Ping',
    payload: Buffer.from('{"n":1}'),
    headers: {},
    pipeline: 'acc-main',
    priority: 10,
    delaySeconds: 0,
    autoAck: false,
    ...overrides,
  };
}

export type Settled = ['ack'] | ['nack'] | ['nackWithOptions', boolean, number] | ['requeue', JobHeaders, number];

/** A DeliveredJob that records how it was settled. */
export class RecordingJob implements DeliveredJob {
  readonly settled: Settled[] = [];
  constructor(readonly item: JobItem) {}
  context(): string {
    return '{}';
  }
  ack(): Promise<void> {
    this.settled.push(['ack']);
    return Promise.resolve();
  }
  nack(): Promise<void> {
    this.settled.push(['nack']);
    return Promise.resolve();
  }
  nackWithOptions(redeliver: boolean, delaySeconds: number): Promise<void> {
    this.settled.push(['nackWithOptions', redeliver, delaySeconds]);
    return Promise.resolve();
  }
  requeue(headers: JobHeaders, delaySeconds: number): Promise<void> {
    this.settled.push(['requeue', headers, delaySeconds]);
    return Promise.resolve();
  }
}
