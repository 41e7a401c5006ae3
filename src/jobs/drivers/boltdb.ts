// The jobs plugin's durable local driver, `boltdb`: RoadRunner's config keys and guarantees (a pushed job survives
// a restart and a kill -9; taken-but-unacknowledged jobs come back on the next start), kept in an fsynced journal
// (boltdb/journal.ts) instead of a bbolt file. What differs from RoadRunner, and why, is in docs/jobs-boltdb.md.
import { JobsDriverError } from '../../errors.js';
import type { DeliveredJob, DriverContext, DriverFactory, JobHeaders, JobItem, JobsDriver, PipelineConfig, PipelineState } from '../driver.js';
import { readBoltdbOptions, type BoltdbOptions } from './boltdb/config.js';
import { boltdbContext } from './boltdb/context.js';
import { MinHeap } from './boltdb/heap.js';
import { Journal, type StoredJob } from './boltdb/journal.js';
import { JournalError } from '../../errors.js';
import { lockJournal, type JournalLock } from './boltdb/lock.js';
import { continueTrace } from '../tracing.js';

export const BOLTDB_DRIVER = 'boltdb';
/** Stat's queue name: RoadRunner's bucket of waiting jobs. */
const QUEUE_NAME = 'push';
const STOPPED_TEXT = 'failed to acknowledge the JOB, the pipeline is probably stopped';
/** setTimeout's longest delay; a later due time is reached in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Knobs for tests and the bench; a pipeline's config never sets them. */
export interface BoltdbTuning {
  compactMinBytes?: number;
}

/** A job waiting to be taken, with its place in line (a job taken back by pause keeps its place). */
interface Waiting {
  job: StoredJob;
  order: number;
}

type Settlement = { kind: 'ack' } | { kind: 'nack' } | { kind: 'requeue'; headers: JobHeaders; delaySeconds: number };

/** A job handed to the plugin's queue; settling it goes back to the driver that took it. */
class BoltdbJob implements DeliveredJob {
  readonly item: JobItem;
  settled = false;

  constructor(
    private readonly owner: BoltdbDriver,
    readonly stored: StoredJob,
    readonly order: number,
  ) {
    // the listener's span continues the stored trace; what is stored stays as pushed (a nack delivers that again)
    const headers = { ...stored.headers };
    continueTrace(headers);
    this.item = {
      id: stored.id,
      job: stored.job,
      payload: stored.payload,
      headers,
      pipeline: owner.pipeline.name,
      priority: stored.priority > 0 ? stored.priority : owner.pipeline.priority,
      delaySeconds: 0,
      autoAck: stored.autoAck,
    };
  }

  context(): string {
    return boltdbContext(this.item);
  }

  ack(): Promise<void> {
    return this.owner.settle(this, { kind: 'ack' });
  }

  /** boltdb redelivers on every kind of failure (docs/jobs.md §2.5) */
  nack(): Promise<void> {
    return this.owner.settle(this, { kind: 'nack' });
  }

  /** RoadRunner's boltdb redelivers a nack without redelivery too (docs/jobs.md §5.2 P4); kept, so apps behave the same. */
  nackWithOptions(redeliver: boolean, delaySeconds: number): Promise<void> {
    return this.owner.settle(this, redeliver ? { kind: 'requeue', headers: {}, delaySeconds } : { kind: 'nack' });
  }

  requeue(headers: JobHeaders, delaySeconds: number): Promise<void> {
    return this.owner.settle(this, { kind: 'requeue', headers, delaySeconds });
  }
}

export class BoltdbDriver implements JobsDriver {
  readonly driver = BOLTDB_DRIVER;
  private consuming = false;
  private stopped = false;
  /** bumped by pause and stop: a job whose insert into the queue finishes later is taken back */
  private epoch = 0;
  private nextSeq: number;
  private nextOrder = 0;
  private readonly ready = new MinHeap<Waiting>((a, b) => a.order < b.order);
  private readonly delayed = new MinHeap<StoredJob>((a, b) => a.readyAt < b.readyAt || (a.readyAt === b.readyAt && a.seq < b.seq));
  /** taken into the queue and not settled yet: what prefetch bounds */
  private readonly taken = new Map<number, BoltdbJob>();
  private delayTimer: NodeJS.Timeout | null = null;
  private pumping = false;
  private pumpWanted = false;

  constructor(
    readonly pipeline: PipelineConfig,
    private readonly context: DriverContext,
    readonly options: BoltdbOptions,
    private readonly lock: JournalLock,
    private readonly journal: Journal,
    jobs: StoredJob[],
  ) {
    let lastSeq = 0;
    // jobs that were taken and not acknowledged when the file was last closed (or the process died) wait again
    for (const job of jobs) {
      lastSeq = Math.max(lastSeq, job.seq);
      this.place(job);
    }
    this.nextSeq = lastSeq + 1;
  }

  async push(item: JobItem): Promise<void> {
    if (this.stopped) throw new JobsDriverError(`boltdb pipeline '${this.pipeline.name}' is stopped`);
    const job: StoredJob = {
      seq: this.nextSeq++,
      id: item.id,
      job: item.job,
      // a copy: the pushed bytes may be a slice of a whole RPC frame (PushBatch), which would stay in memory with it
      payload: Buffer.from(item.payload),
      headers: { ...item.headers },
      priority: item.priority,
      autoAck: item.autoAck,
      readyAt: item.delaySeconds > 0 ? Date.now() + item.delaySeconds * 1000 : 0,
    };
    await this.journal.put(job);
    // a stop while the record was written: the job is in the file and waits for the next start
    if (this.stopped) return;
    this.place(job);
    this.pump();
  }

  async run(): Promise<void> {
    if (this.stopped) throw new JobsDriverError(`boltdb pipeline '${this.pipeline.name}' is stopped`);
    if (this.consuming) return;
    this.startConsuming();
  }

  async pause(): Promise<void> {
    if (this.stopped || !this.consuming) throw new JobsDriverError('no active listeners, nothing to pause');
    this.consuming = false;
    this.epoch += 1;
    this.clearDelayTimer();
    this.takeBack();
    this.context.log.debug({ pipeline: this.pipeline.name, driver: BOLTDB_DRIVER }, 'pipeline was paused');
  }

  async resume(): Promise<void> {
    if (this.stopped) throw new JobsDriverError(`boltdb pipeline '${this.pipeline.name}' is stopped`);
    if (this.consuming) throw new JobsDriverError('boltdb listener is already in the active state');
    this.startConsuming();
    this.context.log.debug({ pipeline: this.pipeline.name, driver: BOLTDB_DRIVER }, 'pipeline was resumed');
  }

  async state(): Promise<PipelineState> {
    if (!this.stopped) this.releaseDue();
    const error = this.journal.error;
    return {
      pipeline: this.pipeline.name,
      driver: BOLTDB_DRIVER,
      queue: QUEUE_NAME,
      // RoadRunner's "pushed minus acknowledged": waiting plus taken
      active: this.ready.size + this.taken.size,
      delayed: this.delayed.size,
      reserved: 0,
      ready: this.consuming,
      priority: this.pipeline.priority,
      ...(error ? { errorMessage: error.message } : {}),
    };
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.consuming = false;
    this.epoch += 1;
    this.clearDelayTimer();
    const writes: Promise<void>[] = [];
    for (const job of this.context.queue.removePipeline(this.pipeline.name)) {
      // auto_ack jobs left the file when they were taken; these never reached a worker, so they go back in
      if (job instanceof BoltdbJob && job.stored.autoAck && this.taken.get(job.stored.seq) === job) writes.push(this.journal.put(job.stored));
    }
    await Promise.allSettled(writes);
    this.taken.clear();
    this.ready.clear();
    this.delayed.clear();
    try {
      await this.journal.close();
    } finally {
      this.lock.release();
    }
    this.context.log.debug({ pipeline: this.pipeline.name, driver: BOLTDB_DRIVER, file: this.options.file }, 'pipeline was stopped');
  }

  /** Ack, nack or requeue of a job this driver handed out. */
  async settle(job: BoltdbJob, how: Settlement): Promise<void> {
    if (this.stopped) throw new JobsDriverError(STOPPED_TEXT);
    if (job.settled) throw new JobsDriverError(`job ${job.stored.id} of pipeline '${this.pipeline.name}' was already acknowledged or requeued`);
    if (this.taken.get(job.stored.seq) !== job) throw new JobsDriverError(STOPPED_TEXT);
    job.settled = true;
    const stored = job.stored;
    if (how.kind === 'ack') {
      this.taken.delete(stored.seq);
      this.pump();
      // an auto_ack job left the file when it was taken
      if (!stored.autoAck) await this.journal.delete(stored.seq);
      return;
    }
    if (how.kind === 'nack') {
      this.taken.delete(stored.seq);
      // auto_ack: the job is gone, as in RoadRunner; otherwise it is still in the file as it was pushed
      if (!stored.autoAck) this.place(stored);
      this.pump();
      return;
    }
    const next: StoredJob = {
      ...stored,
      // sent names replace the ones the job was delivered with, the others stay (docs/jobs.md §2.4)
      headers: { ...job.item.headers, ...how.headers },
      readyAt: how.delaySeconds > 0 ? Date.now() + how.delaySeconds * 1000 : 0,
    };
    try {
      await this.journal.put(next);
    } finally {
      this.taken.delete(stored.seq);
    }
    if (this.stopped) return;
    this.place(next);
    this.pump();
  }

  private startConsuming(): void {
    this.consuming = true;
    this.scheduleDelayTimer();
    this.pump();
  }

  /** Into the line of waiting jobs, or among the delayed ones until its time. */
  private place(job: StoredJob): void {
    if (job.readyAt > Date.now()) {
      this.delayed.push(job);
      this.scheduleDelayTimer();
    } else {
      this.ready.push({ job, order: this.nextOrder++ });
    }
  }

  private releaseDue(): void {
    const now = Date.now();
    for (let next = this.delayed.peek(); next && next.readyAt <= now; next = this.delayed.peek()) {
      this.delayed.pop();
      this.ready.push({ job: next, order: this.nextOrder++ });
    }
  }

  /** One timer for the earliest delayed job, while consuming. */
  private scheduleDelayTimer(): void {
    this.clearDelayTimer();
    const next = this.delayed.peek();
    if (!this.consuming || !next) return;
    this.delayTimer = setTimeout(
      () => {
        this.delayTimer = null;
        this.releaseDue();
        this.scheduleDelayTimer();
        this.pump();
      },
      Math.min(Math.max(0, next.readyAt - Date.now()), MAX_TIMER_MS),
    );
  }

  private clearDelayTimer(): void {
    if (this.delayTimer) clearTimeout(this.delayTimer);
    this.delayTimer = null;
  }

  /** Moves waiting jobs into the plugin's queue while consuming, as many as prefetch allows, at once. */
  private pump(): void {
    this.pumpWanted = true;
    if (this.pumping) return;
    this.pumping = true;
    void this.runPump().finally(() => {
      this.pumping = false;
    });
  }

  private async runPump(): Promise<void> {
    while (this.pumpWanted) {
      this.pumpWanted = false;
      const epoch = this.epoch;
      while (this.consuming && epoch === this.epoch && this.taken.size < this.options.prefetch) {
        this.releaseDue();
        const next = this.ready.pop();
        if (!next) break;
        const delivered = new BoltdbJob(this, next.job, next.order);
        this.taken.set(next.job.seq, delivered);
        if (next.job.autoAck) {
          // RoadRunner does not keep auto_ack jobs once taken: a crash from here on loses them, as there
          this.journal.delete(next.job.seq).catch((error: unknown) => this.logWriteError(error));
        }
        try {
          await this.context.queue.insert(delivered);
        } catch (error) {
          this.context.log.error({ pipeline: this.pipeline.name, driver: BOLTDB_DRIVER, err: error }, 'cannot put a job into the jobs queue');
          this.returnToLine(delivered);
          return;
        }
        // paused or stopped while the queue was full: this job must not stay in it
        if (epoch !== this.epoch) this.takeBack();
      }
    }
  }

  /** Pause: this pipeline's jobs leave the plugin's queue and wait again, first in line as they were. */
  private takeBack(): void {
    for (const job of this.context.queue.removePipeline(this.pipeline.name)) {
      if (job instanceof BoltdbJob) this.returnToLine(job);
    }
  }

  private returnToLine(job: BoltdbJob): void {
    if (this.stopped || this.taken.get(job.stored.seq) !== job) return;
    this.taken.delete(job.stored.seq);
    this.ready.push({ job: job.stored, order: job.order });
    if (job.stored.autoAck) this.journal.put(job.stored).catch((error: unknown) => this.logWriteError(error));
  }

  private logWriteError(error: unknown): void {
    this.context.log.error({ pipeline: this.pipeline.name, driver: BOLTDB_DRIVER, err: error }, 'cannot write the boltdb journal');
  }
}

/** Opens the pipeline's file (taking its lock) and reads the jobs it holds. */
export async function openBoltdbDriver(pipeline: PipelineConfig, context: DriverContext, tuning: BoltdbTuning = {}): Promise<BoltdbDriver> {
  const options = readBoltdbOptions(pipeline, context.workDir);
  const log = context.log.child({ pipeline: pipeline.name, driver: BOLTDB_DRIVER });
  if (options.permissionsWarning) log.warn(options.permissionsWarning);
  let lock: JournalLock;
  try {
    lock = lockJournal(options.file, pipeline.name, options.permissions);
  } catch (error) {
    throw named(pipeline, error);
  }
  try {
    const { journal, jobs, report } = await Journal.open(options.file, { mode: options.permissions, compactMinBytes: tuning.compactMinBytes });
    if (report.tornBytes > 0) {
      log.warn(
        { file: options.file, offset: report.tornOffset, bytes: report.tornBytes, copy: report.tornCopy },
        'the boltdb journal ends in a record that was never wholly written (a crash or a failed write, before its push was answered): cut off',
      );
    }
    log.debug({ file: options.file, jobs: jobs.length, records: report.records }, 'boltdb journal opened');
    return new BoltdbDriver(pipeline, context, options, lock, journal, jobs);
  } catch (error) {
    lock.release();
    throw named(pipeline, error);
  }
}

function named(pipeline: PipelineConfig, error: unknown): Error {
  if (error instanceof JournalError) return new JournalError(`boltdb pipeline '${pipeline.name}': ${error.message}`, error.reason, { cause: error });
  return error instanceof Error ? error : new Error(String(error));
}

export const boltdbDriverFactory: DriverFactory = (pipeline, context) => openBoltdbDriver(pipeline, context);
