// What the boltdb driver tests and their child process share: a small JobQueue standing in for the jobs plugin's
// priority queue, pipelines, jobs and a logger whose records the tests can read. No node:test here: the child
// process imports it too.
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import pino from 'pino';
import type { DeliveredJob, DriverContext, JobItem, JobQueue, PipelineConfig } from '../../src/jobs/driver.js';
import { openBoltdbDriver, type BoltdbDriver, type BoltdbTuning } from '../../src/jobs/drivers/boltdb.js';

/** A FIFO with an optional capacity (insert waits while full, like the plugin's queue at pipeline_size). */
export class TestQueue implements JobQueue {
  readonly jobs: DeliveredJob[] = [];
  private readonly arrivals: (() => void)[] = [];
  private readonly spaceWaiters: (() => void)[] = [];

  constructor(public capacity = Number.POSITIVE_INFINITY) {}

  async insert(job: DeliveredJob): Promise<void> {
    while (this.jobs.length >= this.capacity) await new Promise<void>((resolve) => this.spaceWaiters.push(resolve));
    this.jobs.push(job);
    for (const wake of this.arrivals.splice(0)) wake();
  }

  removePipeline(pipeline: string): DeliveredJob[] {
    const removed = this.jobs.filter((job) => job.item.pipeline === pipeline);
    const kept = this.jobs.filter((job) => job.item.pipeline !== pipeline);
    this.jobs.splice(0, this.jobs.length, ...kept);
    this.wakeSpace();
    return removed;
  }

  /** The oldest job, taken out (as a poller does), or undefined. */
  take(): DeliveredJob | undefined {
    const job = this.jobs.shift();
    if (job) this.wakeSpace();
    return job;
  }

  /** Waits (at most `timeoutMs`) until the queue holds `count` jobs; returns how many it holds. */
  async waitFor(count: number, timeoutMs = 10_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (this.jobs.length < count && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.arrivals.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.jobs.length;
  }

  /** Takes `count` jobs, waiting for them (bounded); fails naming how many came. */
  async takeN(count: number, timeoutMs = 10_000): Promise<DeliveredJob[]> {
    const out: DeliveredJob[] = [];
    const deadline = Date.now() + timeoutMs;
    while (out.length < count) {
      const job = this.take();
      if (job) {
        out.push(job);
        continue;
      }
      if (Date.now() >= deadline) throw new Error(`only ${out.length} of ${count} jobs reached the queue within ${timeoutMs} ms`);
      await this.waitFor(1, deadline - Date.now());
    }
    return out;
  }

  private wakeSpace(): void {
    for (const wake of this.spaceWaiters.splice(0)) wake();
  }
}

/** Log records at warn and above, parsed. */
export interface LogCapture {
  records: { level: number; msg: string; [key: string]: unknown }[];
}

export function testContext(queue: JobQueue, workDir: string): DriverContext & LogCapture {
  const records: LogCapture['records'] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) records.push(JSON.parse(line));
      done();
    },
  });
  return { queue, log: pino({ level: 'warn' }, sink), workDir, timeoutMs: 60_000, globalConfig: {}, records };
}

export function pipelineConfig(name: string, config: Record<string, unknown> = {}, declared = false): PipelineConfig {
  return { name, driver: 'boltdb', priority: 10, config, declared };
}

export function jobItem(pipeline: string, n: number, over: Partial<JobItem> = {}): JobItem {
  return {
    id: `id-${n}`,
    job: 'app.Job',
    payload: Buffer.from(JSON.stringify({ n })),
    headers: {},
    pipeline,
    priority: 10,
    delaySeconds: 0,
    autoAck: false,
    ...over,
  };
}

/** A driver on `file` (relative to `dir`) with its own queue. */
export async function openDriver(
  dir: string,
  options: { name?: string; config?: Record<string, unknown>; queue?: TestQueue; tuning?: BoltdbTuning; declared?: boolean } = {},
): Promise<{ driver: BoltdbDriver; queue: TestQueue; context: DriverContext & LogCapture }> {
  const queue = options.queue ?? new TestQueue();
  const context = testContext(queue, dir);
  const driver = await openBoltdbDriver(pipelineConfig(options.name ?? 'disk', options.config ?? {}, options.declared ?? false), context, options.tuning);
  return { driver, queue, context };
}

/** The ids of `jobs`, parsed payload numbers included. */
export function ids(jobs: DeliveredJob[]): string[] {
  return jobs.map((job) => job.item.id);
}

/** The payload of job `id`: its length (`-L<bytes>` at the end) and bytes follow from the id, so a corrupt one shows. */
export function payloadFor(id: string): Buffer {
  const size = Number(/-L(\d+)$/.exec(id)?.[1] ?? 0);
  const seed = createHash('sha256').update(id).digest();
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i++) out[i] = seed[i % seed.length]!;
  return out;
}
