// The `memory` jobs driver (docs/jobs.md §1.2, §2.5, §4): a pipeline kept in rrts's memory. Jobs wait in a FIFO
// buffer (and, when delayed, on a timer) and move into the plugin's priority queue while the pipeline consumes and
// fewer than `prefetch` of its jobs are there or running. Unlike RoadRunner, a job whose worker crashed or errored
// is delivered again instead of dropped (docs/compatibility.md).
import { JobsDriverError } from '../../errors.js';
import { contextJson } from '../context.js';
import { Fifo } from '../fifo.js';
import { continueTrace } from '../tracing.js';
import type { DeliveredJob, DriverContext, DriverFactory, JobHeaders, JobItem, JobsDriver, PipelineConfig, PipelineState } from '../driver.js';

const DEFAULT_PREFETCH = 100_000;
/** RoadRunner's buffer of jobs waiting to move into the priority queue; a push waits up to jobs.timeout for room. */
const BUFFER_CAPACITY = 100_000;
/** RoadRunner's bound on delayed jobs of one pipeline at once. */
const MAX_DELAYED = 1000;
const STOPPED_TEXT = 'failed to acknowledge the JOB, the pipeline is probably stopped';
/**
 * A job whose run failed comes back after this pause: a pool that refuses at once (max_queue_size reached) would
 * otherwise hand it back and forth between poller and driver without ever yielding to I/O.
 */
export const FAILED_RUN_PAUSE_MS = 100;

export const memoryDriver: DriverFactory = (pipeline, context) => Promise.resolve(new MemoryDriver(pipeline, context));

export class MemoryDriver implements JobsDriver {
  readonly driver = 'memory';
  private readonly prefetch: number;
  private readonly buffer = new Fifo<JobItem>();
  private readonly delayed = new Set<NodeJS.Timeout>();
  /** failed runs waiting out FAILED_RUN_PAUSE_MS */
  private readonly retrying = new Set<NodeJS.Timeout>();
  /** jobs in the priority queue or running, not settled yet */
  private active = 0;
  private consuming = false;
  private stopped = false;
  private pumping = false;
  /** pushes waiting for room in the buffer */
  private roomWaiters: Array<() => void> = [];

  constructor(
    readonly pipeline: PipelineConfig,
    private readonly context: DriverContext,
  ) {
    this.prefetch = readPrefetch(pipeline);
  }

  async push(item: JobItem): Promise<void> {
    if (this.stopped) throw new JobsDriverError(`in_memory_push: the pipeline ${this.pipeline.name} is stopped`);
    if (item.delaySeconds > 0) return this.delay(item, item.delaySeconds);
    await this.waitForRoom();
    this.enqueue(item);
  }

  run(): Promise<void> {
    this.consuming = true;
    this.pump();
    return Promise.resolve();
  }

  pause(): Promise<void> {
    if (!this.consuming) return Promise.reject(new JobsDriverError('no active listeners, nothing to pause'));
    this.consuming = false;
    return Promise.resolve();
  }

  resume(): Promise<void> {
    if (this.consuming) return Promise.reject(new JobsDriverError('memory listener is already in the active state'));
    return this.run();
  }

  state(): Promise<PipelineState> {
    return Promise.resolve({
      pipeline: this.pipeline.name,
      driver: this.driver,
      queue: this.pipeline.name,
      active: this.active,
      delayed: this.delayed.size,
      reserved: 0,
      ready: this.consuming,
      priority: this.pipeline.priority,
    });
  }

  /** Buffered, delayed and queued jobs are dropped, as RoadRunner does; running ones may still settle (no-ops). */
  stop(): Promise<void> {
    this.stopped = true;
    this.consuming = false;
    for (const timer of [...this.delayed, ...this.retrying]) clearTimeout(timer);
    this.delayed.clear();
    this.retrying.clear();
    this.buffer.clear();
    this.context.queue.removePipeline(this.pipeline.name);
    for (const wake of this.roomWaiters.splice(0)) wake();
    return Promise.resolve();
  }

  private delay(item: JobItem, seconds: number): Promise<void> {
    if (this.delayed.size >= MAX_DELAYED) {
      return Promise.reject(new JobsDriverError('in_memory_handle_request: max concurrency number reached'));
    }
    const timer = setTimeout(() => {
      this.delayed.delete(timer);
      if (!this.stopped) this.enqueue(item);
    }, seconds * 1000);
    this.delayed.add(timer);
    return Promise.resolve();
  }

  private async waitForRoom(): Promise<void> {
    if (this.buffer.length < BUFFER_CAPACITY) return;
    const until = Date.now() + this.context.timeoutMs;
    while (this.buffer.length >= BUFFER_CAPACITY && !this.stopped) {
      const left = until - Date.now();
      if (left <= 0) {
        throw new JobsDriverError(
          'in_memory_handle_request: local pipeline is full, consider to increase prefetch number or decrease the number of jobs in the pipeline',
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.roomWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    if (this.stopped) throw new JobsDriverError(`in_memory_push: the pipeline ${this.pipeline.name} is stopped`);
  }

  private enqueue(item: JobItem): void {
    this.buffer.push(item);
    this.pump();
  }

  /** Moves buffered jobs into the priority queue while consuming and below prefetch; one pump runs at a time. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    void (async () => {
      try {
        while (this.consuming && !this.stopped && this.active < this.prefetch && this.buffer.length > 0) {
          const item = this.buffer.shift()!;
          this.roomWaiters.shift()?.();
          this.active++;
          // RoadRunner's listener span: a requeued job comes back with the headers of its last delivery
          continueTrace(item.headers);
          await this.context.queue.insert(new MemoryJob(item, this));
        }
      } finally {
        this.pumping = false;
      }
    })();
  }

  /** A job left the queue for good (settled, or about to be pushed again). */
  settled(): void {
    if (this.stopped) throw new JobsDriverError(STOPPED_TEXT);
    this.active--;
    this.pump();
  }

  /** A failed run: back at the tail after FAILED_RUN_PAUSE_MS (not bounded by MAX_DELAYED: it must not be lost). */
  retryFailed(item: JobItem): Promise<void> {
    const timer = setTimeout(() => {
      this.retrying.delete(timer);
      if (!this.stopped) this.enqueue(item);
    }, FAILED_RUN_PAUSE_MS);
    this.retrying.add(timer);
    return Promise.resolve();
  }

  /** Back into this pipeline (requeue, nack with redelivery): at the tail, after `delaySeconds`. */
  redeliver(item: JobItem, delaySeconds: number): Promise<void> {
    if (delaySeconds > 0) return this.delay(item, delaySeconds);
    this.enqueue(item);
    return Promise.resolve();
  }
}

class MemoryJob implements DeliveredJob {
  private done = false;

  constructor(
    readonly item: JobItem,
    private readonly driver: MemoryDriver,
  ) {}

  context(): string {
    const { item } = this;
    return contextJson([
      ['id', item.id],
      ['job', item.job],
      ['driver', 'memory'],
      ['headers', item.headers],
      ['pipeline', item.pipeline],
    ]);
  }

  ack(): Promise<void> {
    return this.settle(() => Promise.resolve());
  }

  /** rrts: the worker failed the job (crash, ERROR frame, exec_ttl, no worker in time): deliver it again. */
  nack(): Promise<void> {
    return this.settle(() => this.driver.retryFailed(this.item));
  }

  nackWithOptions(redeliver: boolean, delaySeconds: number): Promise<void> {
    return this.settle(() => (redeliver ? this.driver.redeliver(this.item, delaySeconds) : Promise.resolve()));
  }

  requeue(headers: JobHeaders, delaySeconds: number): Promise<void> {
    const item = { ...this.item, headers: { ...this.item.headers, ...headers } };
    return this.settle(() => this.driver.redeliver(item, delaySeconds));
  }

  /** Once only: a second settle of the same delivery is a no-op (the SDK answers a task at most once, too). */
  private async settle(then: () => Promise<void>): Promise<void> {
    if (this.done) return;
    this.driver.settled(); // throws once the pipeline stopped
    this.done = true;
    await then();
  }
}

/** `prefetch` from the file (a number) or from jobs.Declare (a string); 0 or absent is RoadRunner's 100 000. */
function readPrefetch(pipeline: PipelineConfig): number {
  const raw = pipeline.config.prefetch;
  if (raw === undefined || raw === null || raw === '') return DEFAULT_PREFETCH;
  const value = typeof raw === 'number' ? raw : Number(String(raw).trim());
  if (!Number.isSafeInteger(value) || value < 0) {
    const where = pipeline.declared ? `jobs.Declare of pipeline ${pipeline.name}, key prefetch` : `jobs.pipelines.${pipeline.name}.config.prefetch`;
    throw new JobsDriverError(`${where}: expected a whole number (0 or more), got ${JSON.stringify(raw)}`);
  }
  return value || DEFAULT_PREFETCH;
}
