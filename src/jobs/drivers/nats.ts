// The `nats` jobs driver: a pipeline on a JetStream stream that publishes, consumes and settles jobs the way
// RoadRunner's natsjobs does (docs/jobs-nats.md), with its JSON job body and headers so both can share a stream,
// through the `nats` client, which reconnects by itself when nats-server goes away and comes back.
import { randomUUID } from 'node:crypto';
import {
  AckPolicy,
  connect,
  ConsumerEvents,
  DeliverPolicy,
  ErrorCode,
  Events,
  NatsError,
  headers as natsHeaders,
  type Consumer,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type MsgHdrs,
  type NatsConnection,
} from 'nats';
import type { Logger } from 'pino';
import type { DeliveredJob, DriverContext, DriverFactory, JobHeaders, JobItem, JobsDriver, PipelineConfig, PipelineState } from '../driver.js';
import { JobsDriverError } from '../../errors.js';
import { pipelineSettings } from './pipeline-keys.js';
import { contextJson } from '../context.js';
import { readNatsSettings, type NatsSettings } from './nats/config.js';
import { decodeItem, encodeItem } from './nats/message.js';
import { continueTrace } from '../tracing.js';

export const STOPPED_TEXT = 'failed to acknowledge the JOB, the pipeline is probably stopped';
export const NACK_STOPPED_TEXT = 'failed to NACK the JOB, the pipeline is probably stopped';
export const DELAY_TEXT = "nats doesn't support delayed messages, see: https://github.com/nats-io/nats-streaming-server/issues/324";
/** RoadRunner's job name for a body that is not its JSON Item (published by another client). */
export const DEDUCED_JOB = 'deduced_by_rr';
/** The header RoadRunner adds to every delivered job: the subject the message came on. */
export const SUBJECT_HEADER = 'x-nats-subject';
/** RoadRunner's connection options: reconnect forever, a second apart, ping every 10 s, a 1 min dial timeout. */
const RECONNECT_WAIT_MS = 1000;
const PING_INTERVAL_MS = 10_000;
const DIAL_TIMEOUT_MS = 60_000;
/**
 * How long nats-server keeps the consumer while nobody pulls (paused, rrts gone). Longer than JetStream's 5 s
 * default so that a pause keeps the consumer's ack floor; a new consumer starts from the stream's first message.
 */
const CONSUMER_INACTIVE_NS = 3_600 * 1e9;
/** One request's wait for nats-server's answer, and the pause before the next (a reconnect is under way). */
const ATTEMPT_MS = 2000;
const RETRY_PAUSE_MS = 250;

/** Constructs a nats pipeline: reads its keys, connects and creates or updates the stream (as RoadRunner). */
export const createNatsDriver: DriverFactory = async (pipeline, context) => {
  const settings = pipelineSettings('nats', pipeline.name, () => readNatsSettings(pipeline, context.globalConfig));
  const driver = new NatsDriver(pipeline, settings, context);
  await driver.open();
  return driver;
};

export class NatsDriver implements JobsDriver {
  readonly driver = 'nats';
  private readonly log: Logger;
  private connection: NatsConnection | null = null;
  private jetstream: JetStreamClient | null = null;
  private manager: JetStreamManager | null = null;
  private consumerName: string | null = null;
  private messages: ConsumerMessages | null = null;
  private loop: Promise<void> | null = null;
  private listening = false;
  private stopped = false;

  constructor(
    readonly pipeline: PipelineConfig,
    readonly settings: NatsSettings,
    private readonly context: DriverContext,
  ) {
    this.log = context.log.child({ pipeline: pipeline.name, driver: 'nats' });
  }

  private get where(): string {
    return `nats pipeline ${this.pipeline.name}`;
  }

  async open(): Promise<void> {
    const { addr, stream, subject } = this.settings;
    try {
      this.connection = await connect({
        servers: addr.split(',').map((url) => url.trim()),
        noEcho: true,
        timeout: DIAL_TIMEOUT_MS,
        maxReconnectAttempts: -1,
        reconnectTimeWait: RECONNECT_WAIT_MS,
        pingInterval: PING_INTERVAL_MS,
        name: `rrts ${this.pipeline.name}`,
      });
    } catch (err) {
      throw new JobsDriverError(`${this.where}: cannot connect to ${addr}: ${describe(err)}`);
    }
    void this.watchConnection(this.connection);
    try {
      this.manager = await this.connection.jetstreamManager();
      this.jetstream = this.connection.jetstream();
      await this.createOrUpdateStream(this.manager, stream, subject);
    } catch (err) {
      await this.connection.close().catch(() => {});
      this.connection = null;
      throw new JobsDriverError(`${this.where}: cannot create JetStream stream ${stream} on ${addr}: ${describe(err)}`);
    }
  }

  /** nats.go's CreateOrUpdateStream: add, and when the stream exists, set its subjects to ours. */
  private async createOrUpdateStream(manager: JetStreamManager, stream: string, subject: string): Promise<void> {
    try {
      await manager.streams.add({ name: stream, subjects: [subject] });
    } catch (err) {
      if (!/already in use|already exists/i.test(describe(err))) throw err;
      await manager.streams.update(stream, { subjects: [subject] });
    }
  }

  private async watchConnection(connection: NatsConnection): Promise<void> {
    for await (const status of connection.status()) {
      if (status.type === Events.Disconnect) this.log.warn({ server: status.data }, 'nats disconnected, reconnecting');
      else if (status.type === Events.Reconnect) this.log.info({ server: status.data }, 'nats connection restored');
      else if (status.type === Events.Error) this.log.error({ err: String(status.data) }, 'nats connection error');
    }
  }

  private client(): { jetstream: JetStreamClient; manager: JetStreamManager } {
    if (this.stopped || !this.jetstream || !this.manager) throw new JobsDriverError(`${this.where} is stopped`);
    return { jetstream: this.jetstream, manager: this.manager };
  }

  // --- push --------------------------------------------------------------------------------------------------------

  async push(item: JobItem): Promise<void> {
    if (item.delaySeconds > 0) throw new JobsDriverError(DELAY_TEXT);
    const body = encodeItem({
      job: item.job,
      id: item.id,
      payload: item.payload,
      priority: item.priority,
      pipeline: item.pipeline,
      delaySeconds: 0,
      autoAck: item.autoAck,
      queue: '',
    });
    await this.publish(body, item.headers, `push of job ${item.id}`);
  }

  /** Publishes to the pipeline's subject and waits for the stream's acknowledgement (the job is stored then). */
  async publish(body: Uint8Array, headers: JobHeaders, what: string): Promise<void> {
    const { jetstream } = this.client();
    let msgHeaders: MsgHdrs | undefined;
    try {
      msgHeaders = toMsgHeaders(headers);
    } catch (err) {
      throw new JobsDriverError(`${this.where}: ${what}: the headers cannot be NATS headers: ${describe(err)}`);
    }
    try {
      await this.acrossRestarts((timeout) => jetstream.publish(this.settings.subject, body, msgHeaders ? { headers: msgHeaders, timeout } : { timeout }));
    } catch (err) {
      throw new JobsDriverError(`${this.where}: ${what} to subject ${this.settings.subject} failed: ${describe(err)}`);
    }
  }

  /**
   * Runs a request to nats-server, again while it times out or finds no JetStream (a restart under way), until
   * jobs.timeout. A publish tried again may be stored twice (at least once); an ack or a delete is idempotent.
   */
  async acrossRestarts<T>(request: (timeoutMs: number) => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.context.timeoutMs;
    for (;;) {
      try {
        return await request(Math.max(1, Math.min(ATTEMPT_MS, deadline - Date.now())));
      } catch (err) {
        if (this.stopped || !isPassing(err) || Date.now() + RETRY_PAUSE_MS >= deadline) throw err;
        this.log.debug({ err: describe(err) }, 'nats request failed; trying again');
        await sleep(RETRY_PAUSE_MS);
      }
    }
  }

  // --- consuming ---------------------------------------------------------------------------------------------------

  /** Creates the pipeline's consumer (a new one after `stop`, or when nats-server lost it) and pulls from it. */
  async run(): Promise<void> {
    if (this.listening) {
      this.log.warn('nats listener is already in the active state');
      return;
    }
    await this.startListening();
  }

  async pause(): Promise<void> {
    if (!this.listening) throw new JobsDriverError('no active listeners, nothing to pause');
    this.listening = false;
    await this.stopPulling();
    // jobs waiting in the plugin's queue go back to the stream now, not after the ack wait
    for (const job of this.context.queue.removePipeline(this.pipeline.name) as NatsJob[]) job.giveBack();
  }

  async resume(): Promise<void> {
    if (this.listening) throw new JobsDriverError('nats listener is already in the active state');
    await this.startListening();
  }

  private async startListening(): Promise<void> {
    const { jetstream, manager } = this.client();
    let consumer: Consumer;
    try {
      consumer = await this.consumer(jetstream, manager);
    } catch (err) {
      throw new JobsDriverError(`${this.where}: cannot create a consumer on stream ${this.settings.stream}: ${describe(err)}`);
    }
    // nats.js re-pulls after a reconnect by itself; max_messages keeps at most `prefetch` jobs on their way
    const messages = await consumer.consume({ max_messages: this.settings.prefetch });
    this.messages = messages;
    this.listening = true;
    void this.watchConsumer(messages);
    this.loop = this.listen(messages).finally(() => (this.loop = null));
  }

  /** RoadRunner's consumer: a uuid name, explicit acks, max_ack_pending = prefetch; kept across a pause. */
  private async consumer(jetstream: JetStreamClient, manager: JetStreamManager): Promise<Consumer> {
    if (this.consumerName) {
      try {
        return await jetstream.consumers.get(this.settings.stream, this.consumerName);
      } catch (err) {
        this.log.info({ err: describe(err), consumer: this.consumerName }, 'nats consumer is gone; creating a new one');
      }
    }
    const name = randomUUID();
    await manager.consumers.add(this.settings.stream, {
      name,
      ack_policy: AckPolicy.Explicit,
      max_ack_pending: this.settings.prefetch,
      deliver_policy: this.settings.deliverNew ? DeliverPolicy.New : DeliverPolicy.All,
      inactive_threshold: CONSUMER_INACTIVE_NS,
    });
    this.consumerName = name;
    return jetstream.consumers.get(this.settings.stream, name);
  }

  /** A consumer nats-server lost (a restart without its store, a delete) is created anew and pulled from. */
  private async watchConsumer(messages: ConsumerMessages): Promise<void> {
    for await (const status of await messages.status()) {
      if (status.type !== ConsumerEvents.ConsumerNotFound && status.type !== ConsumerEvents.ConsumerDeleted) continue;
      if (this.messages !== messages || !this.listening) return;
      this.log.warn({ consumer: this.consumerName, event: status.type }, 'nats consumer lost; creating a new one');
      this.consumerName = null;
      this.listening = false;
      await this.stopPulling();
      try {
        await this.startListening();
      } catch (err) {
        this.log.error({ err: describe(err) }, 'nats listener stopped; jobs.Resume starts it again');
      }
      return;
    }
  }

  private async listen(messages: ConsumerMessages): Promise<void> {
    for await (const message of messages) {
      if (this.stopped) break;
      if (this.messages !== messages) {
        // arrived while pause closed the pull: back to the stream at once
        message.nak();
        continue;
      }
      // RoadRunner's InProgress: the ack wait starts again when the job reaches rrts
      message.working();
      const job = this.unpack(message);
      if (job.item.autoAck) {
        try {
          await this.acrossRestarts((timeout) => message.ackAck({ timeout }));
          if (this.settings.deleteAfterAck) await this.deleteMessage(message.seq);
        } catch (err) {
          this.log.error({ err: describe(err), seq: message.seq }, 'nats: acknowledging an auto_ack job failed');
          continue;
        }
      }
      await this.context.queue.insert(job);
    }
  }

  private async stopPulling(): Promise<void> {
    const messages = this.messages;
    this.messages = null;
    if (!messages) return;
    await messages.close().catch(() => {});
    await this.loop?.catch(() => {});
  }

  private unpack(message: JsMsg): NatsJob {
    const headers = fromMsgHeaders(message.headers);
    headers[SUBJECT_HEADER] = [message.subject];
    // RoadRunner's listener span continues the trace the message headers carry
    continueTrace(headers);
    const decoded = decodeItem(message.data);
    let item: JobItem;
    if (decoded) {
      item = {
        id: decoded.id,
        job: decoded.job,
        payload: decoded.payload,
        headers,
        pipeline: this.pipeline.name,
        priority: decoded.priority === 0 ? this.pipeline.priority : decoded.priority,
        delaySeconds: decoded.delaySeconds,
        autoAck: decoded.autoAck,
      };
    } else {
      item = {
        id: randomUUID(),
        job: DEDUCED_JOB,
        payload: Buffer.from(message.data),
        headers,
        pipeline: this.pipeline.name,
        priority: this.pipeline.priority,
        delaySeconds: 0,
        autoAck: false,
      };
      this.log.debug({ id: item.id, seq: message.seq }, 'raw payload');
    }
    return new NatsJob(this, message, item);
  }

  async deleteMessage(seq: number): Promise<void> {
    const { manager } = this.client();
    await this.acrossRestarts(() => manager.streams.deleteMessage(this.settings.stream, seq, false));
  }

  /** RoadRunner's Stat: the subject as queue; active = delivered and not acked, reserved = not delivered yet. */
  async state(): Promise<PipelineState> {
    const state: PipelineState = {
      pipeline: this.pipeline.name,
      driver: this.driver,
      queue: this.settings.subject,
      active: 0,
      delayed: 0,
      reserved: 0,
      ready: this.listening,
      priority: this.pipeline.priority,
    };
    if (this.listening && this.consumerName) {
      const { manager } = this.client();
      try {
        const info = await manager.consumers.info(this.settings.stream, this.consumerName);
        state.active = info.num_ack_pending;
        state.reserved = info.num_pending;
      } catch (err) {
        throw new JobsDriverError(`${this.where}: consumer info on stream ${this.settings.stream} failed: ${describe(err)}`);
      }
    }
    return state;
  }

  /**
   * Stops pulling, deletes the stream when delete_stream_on_stop, drains and closes the connection. Unlike
   * RoadRunner, the stream is not purged: jobs nobody consumed yet wait for the next start (docs/jobs-nats.md §4).
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.listening = false;
    this.context.queue.removePipeline(this.pipeline.name);
    await this.stopPulling();
    const { manager } = this.client();
    this.stopped = true;
    const connection = this.connection;
    this.connection = null;
    this.jetstream = null;
    this.manager = null;
    try {
      if (this.settings.deleteStreamOnStop) await manager.streams.delete(this.settings.stream);
      else if (this.consumerName) await manager.consumers.delete(this.settings.stream, this.consumerName).catch(() => false);
    } catch (err) {
      throw new JobsDriverError(`${this.where}: cannot delete stream ${this.settings.stream}: ${describe(err)}`);
    } finally {
      await connection?.drain().catch(() => connection.close());
    }
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  get stream(): string {
    return this.settings.stream;
  }
}

/** A delivered message, settled through its reply subject on the connection (any connection after a reconnect). */
class NatsJob implements DeliveredJob {
  private settled = false;

  constructor(
    private readonly driver: NatsDriver,
    private readonly message: JsMsg,
    readonly item: JobItem,
  ) {}

  context(): string {
    return contextJson([
      ['id', this.item.id],
      ['job', this.item.job],
      ['driver', 'nats'],
      ['headers', this.item.headers],
      ['pipeline', this.item.pipeline],
      ['queue', this.driver.stream],
    ]);
  }

  async ack(): Promise<void> {
    this.check(STOPPED_TEXT);
    if (this.item.autoAck || this.settled) return;
    this.settled = true;
    await this.settle('ack', () => this.driver.acrossRestarts((timeout) => this.message.ackAck({ timeout })));
    if (this.driver.settings.deleteAfterAck) await this.settle('delete', () => this.driver.deleteMessage(this.message.seq));
  }

  /** The worker failed the job: nak, nats-server delivers it again at once. */
  async nack(): Promise<void> {
    this.check(STOPPED_TEXT);
    if (this.item.autoAck || this.settled) return;
    this.settled = true;
    this.message.nak();
  }

  /** NACK: redeliver after the delay (nak with a delay), or term (never delivered again). */
  async nackWithOptions(redeliver: boolean, delaySeconds: number): Promise<void> {
    this.check(NACK_STOPPED_TEXT);
    if (this.item.autoAck || this.settled) return;
    this.settled = true;
    if (redeliver) this.message.nak(delaySeconds > 0 ? delaySeconds * 1000 : undefined);
    else this.message.term();
  }

  /**
   * A copy with the merged headers goes to the subject, then this message is deleted and acked (RoadRunner's
   * order). RoadRunner ignores the delay here; rrts too (JetStream has no delayed publish). RoadRunner publishes
   * the copy without its headers: rrts keeps them (docs/jobs-nats.md §4).
   */
  async requeue(headers: JobHeaders): Promise<void> {
    this.check(STOPPED_TEXT);
    const merged: JobHeaders = { ...this.item.headers, ...headers };
    delete merged[SUBJECT_HEADER];
    const body = encodeItem({
      job: this.item.job,
      id: this.item.id,
      payload: this.item.payload,
      priority: this.item.priority,
      pipeline: this.item.pipeline,
      delaySeconds: this.item.delaySeconds,
      autoAck: this.item.autoAck,
      queue: this.driver.stream,
    });
    try {
      await this.driver.publish(body, merged, `requeue of job ${this.item.id}`);
    } catch (err) {
      if (!this.item.autoAck && !this.settled) {
        this.settled = true;
        this.message.nak();
      }
      throw err;
    }
    if (this.item.autoAck || this.settled) return;
    this.settled = true;
    await this.settle('delete', () => this.driver.deleteMessage(this.message.seq));
    await this.settle('ack', () => this.driver.acrossRestarts((timeout) => this.message.ackAck({ timeout })));
  }

  /** Back to the stream unsettled (pause): nak, so nats-server delivers it again when pulling resumes. */
  giveBack(): void {
    if (this.item.autoAck || this.settled) return;
    this.settled = true;
    this.message.nak();
  }

  private check(text: string): void {
    if (this.driver.isStopped) throw new JobsDriverError(text);
  }

  private async settle(what: string, operation: () => Promise<unknown>): Promise<void> {
    try {
      await operation();
    } catch (err) {
      throw new JobsDriverError(
        `nats pipeline ${this.driver.pipeline.name}: cannot ${what} job ${this.item.id} (stream ${this.driver.stream} seq ${this.message.seq}): ${describe(err)}`,
      );
    }
  }
}

/** Job headers as NATS headers (keys as given, every value); none when there are none, as nats.go sends. */
function toMsgHeaders(headers: JobHeaders): MsgHdrs | undefined {
  const keys = Object.keys(headers);
  if (keys.length === 0) return undefined;
  const msgHeaders = natsHeaders();
  for (const key of keys) for (const value of headers[key] ?? []) msgHeaders.append(key, value);
  return msgHeaders;
}

function fromMsgHeaders(msgHeaders: MsgHdrs | undefined): JobHeaders {
  const headers: JobHeaders = {};
  if (!msgHeaders) return headers;
  for (const key of msgHeaders.keys()) headers[key] = msgHeaders.values(key);
  return headers;
}

/** A publish that timed out, or found no JetStream yet: what a nats-server restart looks like from here. */
const PASSING_CODES: ReadonlySet<string> = new Set<string>([ErrorCode.Timeout, ErrorCode.Disconnect, ErrorCode.ConnectionRefused, ErrorCode.NoResponders]);

function isPassing(err: unknown): boolean {
  return err instanceof NatsError && PASSING_CODES.has(err.code);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
