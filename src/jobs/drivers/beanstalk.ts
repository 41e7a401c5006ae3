// The `beanstalk` jobs driver: a pipeline on a beanstalkd tube that puts, reserves and settles jobs the way
// RoadRunner's beanstalkjobs does (docs/jobs-beanstalk.md), with the job body in its gob encoding so both can share a
// tube, and a redial when beanstalkd goes away. The wire protocol is ./beanstalk/protocol.ts (why not jackd: there).
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { DeliveredJob, DriverContext, DriverFactory, JobHeaders, JobItem, JobsDriver, PipelineConfig, PipelineState } from '../driver.js';
import { JobsDriverError } from '../../errors.js';
import { pipelineSettings } from './pipeline-keys.js';
import { contextJson } from '../context.js';
import { readBeanstalkSettings, type BeanstalkSettings } from './beanstalk/config.js';
import { decodeItem, encodeItem } from './beanstalk/gob.js';
import { BeanstalkConnection, BeanstalkConnectionError, BeanstalkReplyError, parseStats } from './beanstalk/protocol.js';
import { continueTrace } from '../tracing.js';

export const STOPPED_TEXT = 'failed to acknowledge the JOB, the pipeline is probably stopped';
/** RoadRunner's job name for a body that is not its gob Item (put by another client). */
export const DEDUCED_JOB = 'deduced_by_rr';
/** cenkalti/backoff's defaults, which RoadRunner's redial uses: 0.5 s × 1.5 per attempt, ±50 %, for at most 1 min. */
const REDIAL_FIRST_MS = 500;
const REDIAL_FACTOR = 1.5;
const REDIAL_JITTER = 0.5;
const REDIAL_MAX_ELAPSED_MS = 60_000;
/** After DEADLINE_SOON (a job of ours is about to time out) beanstalkd answers every reserve at once: wait a little. */
const DEADLINE_SOON_PAUSE_MS = 100;
/**
 * While jobs reserved on the connection wait for their worker, the loop polls (reserve-with-timeout 0) at this pace
 * instead of blocking for reserve_timeout: beanstalkd answers a connection's commands in order, so a delete sent
 * behind a blocking reserve (RoadRunner) waits up to reserve_timeout before the job counts as done.
 */
const BUSY_POLL_MS = 20;

/** Constructs a beanstalk pipeline: reads its keys and dials beanstalkd (no retry at construction, as RoadRunner). */
export const createBeanstalkDriver: DriverFactory = async (pipeline, context) => {
  const settings = pipelineSettings('beanstalk', pipeline.name, () => readBeanstalkSettings(pipeline, context.globalConfig));
  const driver = new BeanstalkDriver(pipeline, settings, context);
  await driver.open();
  return driver;
};

/** The two connections of a pipeline, as RoadRunner keeps them: one puts and reads stats, one reserves and settles. */
interface Connections {
  put: BeanstalkConnection;
  reserve: BeanstalkConnection;
  /** counts redials: a job reserved on an older pair can no longer be deleted (beanstalkd released it) */
  generation: number;
}

export class BeanstalkDriver implements JobsDriver {
  readonly driver = 'beanstalk';
  private readonly log: Logger;
  private connections: Connections | null = null;
  private redialing: Promise<Connections> | null = null;
  private generation = 0;
  /** jobs reserved on the current connection and not settled yet */
  private inFlight = 0;
  private listening = false;
  private loop: Promise<void> | null = null;
  private stopped = false;

  constructor(
    readonly pipeline: PipelineConfig,
    readonly settings: BeanstalkSettings,
    private readonly context: DriverContext,
  ) {
    this.log = context.log.child({ pipeline: pipeline.name, driver: 'beanstalk' });
  }

  private get addr(): string {
    return `${this.settings.network}://${this.settings.address}`;
  }

  async open(): Promise<void> {
    try {
      this.connections = await this.dial();
    } catch (err) {
      throw new JobsDriverError(`beanstalk pipeline ${this.pipeline.name}: cannot connect to ${this.addr}: ${describe(err)}`);
    }
  }

  private async dial(): Promise<Connections> {
    const { network, address, timeoutMs, tube } = this.settings;
    const put = await BeanstalkConnection.connect(network, address, timeoutMs);
    let reserve: BeanstalkConnection | null = null;
    try {
      reserve = await BeanstalkConnection.connect(network, address, timeoutMs);
      await put.command(`use ${tube}`, ['USING']);
      await reserve.command(`watch ${tube}`, ['WATCHING']);
      if (tube !== 'default') await reserve.command('ignore default', ['WATCHING']);
    } catch (err) {
      put.close();
      reserve?.close();
      throw err;
    }
    const connections = { put, reserve, generation: ++this.generation };
    // at once, not when the listen loop next dials: a loop waiting for room in the queue would let its jobs start
    reserve.onLost = () => this.dropReserved(connections);
    return connections;
  }

  /** Jobs reserved on a lost connection leave the queue unstarted: beanstalkd hands them out again. */
  private dropReserved(lost: Connections): void {
    if (this.connections !== lost) return;
    const dropped = this.context.queue.removePipeline(this.pipeline.name).length;
    if (dropped > 0) this.log.warn({ addr: this.addr, droppedFromQueue: dropped }, 'beanstalk connection lost: its reserved jobs are left to beanstalkd');
  }

  /** The live pair, dialing again when a connection was lost (with RoadRunner's backoff; rejects after 1 min). */
  private async live(): Promise<Connections> {
    if (this.stopped) throw new JobsDriverError(`beanstalk pipeline ${this.pipeline.name} is stopped`);
    const current = this.connections;
    if (current && !current.put.closed && !current.reserve.closed) return current;
    this.redialing ??= this.redial().finally(() => (this.redialing = null));
    return this.redialing;
  }

  private async redial(): Promise<Connections> {
    const lost = this.connections;
    if (lost) {
      this.connections = null;
      lost.put.close();
      lost.reserve.close();
      this.inFlight = 0;
      // beanstalkd hands the jobs reserved on the lost connection out again; running them now would run them twice
      const dropped = this.context.queue.removePipeline(this.pipeline.name).length;
      this.log.warn({ addr: this.addr, droppedFromQueue: dropped }, 'beanstalk connection lost, redialing');
    }
    const since = Date.now();
    let interval = REDIAL_FIRST_MS;
    for (;;) {
      try {
        const connections = await this.dial();
        if (this.stopped) {
          connections.put.close();
          connections.reserve.close();
          throw new JobsDriverError(`beanstalk pipeline ${this.pipeline.name} is stopped`);
        }
        this.connections = connections;
        if (lost) this.log.info({ addr: this.addr, elapsedMs: Date.now() - since }, 'beanstalk connection restored');
        return connections;
      } catch (err) {
        if (err instanceof JobsDriverError) throw err;
        const delay = Math.round(interval * (1 + (Math.random() * 2 - 1) * REDIAL_JITTER));
        if (Date.now() + delay - since > REDIAL_MAX_ELAPSED_MS) {
          throw new JobsDriverError(`beanstalk pipeline ${this.pipeline.name}: redial of ${this.addr} failed for 1m: ${describe(err)}`);
        }
        this.log.debug({ err: describe(err), delayMs: delay }, 'beanstalk redial attempt failed');
        await sleep(delay);
        interval *= REDIAL_FACTOR;
        if (this.stopped) throw new JobsDriverError(`beanstalk pipeline ${this.pipeline.name} is stopped`);
      }
    }
  }

  /** Runs `operation` on the live pair; after a lost connection, once more on the redialed one (as RoadRunner). */
  private async withConnections<T>(operation: (c: Connections) => Promise<T>): Promise<T> {
    const first = await this.live();
    try {
      return await operation(first);
    } catch (err) {
      if (!(err instanceof BeanstalkConnectionError)) throw err;
      return operation(await this.live());
    }
  }

  // --- push --------------------------------------------------------------------------------------------------------

  async push(item: JobItem): Promise<void> {
    await this.put(item, `push of job ${item.id}`);
  }

  /** Puts the job's gob Item with the tube priority, its delay and `timeout` as its time-to-run. */
  async put(item: JobItem, what: string): Promise<void> {
    const body = encodeItem({
      job: item.job,
      id: item.id,
      payload: item.payload,
      headers: item.headers,
      priority: item.priority,
      pipeline: item.pipeline,
      delay: item.delaySeconds,
      autoAck: item.autoAck,
      queue: '',
    });
    const ttr = Math.max(1, Math.floor(this.settings.timeoutMs / 1000));
    const line = `put ${this.settings.tubePriority} ${Math.max(0, item.delaySeconds)} ${ttr} ${body.length}`;
    try {
      await this.withConnections((c) => c.put.command(line, ['INSERTED'], body));
    } catch (err) {
      throw new JobsDriverError(`beanstalk pipeline ${this.pipeline.name}: ${what} failed: ${describe(err)}`);
    }
  }

  // --- consuming ---------------------------------------------------------------------------------------------------

  async run(): Promise<void> {
    if (this.stopped) throw new JobsDriverError(`beanstalk pipeline ${this.pipeline.name} is stopped`);
    this.listening = true;
    if (this.loop) return; // a paused loop still finishing its last reserve picks up again
    this.loop = this.listen()
      .catch((err: unknown) => {
        this.listening = false;
        this.log.error({ err: describe(err) }, 'beanstalk listener stopped by an error; jobs.Resume starts it again');
      })
      .finally(() => (this.loop = null));
  }

  async pause(): Promise<void> {
    if (!this.listening) throw new JobsDriverError('no active listeners, nothing to pause');
    this.listening = false;
    await this.releaseQueued();
  }

  async resume(): Promise<void> {
    if (this.listening) throw new JobsDriverError('beanstalk listener already in the active state');
    await this.run();
  }

  private async listen(): Promise<void> {
    while (this.listening && !this.stopped) {
      let connections: Connections;
      try {
        connections = await this.live();
      } catch (err) {
        if (this.stopped) return;
        this.log.error({ err: describe(err) }, 'beanstalk listen: beanstalkd is unreachable; trying again');
        continue;
      }
      const busy = this.inFlight > 0;
      let reply;
      try {
        const wait = busy ? 0 : this.settings.reserveTimeoutSeconds;
        reply = await connections.reserve.command(`reserve-with-timeout ${wait}`, ['RESERVED', 'TIMED_OUT', 'DEADLINE_SOON']);
      } catch (err) {
        if (this.stopped) return;
        if (!(err instanceof BeanstalkConnectionError)) this.log.error({ err: describe(err) }, 'beanstalk listen');
        continue; // a lost connection is redialed by live()
      }
      if (reply.words[0] === 'DEADLINE_SOON') await sleep(DEADLINE_SOON_PAUSE_MS);
      if (reply.words[0] === 'TIMED_OUT' && busy) await sleep(BUSY_POLL_MS);
      if (reply.words[0] !== 'RESERVED') continue;
      const job = this.unpack(reply.words[1]!, reply.body ?? Buffer.alloc(0), connections);
      if (!job.item.autoAck) this.inFlight++;
      if (!this.listening || this.stopped) {
        // paused while the reserve was waiting: the job goes back to the tube (auto_ack ones too: not deleted yet)
        await job.release(true).catch(() => {});
        continue;
      }
      if (job.item.autoAck) {
        await connections.reserve.command(`delete ${job.beanstalkId}`, ['DELETED']).catch((err: unknown) => {
          this.log.error({ err: describe(err), id: job.beanstalkId }, 'beanstalk: deleting an auto_ack job failed');
        });
      }
      await this.context.queue.insert(job);
    }
  }

  private unpack(beanstalkId: string, body: Buffer, connections: Connections): BeanstalkJob {
    let item: JobItem;
    let contextPipeline: string;
    try {
      const decoded = decodeItem(body);
      item = {
        id: decoded.id,
        job: decoded.job,
        payload: decoded.payload,
        headers: decoded.headers,
        pipeline: this.pipeline.name,
        priority: decoded.priority === 0 ? this.pipeline.priority : decoded.priority,
        delaySeconds: decoded.delay,
        autoAck: decoded.autoAck,
      };
      contextPipeline = decoded.pipeline;
    } catch (err) {
      this.log.debug({ err: describe(err), id: beanstalkId }, 'failed to unpack the item');
      item = {
        id: randomUUID(),
        job: DEDUCED_JOB,
        payload: body,
        headers: {},
        pipeline: this.pipeline.name,
        priority: this.pipeline.priority,
        delaySeconds: 0,
        autoAck: false,
      };
      contextPipeline = this.pipeline.name;
    }
    // RoadRunner's listener span, also for a body it could not decode
    continueTrace(item.headers);
    return new BeanstalkJob(this, beanstalkId, item, contextPipeline, connections);
  }

  /** Jobs of this pipeline waiting in the plugin's queue go back to the tube (RoadRunner drops them and lets ttr expire). */
  private async releaseQueued(): Promise<void> {
    const queued = this.context.queue.removePipeline(this.pipeline.name) as BeanstalkJob[];
    for (const job of queued) await job.release().catch(() => {});
  }

  async state(): Promise<PipelineState> {
    let stats: Record<string, string> = {};
    try {
      stats = await this.withConnections(async (c) => {
        try {
          return parseStats((await c.put.command(`stats-tube ${this.settings.tube}`, ['OK'])).body);
        } catch (err) {
          // beanstalkd knows a tube only while it holds a job or someone uses or watches it
          if (err instanceof BeanstalkReplyError && err.reply === 'NOT_FOUND') return {};
          throw err;
        }
      });
    } catch (err) {
      throw new JobsDriverError(`beanstalk pipeline ${this.pipeline.name}: stats of tube ${this.settings.tube} failed: ${describe(err)}`);
    }
    const count = (key: string) => {
      const n = Number(stats[key]);
      return Number.isSafeInteger(n) ? n : 0;
    };
    return {
      pipeline: this.pipeline.name,
      driver: this.driver,
      queue: this.settings.tube,
      active: count('current-jobs-ready'),
      delayed: count('current-jobs-delayed'),
      reserved: count('current-jobs-reserved'),
      ready: this.listening,
      priority: this.pipeline.priority,
    };
  }

  /** Stops reserving and closes both connections: beanstalkd puts the jobs reserved and not settled back as ready. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.listening = false;
    this.context.queue.removePipeline(this.pipeline.name);
    const connections = this.connections;
    this.connections = null;
    connections?.put.close();
    connections?.reserve.close();
    await this.loop?.catch(() => {});
  }

  // --- settling (docs/jobs-beanstalk.md §3) ---------------------------------------------------------------------------

  /** The reserving connection, if the job was reserved on it; a job of a lost connection cannot be settled. */
  connectionOf(job: BeanstalkJob): BeanstalkConnection {
    if (this.stopped) throw new JobsDriverError(STOPPED_TEXT);
    const current = this.connections;
    if (!current || current.generation !== job.generation || current.reserve.closed) {
      throw new JobsDriverError(
        `beanstalk pipeline ${this.pipeline.name}: job ${job.item.id} was reserved on a connection that was lost; beanstalkd hands it out again`,
      );
    }
    return current.reserve;
  }

  /** A job of the current connection was settled or released (once per job). */
  doneWith(job: BeanstalkJob): void {
    if (this.connections?.generation === job.generation && this.inFlight > 0) this.inFlight--;
  }

  get tubePriority(): number {
    return this.settings.tubePriority;
  }
}

/** A reserved job, settled on the connection that reserved it (beanstalkd lets no other delete or release it). */
class BeanstalkJob implements DeliveredJob {
  readonly generation: number;
  private settled = false;

  constructor(
    private readonly driver: BeanstalkDriver,
    readonly beanstalkId: string,
    readonly item: JobItem,
    private readonly contextPipeline: string,
    connections: Connections,
  ) {
    this.generation = connections.generation;
  }

  context(): string {
    return contextJson([
      ['id', this.item.id],
      ['job', this.item.job],
      ['driver', 'beanstalk'],
      ['headers', this.item.headers],
      ['queue', this.driver.settings.tube],
      ['pipeline', this.contextPipeline],
    ]);
  }

  ack(): Promise<void> {
    return this.delete('ack');
  }

  /** The worker failed the job: RoadRunner deletes it. */
  nack(): Promise<void> {
    return this.delete('nack');
  }

  async nackWithOptions(redeliver: boolean, delaySeconds: number): Promise<void> {
    if (!redeliver) return this.delete('nack');
    if (this.item.autoAck) return;
    await this.putAgain(this.item.headers, delaySeconds);
  }

  async requeue(headers: JobHeaders, delaySeconds: number): Promise<void> {
    await this.putAgain({ ...this.item.headers, ...headers }, delaySeconds);
  }

  /** Back to the tube as it is (pause, and a reserve that returned after the pause: `evenAutoAck`, not deleted yet). */
  async release(evenAutoAck = false): Promise<void> {
    if (this.settled || (this.item.autoAck && !evenAutoAck)) return;
    const connection = this.driver.connectionOf(this);
    this.settled = true;
    this.driver.doneWith(this);
    await connection.command(`release ${this.beanstalkId} ${this.driver.tubePriority} 0`, ['RELEASED']);
  }

  /** A copy with the new headers and delay goes in first, then this one is deleted: a failure never loses the job. */
  private async putAgain(headers: JobHeaders, delaySeconds: number): Promise<void> {
    this.driver.connectionOf(this);
    await this.driver.put({ ...this.item, headers, delaySeconds, pipeline: this.contextPipeline || this.item.pipeline }, `requeue of job ${this.item.id}`);
    if (!this.item.autoAck) await this.delete('requeue');
  }

  private async delete(what: string): Promise<void> {
    if (this.item.autoAck || this.settled) return;
    const connection = this.driver.connectionOf(this);
    this.settled = true;
    this.driver.doneWith(this);
    try {
      await connection.command(`delete ${this.beanstalkId}`, ['DELETED']);
    } catch (err) {
      throw new JobsDriverError(
        `beanstalk pipeline ${this.driver.pipeline.name}: cannot ${what} job ${this.item.id} (beanstalkd id ${this.beanstalkId}): ${describe(err)}`,
      );
    }
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
