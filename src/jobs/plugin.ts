// The jobs plugin (docs/jobs.md): pipelines built by their drivers, one priority queue they all feed, and
// pool.num_workers + 2 pollers that run each job on the jobs worker pool and settle it with its driver by the
// worker's answer. It has a pool like http, so the informer, resetter and status plugins see it by its capabilities.
import type { Logger } from 'pino';
import type { JobsConfig, JobsPipelineEntry } from '../config/types.js';
import { Flag } from '../goridge/flags.js';
import { JobsDriverError, JobsStartError } from '../errors.js';
import type { HasPipelines, PipelineReport, Plugin } from '../plugin.js';
import { PoolPlugin } from '../pool/capabilities.js';
import type { WorkerPool } from '../pool/pool.js';
import { settlesWithin } from '../time.js';
import type { ReplyChunk } from '../worker/worker.js';
import { handleAnswer } from './answer.js';
import type { DeliveredJob, DriverContext, JobsDriver, PipelineConfig, PipelineState } from './driver.js';
import { driverFactory } from './drivers/index.js';
import type { JobsMetrics } from './metrics.js';
import { PriorityJobQueue } from './queue.js';

/** RoadRunner's default pipeline priority (jobs config.go InitDefaults). */
export const DEFAULT_PIPELINE_PRIORITY = 10;

/** A pipeline in the table: `driver` is null when it was skipped (no driver key, or a driver rrts lacks). */
export interface PipelineEntry {
  config: PipelineConfig;
  driver: JobsDriver | null;
}

/** Counters of /metrics' rr_jobs_* and the tests. */
export interface JobsCounters {
  jobsOk: number;
  jobsErr: number;
  pushOk: number;
  pushErr: number;
}

export class JobsPlugin extends PoolPlugin implements Plugin, HasPipelines {
  readonly name = 'jobs';
  readonly queue: PriorityJobQueue;
  readonly pipelines = new Map<string, PipelineEntry>();
  readonly counters: JobsCounters = { jobsOk: 0, jobsErr: 0, pushOk: 0, pushErr: 0 };
  /** rr_jobs_* in the metrics plugin's registry, when there is a metrics section */
  metrics: JobsMetrics | null = null;
  private pollers: Array<Promise<void>> = [];
  private stopping = false;
  /** jobs taken by a poller and not settled yet */
  private running = 0;

  constructor(
    readonly config: JobsConfig,
    pool: WorkerPool,
    private readonly log: Logger,
    /** the config's top-level sections (amqp reads its global one) and the working directory */
    private readonly env: { globalConfig: Record<string, unknown>; workDir: string },
  ) {
    super(pool);
    this.queue = new PriorityJobQueue(config.pipelineSize);
  }

  /**
   * As RoadRunner: construct every configured pipeline and run those in `consume` (options.parallelism at once);
   * any failure fails the start. Then the pool starts, then the pollers.
   */
  async serve(): Promise<void> {
    const failures: string[] = [];
    await inBatches(this.config.pipelines, this.config.parallelism, async (entry) => {
      try {
        await this.createPipeline(pipelineConfigFromFile(entry), entry.config === null);
      } catch (err) {
        failures.push(`pipeline ${entry.name} (driver ${entry.driver}): ${(err as Error).message}`);
      }
    });
    if (failures.length > 0) {
      await this.stopDrivers();
      throw new JobsStartError(`jobs_plugin_serve: ${failures.join('; ')}`);
    }
    try {
      await this.pool.start();
    } catch (err) {
      await this.stopDrivers();
      throw new JobsStartError(`cannot start the worker pool: ${(err as Error).message}`, { cause: err });
    }
    const pollers = this.config.pool.numWorkers + 2;
    this.pollers = Array.from({ length: pollers }, () => this.poll());
    this.log.debug({ pollers }, `jobs: ${pollers} pollers`);
  }

  /** Each pipeline with its driver and whether it consumes, is paused or was skipped: the start-up summary's lines. */
  async pipelineSummary(): Promise<Array<{ pipeline: string; driver: string; state: 'consuming' | 'paused' | 'skipped' }>> {
    return Promise.all(
      [...this.pipelines.values()].map(async ({ config, driver }) => {
        if (!driver) return { pipeline: config.name, driver: config.driver || 'none', state: 'skipped' as const };
        const ready = await driver.state().then(
          (s) => s.ready,
          () => false,
        );
        return { pipeline: config.name, driver: config.driver, state: ready ? ('consuming' as const) : ('paused' as const) };
      }),
    );
  }

  /**
   * Graceful stop: the pollers take no new job and return once their running job is settled (idle ones at once:
   * RoadRunner waits the whole grace period for them, #2194); then the drivers stop (so the running jobs' acks
   * still reach them) and the pool goes.
   */
  async stop(graceMs: number): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const deadline = Date.now() + graceMs;
    this.queue.close();
    if (!(await settlesWithin(Promise.all(this.pollers), graceMs))) {
      this.log.warn({ running: this.running }, `jobs: ${this.running} job(s) still running when the grace period ended; their workers are stopped`);
    }
    await this.stopDrivers();
    await this.pool.destroy(Math.max(0, deadline - Date.now()));
  }

  /** A pipeline from the config or jobs.Declare: skipped (null driver) when rrts has no such driver. */
  async createPipeline(config: PipelineConfig, configMissing = false): Promise<PipelineEntry> {
    const entry: PipelineEntry = { config, driver: null };
    this.pipelines.set(config.name, entry);
    if (config.driver === '') {
      this.log.error(
        { pipeline: config.name },
        "can't find driver name for the pipeline, please, check that the 'driver' keyword for the pipelines specified correctly, JOBS plugin will try to run the next pipeline",
      );
      return entry;
    }
    const factory = await driverFactory(config.driver);
    if (!factory) {
      this.log.error(
        { driver: config.driver, pipeline: config.name },
        "can't find driver constructor for the pipeline, please, check the global configuration for the specified driver",
      );
      return entry;
    }
    if (configMissing) throw new JobsDriverError(`config not found by provided key: jobs.pipelines.${config.name}.config`);
    entry.driver = await withTimeout(factory(config, this.driverContext()), this.config.timeout, 'construct');
    if (this.config.consume.includes(config.name)) await withTimeout(entry.driver.run(), this.config.timeout, 'run');
    return entry;
  }

  /** Stops and forgets every pipeline (options.parallelism at once, each bounded by jobs.timeout). */
  private async stopDrivers(): Promise<void> {
    const entries = [...this.pipelines.values()];
    this.pipelines.clear();
    await inBatches(entries, this.config.parallelism, async (entry) => {
      if (!entry.driver) return;
      try {
        await withTimeout(entry.driver.stop(), this.config.timeout, 'stop');
      } catch (err) {
        this.log.error({ pipeline: entry.config.name }, `jobs: pipeline ${entry.config.name} did not stop cleanly: ${(err as Error).message}`);
      }
    });
  }

  driverContext(): DriverContext {
    return {
      queue: this.queue,
      log: this.log,
      workDir: this.env.workDir,
      timeoutMs: this.config.timeout,
      globalConfig: this.env.globalConfig,
    };
  }

  /** Every constructed pipeline's state (jobs.Stat, informer.Jobs); skipped pipelines have none. */
  async states(): Promise<PipelineState[]> {
    const drivers = [...this.pipelines.values()].flatMap((p) => (p.driver ? [p.driver] : []));
    return Promise.all(drivers.map((d) => withTimeout(d.state(), this.config.timeout, 'state')));
  }

  /** One poller: take a job, run it, settle it; until the queue closes. */
  private async poll(): Promise<void> {
    for (;;) {
      const job = await this.queue.take();
      if (job === null) return;
      this.running++;
      try {
        await this.runJob(job);
      } finally {
        this.running--;
      }
    }
  }

  private async runJob(job: DeliveredJob): Promise<void> {
    const { item } = job;
    let context: Buffer;
    try {
      context = Buffer.from(job.context(), 'utf8');
    } catch (err) {
      this.counters.jobsErr++;
      this.log.error({ id: item.id, pipeline: item.pipeline }, `jobs: cannot build the job's context: ${(err as Error).message}`);
      return this.settle(job, () => job.nack());
    }
    const chunks: ReplyChunk[] = [];
    let workerPid = 0;
    try {
      await this.pool.exec(
        { codec: Flag.CODEC_RAW, context, body: item.payload },
        {
          chunk: (reply, pid) => {
            workerPid = pid;
            chunks.push(reply);
          },
        },
      );
    } catch (err) {
      this.counters.jobsErr++;
      this.log.error({ id: item.id, job: item.job, pipeline: item.pipeline }, `jobs: job ${item.id} failed, it is delivered again: ${(err as Error).message}`);
      return this.settle(job, () => job.nack());
    }
    if (chunks.length !== 1 || chunks[0]!.more) {
      this.counters.jobsErr++;
      this.log.error({ id: item.id, pid: workerPid }, 'jobs: streaming is not supported: the job is nacked');
      return this.settle(job, () => job.nack());
    }
    const outcome = handleAnswer(chunks[0]!.body);
    if (outcome.kind === 'invalid') {
      this.counters.jobsErr++;
      this.log.error({ id: item.id, pid: workerPid, pipeline: item.pipeline }, `jobs: response handler error: ${outcome.reason}; the job is acknowledged`);
      return this.settle(job, () => job.ack());
    }
    this.counters.jobsOk++;
    if (outcome.log) this.log.warn({ id: item.id, pid: workerPid, pipeline: item.pipeline, message: outcome.message }, outcome.log);
    return this.settle(job, () => outcome.settle(job));
  }

  private async settle(job: DeliveredJob, how: () => Promise<void>): Promise<void> {
    try {
      await how();
    } catch (err) {
      this.log.error({ id: job.item.id, pipeline: job.item.pipeline }, `jobs: cannot settle job ${job.item.id}: ${(err as Error).message}`);
    }
  }

  async pipelineStates(): Promise<PipelineReport[]> {
    return (await this.states()).map((s) => ({ ...s, errorMessage: s.errorMessage ?? '' }));
  }
}

/** A pipeline of the file: its priority is `config.priority` (default 10). */
export function pipelineConfigFromFile(entry: JobsPipelineEntry): PipelineConfig {
  const config = { ...(entry.config ?? {}) };
  const raw = config.priority;
  const priority =
    typeof raw === 'number' && Number.isSafeInteger(raw)
      ? raw
      : typeof raw === 'string' && /^-?\d+$/.test(raw.trim())
        ? Number(raw)
        : DEFAULT_PIPELINE_PRIORITY;
  return { name: entry.name, driver: entry.driver, priority: priority === 0 ? DEFAULT_PIPELINE_PRIORITY : priority, config, declared: false };
}

/** Runs `fn` over `items`, at most `limit` at once. */
async function inBatches<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  });
  await Promise.all(lanes);
}

/** A driver call bounded by jobs.timeout, as RoadRunner bounds it with a context. */
export async function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new JobsDriverError(`${what}: context deadline exceeded (jobs.timeout, ${ms / 1000} s)`)), ms);
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}
