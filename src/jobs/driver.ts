// The seam between the jobs plugin and its drivers (memory, amqp, boltdb): what a driver must do, in RoadRunner's
// terms (docs/jobs.md). The plugin owns the priority queue, the pollers and the worker pool; a driver owns where
// jobs wait before that queue and what ack, nack and requeue mean for them.
import type { Logger } from 'pino';

/** Headers as RoadRunner carries them: Go's map[string][]string. */
export type JobHeaders = Record<string, string[]>;

/** One job as pushed over RPC (jobs.v1.Job with its Options), after the plugin filled in the pipeline's priority. */
export interface JobItem {
  /** the producer's id (the SDK sends a UUIDv4); a requeue keeps it */
  id: string;
  /** the job name, usually a PHP class */
  job: string;
  payload: Buffer;
  headers: JobHeaders;
  pipeline: string;
  /** lower runs first; never 0 here: a push with priority 0 gets the pipeline's */
  priority: number;
  delaySeconds: number;
  autoAck: boolean;
}

/**
 * A job a driver put into the plugin's queue: the item, the context the worker gets, and how to settle it. The
 * plugin calls exactly one of the settling methods once the worker answered (or failed); each resolves when the
 * driver has done what it means (a broker ack sent, a record deleted) and rejects with the driver's error text
 * ("failed to acknowledge the JOB, the pipeline is probably stopped" once the pipeline stopped).
 */
export interface DeliveredJob {
  readonly item: JobItem;
  /** The context JSON of the job frame, in this driver's field order (docs/jobs.md §2.2). */
  context(): string;
  /** ACK, NO_ERROR, fail() without requeue, an answer that is not the protocol's. */
  ack(): Promise<void>;
  /** The worker crashed, sent an ERROR frame, ran out of exec_ttl, or no worker came in time. */
  nack(): Promise<void>;
  /** NACK: redeliver or drop, after delaySeconds when redelivered. */
  nackWithOptions(redeliver: boolean, delaySeconds: number): Promise<void>;
  /** REQUEUE and fail() with requeue: merge the headers (sent keys replace), push again after delaySeconds. */
  requeue(headers: JobHeaders, delaySeconds: number): Promise<void>;
}

/** Where a driver puts jobs that are ready to run: the plugin's one priority queue for every pipeline. */
export interface JobQueue {
  /** Waits while the queue is at `pipeline_size` (RoadRunner spins; waiting is the same without the CPU). */
  insert(job: DeliveredJob): Promise<void>;
  /** Takes this pipeline's jobs out of the queue (pause of boltdb, stop, destroy) and returns them. */
  removePipeline(pipeline: string): DeliveredJob[];
}

/** jobs.Stat's Stat message and informer.Jobs's entry (docs/jobs.md §3.3, §4.9). */
export interface PipelineState {
  pipeline: string;
  driver: string;
  queue: string;
  active: number;
  delayed: number;
  reserved: number;
  ready: boolean;
  priority: number;
  errorMessage?: string;
}

/** A pipeline as configured (jobs.pipelines.<name>) or declared over RPC (jobs.Declare's string map). */
export interface PipelineConfig {
  name: string;
  driver: string;
  priority: number;
  /** The driver's keys: jobs.pipelines.<name>.config from the file, or the Declare map (every value a string). */
  config: Record<string, unknown>;
  /** true for jobs.Declare: values are strings to parse ("true", "100", "0755") */
  declared: boolean;
}

export interface DriverContext {
  queue: JobQueue;
  log: Logger;
  /** the config file's directory: relative paths (boltdb's file) are relative to it */
  workDir: string;
  /** jobs.timeout in ms: the bound of each push, pause, resume, run, stop and state */
  timeoutMs: number;
  /** the config's top-level sections a driver may read (amqp: its global `amqp:` section) */
  globalConfig: Record<string, unknown>;
}

/** One pipeline's driver. Methods reject with the RoadRunner error text the RPC caller should see (docs/jobs.md §3.3). */
export interface JobsDriver {
  /** `memory`, `amqp`, `boltdb` */
  readonly driver: string;
  readonly pipeline: PipelineConfig;
  /** Accepts a job; it goes to the queue now or after its delay, when the pipeline consumes. */
  push(item: JobItem): Promise<void>;
  /** Starts consuming (pipelines in jobs.consume at start, jobs.Resume later). */
  run(): Promise<void>;
  pause(): Promise<void>;
  resume(): Promise<void>;
  state(): Promise<PipelineState>;
  /** Stops consuming and lets go of its connections or files (destroy, shutdown). */
  stop(): Promise<void>;
}

/** A driver's constructor, registered by driver name. Rejects with a message naming the pipeline and the key. */
export type DriverFactory = (pipeline: PipelineConfig, context: DriverContext) => Promise<JobsDriver>;
