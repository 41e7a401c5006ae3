// The `amqp` jobs driver: a pipeline on RabbitMQ (AMQP 0-9-1 through amqplib) that publishes and consumes jobs the
// way RoadRunner's amqpjobs does (docs/jobs-amqp.md), redials a lost broker, and never drops a push silently.
import fs from 'node:fs';
import { randomUUID } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import amqp from 'amqplib';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage, Message, RecoveringChannelModel } from 'amqplib';
import type { Logger } from 'pino';
import type { DeliveredJob, DriverContext, DriverFactory, JobHeaders, JobItem, JobsDriver, PipelineConfig, PipelineState } from '../driver.js';
import { ConfigError, JobsDriverError } from '../../errors.js';
import { pipelineSettings } from './pipeline-keys.js';
import { AckBatcher } from './amqp/acks.js';
import { readAmqpSettings, type AmqpSettings } from './amqp/config.js';
import { amqpContext, packHeaders, publishOptions, takeRoutingKey, unpackDelivery, withoutReservedHeaders, type UnpackedDelivery } from './amqp/message.js';

export const STOPPED_TEXT = 'failed to acknowledge the JOB, the pipeline is probably stopped';
const EMPTY_QUEUE_TEXT = 'empty queue name, consider adding the queue name to the AMQP configuration';
const EMPTY_ROUTING_KEY_TEXT = 'empty routing key, consider adding the routing key name to the AMQP configuration';
/** Go's amqp091 default; amqplib would take the broker's 60 s and notice a dead broker late. */
const HEARTBEAT_SECONDS = 10;
/** cenkalti/backoff's defaults, which RoadRunner's redial uses: 0.5 s × 1.5 per attempt, ±50 %, at most 60 s. */
const REDIAL_FIRST_MS = 500;
const REDIAL_FACTOR = 1.5;
const REDIAL_JITTER = 0.5;
const REDIAL_MAX_INTERVAL_MS = 60_000;

/** Constructs an amqp pipeline: reads its keys, connects, declares the exchange (the queue waits for run/resume). */
export const createAmqpDriver: DriverFactory = async (pipeline, context) => {
  const settings = pipelineSettings('amqp', pipeline.name, () =>
    readAmqpSettings(pipeline, context.globalConfig, context.workDir, (message) => context.log.warn({ pipeline: pipeline.name, driver: 'amqp' }, message)),
  );
  const driver = new AmqpDriver(pipeline, settings, context);
  await driver.open();
  return driver;
};

/** A connection-level failure: the broker went away; a publish is tried again once the redial succeeded. */
class ConnectionLost extends JobsDriverError {}

/** A mandatory publish the broker could not route to any queue. */
class Unroutable extends JobsDriverError {}

interface Consumer {
  model: ChannelModel;
  channel: Channel;
  /** its deliveries' acks, sent once per turn of the event loop */
  acks: AckBatcher;
  /** registered with the broker (not cancelled by pause) */
  active: boolean;
}

export class AmqpDriver implements JobsDriver {
  readonly driver = 'amqp';
  private readonly log: Logger;
  private readonly url: string;
  private readonly safeUrl: string;
  private connection: RecoveringChannelModel | null = null;
  private reopening: Promise<void> | null = null;
  /** the live connection, set once its channels and declarations are in place */
  private model: ChannelModel | null = null;
  private publisher: Promise<ConfirmChannel> | null = null;
  private stateChannel: Promise<Channel> | null = null;
  private consumer: Consumer | null = null;
  /** run/resume asked for consuming and no pause since: a redial restores the consumer */
  private wantConsume = false;
  /** serialises consumer changes (run, resume, pause, stop, redial) so one tag is never registered twice */
  private consumerOps: Promise<unknown> = Promise.resolve();
  private deliveries: Promise<void> = Promise.resolve();
  private readonly deadChannels = new WeakSet<Channel>();
  /** why the broker closed a channel (a 404 or 406 of a publish or declare): not worth publishing again */
  private readonly channelErrors = new WeakMap<Channel, string>();
  private readonly queueDeclaredOn = new WeakSet<ChannelModel>();
  private readonly pendingReturns = new Map<string, boolean>();
  private stopped = false;
  private delayedCount = 0;
  private lost: { since: number; reason: string } | null = null;
  private gaveUp: string | null = null;
  private blocked: string | null = null;
  private readonly waiters = new Set<() => void>();

  constructor(
    readonly pipeline: PipelineConfig,
    readonly settings: AmqpSettings,
    private readonly context: DriverContext,
  ) {
    this.log = context.log.child({ pipeline: pipeline.name, driver: 'amqp' });
    this.url = connectionUrl(settings);
    this.safeUrl = redactedUrl(settings.addr);
  }

  /** Dials (no retry at construction, as RoadRunner) and declares the exchange. */
  async open(): Promise<void> {
    const socketOptions = this.settings.tls
      ? {
          cert: fs.readFileSync(this.settings.tls.cert),
          key: fs.readFileSync(this.settings.tls.key),
          ca: this.settings.tls.rootCa ? [fs.readFileSync(this.settings.tls.rootCa)] : undefined,
        }
      : {};
    let connection: RecoveringChannelModel;
    try {
      connection = await amqp.connect(this.url, {
        ...socketOptions,
        timeout: this.context.timeoutMs,
        recovery: {
          initialMaxRetries: 0,
          setup: (model: ChannelModel) => this.setUp(model),
          calculateDelay: (attempt: number) => this.redialDelay(attempt),
        },
      });
    } catch (err) {
      throw new JobsDriverError(`amqp pipeline ${this.pipeline.name}: cannot connect to ${this.safeUrl}: ${describeError(err)}`);
    }
    this.watch(connection);
    this.connection = connection;
    this.gaveUp = null;
  }

  private watch(connection: RecoveringChannelModel): void {
    connection.on('error', (err: Error) => this.log.warn({ err: describeError(err) }, 'amqp connection error'));
    connection.on('disconnect', (err: Error) => this.onDisconnect(err));
    connection.on('reconnect-scheduled', (info: { attempt: number; delay: number; error: Error }) =>
      this.log.warn({ attempt: info.attempt, delayMs: info.delay, err: describeError(info.error) }, 'amqp broker unreachable, redialing'),
    );
    connection.on('connect', () => {
      if (this.lost) this.log.info({ elapsedMs: Date.now() - this.lost.since }, 'amqp connection restored');
      this.lost = null;
      this.wake();
    });
    connection.on('reconnect-failed', (err: Error) => {
      if (this.connection === connection) this.connection = null;
      this.gaveUp = describeError(err);
      this.log.error({ err: this.gaveUp }, 'amqp redial gave up; the next push, run or resume dials again');
      this.wake();
    });
    connection.on('blocked', (reason: string) => {
      this.blocked = reason;
      this.log.warn({ reason }, 'the broker blocks publishing');
    });
    connection.on('unblocked', () => {
      this.blocked = null;
    });
  }

  /** On every (re)connection, before it counts as up: the exchange, and the consumer if the pipeline consumes. */
  private async setUp(model: ChannelModel): Promise<void> {
    model.on('error', () => {}); // reported by the recovering connection; a listener keeps it from throwing
    const publisher = this.openPublisher(model);
    const channel = await publisher;
    await channel.assertExchange(this.settings.exchange, this.settings.exchangeType, {
      durable: this.settings.exchangeDurable,
      autoDelete: this.settings.exchangeAutoDelete,
    });
    this.publisher = publisher;
    if (this.wantConsume && !this.stopped) await this.serialised(() => this.startConsumer(model));
    this.model = model;
  }

  private openPublisher(model: ChannelModel): Promise<ConfirmChannel> {
    const opening = model.createConfirmChannel().then((channel) => {
      channel.on('error', (err: Error) => {
        this.channelErrors.set(channel, describeError(err));
        this.log.warn({ err: describeError(err) }, 'amqp publish channel closed by the broker');
      });
      channel.on('return', (message: Message) => {
        const id = message.properties.messageId as string | undefined;
        if (id !== undefined && this.pendingReturns.has(id)) this.pendingReturns.set(id, true);
      });
      channel.on('close', () => {
        if (this.publisher === opening) this.publisher = null;
      });
      return channel;
    });
    return opening;
  }

  private onDisconnect(err: Error): void {
    const reason = describeError(err);
    this.lost = { since: Date.now(), reason };
    this.model = null;
    this.publisher = null;
    this.stateChannel = null;
    if (this.consumer) {
      this.deadChannels.add(this.consumer.channel);
      this.consumer.acks.close();
    }
    this.consumer = null;
    // the broker hands these deliveries out again; running them now would run them twice
    const dropped = this.context.queue.removePipeline(this.pipeline.name).length;
    this.log.error({ err: reason, droppedFromQueue: dropped }, 'amqp connection lost, redialing');
  }

  private redialDelay(attempt: number): number {
    const base = Math.min(REDIAL_FIRST_MS * REDIAL_FACTOR ** (attempt - 1), REDIAL_MAX_INTERVAL_MS);
    const delay = Math.round(base * (1 + (Math.random() * 2 - 1) * REDIAL_JITTER));
    const since = this.lost?.since ?? Date.now();
    if (Date.now() + delay - since > this.settings.redialTimeoutMs) {
      throw new JobsDriverError(
        `the broker stayed unreachable for redial_timeout (${this.settings.redialTimeoutMs / 1000}s): ${this.lost?.reason ?? 'unknown'}`,
      );
    }
    return delay;
  }

  private wake(): void {
    for (const wake of [...this.waiters]) wake();
  }

  private waitForChange(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
    });
  }

  /** The live connection; waits through a redial until `deadline`, dials again after a redial gave up. */
  private async liveModel(deadline: number, what: string): Promise<ChannelModel> {
    for (;;) {
      if (this.stopped) throw new JobsDriverError(`amqp pipeline ${this.pipeline.name} is stopped`);
      if (this.model) return this.model;
      if (!this.connection) {
        this.reopening ??= this.open().finally(() => (this.reopening = null));
        await this.reopening;
        continue;
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        const why = this.lost ? `the broker connection was lost (${this.lost.reason}) and is being redialed` : 'the broker connection is not up yet';
        throw new JobsDriverError(
          `amqp pipeline ${this.pipeline.name}: ${what} failed: ${why}; gave up after jobs.timeout (${this.context.timeoutMs / 1000}s)`,
        );
      }
      await this.waitForChange(left);
    }
  }

  private serialised<T>(operation: () => Promise<T>): Promise<T> {
    const result = this.consumerOps.then(operation);
    this.consumerOps = result.catch(() => {});
    return result;
  }

  // --- push ---------------------------------------------------------------------------------------------------------

  async push(item: JobItem): Promise<void> {
    if (this.settings.routingKey === '' && this.settings.exchangeType !== 'fanout') throw new JobsDriverError(EMPTY_ROUTING_KEY_TEXT);
    await this.publishJob(item, Date.now() + this.context.timeoutMs);
  }

  /**
   * Publishes with publisher confirms and `mandatory`: resolves once the broker took the job. A publish the
   * connection loss left unconfirmed is sent again after the redial (at least once); one no queue takes fails.
   */
  async publishJob(item: JobItem, deadline: number): Promise<void> {
    const { routingKey, headers } = takeRoutingKey(item.headers, this.settings.routingKey);
    const table = packHeaders({ ...item, headers });
    let redeclared = false;
    for (;;) {
      const model = await this.liveModel(deadline, `push of job ${item.id}`);
      try {
        const publisher = await this.livePublisher(model);
        if (item.delaySeconds > 0) {
          const delayQueue = await this.declareDelayQueue(publisher, item.delaySeconds, routingKey);
          // straight into the delay queue through the default exchange: binding it to a fanout or headers exchange,
          // as RoadRunner does, would also copy every other job into it
          await this.confirmedPublish(publisher, '', delayQueue, item.payload, table, deadline);
          this.delayedCount++;
        } else {
          await this.declareQueueForPush(publisher, model);
          await this.confirmedPublish(publisher, this.settings.exchange, routingKey, item.payload, table, deadline);
        }
        return;
      } catch (err) {
        if (err instanceof Unroutable && this.settings.queue !== '' && !redeclared) {
          // the queue went away (deleted, auto-deleted): declare it again once
          this.queueDeclaredOn.delete(model);
          redeclared = true;
          continue;
        }
        await nextTurn();
        if ((this.model !== model || err instanceof ConnectionLost) && !this.stopped && Date.now() < deadline) continue;
        throw err instanceof Unroutable || err instanceof ConnectionLost
          ? new JobsDriverError(`amqp pipeline ${this.pipeline.name}: push of job ${item.id}: ${err.message}`)
          : new JobsDriverError(`amqp pipeline ${this.pipeline.name}: push of job ${item.id} failed: ${describeError(err)}`);
      }
    }
  }

  private async livePublisher(model: ChannelModel): Promise<ConfirmChannel> {
    if (this.model !== model) throw new ConnectionLost('the broker connection was lost');
    this.publisher ??= this.openPublisher(model);
    return this.publisher;
  }

  /**
   * RoadRunner declares a pipeline's queue only when it starts consuming, so a push before that reaches no queue and
   * is lost (docs/jobs-amqp.md §7); rrts declares and binds it at the first push on each connection.
   */
  private async declareQueueForPush(publisher: ConfirmChannel, model: ChannelModel): Promise<void> {
    if (this.settings.queue === '' || this.queueDeclaredOn.has(model)) return;
    await this.declareQueue(publisher);
    this.queueDeclaredOn.add(model);
  }

  private async declareQueue(channel: Channel): Promise<void> {
    const { queue, durable, exclusive, queueAutoDelete, queueHeaders, exchange, routingKey } = this.settings;
    await channel.assertQueue(queue, { durable, exclusive, autoDelete: queueAutoDelete, arguments: queueHeaders });
    await channel.bindQueue(queue, exchange, routingKey);
  }

  /** amqpjobs' per-delay queue: `delayed-<ms>.<exchange>.<queue or routing key>`, dead-lettering back after the TTL. */
  private async declareDelayQueue(channel: Channel, delaySeconds: number, routingKey: string): Promise<string> {
    const ms = delaySeconds * 1000;
    const name = `delayed-${ms}.${this.settings.exchange}.${this.settings.queue || this.settings.routingKey}`;
    await channel.assertQueue(name, {
      durable: true,
      arguments: {
        'x-dead-letter-exchange': this.settings.exchange,
        'x-dead-letter-routing-key': routingKey,
        // int64 as RoadRunner declares them, so both declare the same queue with equal arguments
        'x-message-ttl': { '!': 'int64', value: ms },
        'x-expires': { '!': 'int64', value: ms * 2 },
      },
    });
    return name;
  }

  private confirmedPublish(
    channel: ConfirmChannel,
    exchange: string,
    routingKey: string,
    body: Buffer,
    headers: Record<string, unknown>,
    deadline: number,
  ): Promise<void> {
    const messageId = randomUUID();
    this.pendingReturns.set(messageId, false);
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const finish = (err?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        const returned = this.pendingReturns.get(messageId) === true;
        this.pendingReturns.delete(messageId);
        if (err) reject(err);
        else if (returned) reject(new Unroutable(`no queue is bound to exchange '${exchange}' with routing key '${routingKey}', the broker returned the job`));
        else resolve();
      };
      const timer = setTimeout(
        () =>
          finish(
            new JobsDriverError(
              `the broker did not confirm the job within jobs.timeout (${this.context.timeoutMs / 1000}s)${this.blocked ? `: publishing is blocked (${this.blocked})` : ''}`,
            ),
          ),
        Math.max(0, deadline - Date.now()),
      );
      try {
        channel.publish(exchange, routingKey, body, publishOptions(headers, { mandatory: true, messageId }), (err: unknown) => {
          if (!err) return finish();
          const text = describeError(err);
          const closedBy = this.channelErrors.get(channel);
          if (text === 'message nacked') finish(new JobsDriverError('the broker refused the job (basic.nack)'));
          else if (closedBy !== undefined) finish(new JobsDriverError(`the broker closed the publish channel: ${closedBy}`));
          else finish(new ConnectionLost(`the broker did not confirm the job: ${text}`));
        });
      } catch (err) {
        finish(new ConnectionLost(describeError(err)));
      }
    });
  }

  // --- consume ------------------------------------------------------------------------------------------------------

  async run(): Promise<void> {
    if (this.settings.queue === '') throw new JobsDriverError(EMPTY_QUEUE_TEXT);
    if (this.consumer?.active) return;
    await this.startConsuming();
  }

  async resume(): Promise<void> {
    if (this.settings.queue === '') throw new JobsDriverError(EMPTY_QUEUE_TEXT);
    if (this.wantConsume || this.consumer?.active) throw new JobsDriverError('amqp listener is already in the active state');
    await this.startConsuming();
  }

  private async startConsuming(): Promise<void> {
    const deadline = Date.now() + this.context.timeoutMs;
    this.wantConsume = true;
    try {
      const model = await this.liveModel(deadline, 'starting the consumer');
      await this.serialised(() => this.startConsumer(model));
    } catch (err) {
      if (!this.consumer?.active) this.wantConsume = false;
      throw err;
    }
  }

  /** Declares and binds the queue, sets the prefetch as QoS, registers the consumer (a paused one's channel is reused). */
  private async startConsumer(model: ChannelModel): Promise<void> {
    if (this.stopped) throw new JobsDriverError(`amqp pipeline ${this.pipeline.name} is stopped`);
    if (this.consumer?.active && this.consumer.model === model) return;
    let consumer = this.consumer?.model === model && !this.deadChannels.has(this.consumer.channel) ? this.consumer : null;
    if (!consumer) {
      const channel = await model.createChannel();
      const acks = new AckBatcher(channel, (err, unsent) =>
        this.log.warn({ err: describeError(err), unsent }, 'amqp acks not sent: the consume channel is gone; the broker delivers those jobs again'),
      );
      channel.on('error', (err: Error) => this.log.warn({ err: describeError(err) }, 'amqp consume channel closed by the broker'));
      channel.on('close', () => {
        acks.close();
        this.onConsumeChannelClosed(model, channel);
      });
      // per consumer, as RoadRunner's Qos(prefetch, 0, false)
      await channel.prefetch(this.settings.prefetch);
      consumer = { model, channel, acks, active: false };
    }
    await this.declareQueue(consumer.channel);
    this.queueDeclaredOn.add(model);
    const { channel, acks } = consumer;
    await channel.consume(this.settings.queue, (message) => this.onDelivery(channel, acks, message), {
      consumerTag: this.settings.consumerId,
      noAck: false,
    });
    consumer.active = true;
    this.consumer = consumer;
    this.log.debug('pipeline consumes');
  }

  private onConsumeChannelClosed(model: ChannelModel, channel: Channel): void {
    this.deadChannels.add(channel);
    if (this.consumer?.channel !== channel) return;
    this.consumer = null;
    void nextTurn().then(() => {
      // the channel alone closed (the connection is up): redial everything, as RoadRunner does
      if (!this.stopped && this.model === model) {
        this.log.warn('amqp consume channel closed, reconnecting');
        model.close().catch(() => {});
      }
    });
  }

  private onDelivery(channel: Channel, acks: AckBatcher, message: ConsumeMessage | null): void {
    if (message === null) {
      // basic.cancel from the broker: the queue was deleted
      if (this.consumer?.channel === channel) this.consumer.active = false;
      this.wantConsume = false;
      this.log.warn('the broker cancelled the consumer (was the queue deleted?); resume the pipeline to declare it again');
      return;
    }
    const unpacked = unpackDelivery(message, this.pipeline.name, this.pipeline.priority, (key, why) =>
      this.log.warn({ header: key }, `amqp header ${key}: ${why}`),
    );
    acks.delivered(message.fields.deliveryTag);
    const job = new AmqpDeliveredJob(this, acks, message, unpacked);
    // one at a time, so the plugin's full queue holds deliveries back (with prefetch) instead of piling them up here
    this.deliveries = this.deliveries
      .then(async () => {
        if (this.deadChannels.has(channel) || this.stopped) return; // the broker delivers it again
        if (job.item.autoAck) acks.ack(message.fields.deliveryTag);
        await this.context.queue.insert(job);
      })
      .catch((err: unknown) => this.log.error({ err: describeError(err), job: job.item.id }, 'amqp delivery not queued'));
  }

  async pause(): Promise<void> {
    if (this.settings.queue === '') throw new JobsDriverError(EMPTY_QUEUE_TEXT);
    if (!this.wantConsume) throw new JobsDriverError('no active listeners, nothing to pause');
    this.wantConsume = false;
    await this.serialised(async () => {
      const consumer = this.consumer;
      if (!consumer?.active) return;
      consumer.active = false;
      // the channel stays open: jobs delivered before the pause still run and are acked on it
      await withTimeout(consumer.channel.cancel(this.settings.consumerId), this.context.timeoutMs, 'cancelling the consumer');
    });
  }

  async state(): Promise<PipelineState> {
    const state: PipelineState = {
      pipeline: this.pipeline.name,
      driver: 'amqp',
      queue: this.settings.queue,
      active: 0,
      delayed: this.delayedCount,
      reserved: 0,
      ready: this.consumer?.active === true,
      priority: this.pipeline.priority,
    };
    if (this.stopped) return { ...state, errorMessage: 'pipeline stopped' };
    const model = this.model;
    if (!model) {
      const why = this.gaveUp ? `redial gave up: ${this.gaveUp}` : this.lost ? `broker connection lost (${this.lost.reason}), redialing` : 'not connected';
      return { ...state, errorMessage: why };
    }
    if (this.settings.queue === '') return state;
    try {
      this.stateChannel ??= this.openStateChannel(model);
      const channel = await this.stateChannel;
      const queue = await withTimeout(channel.checkQueue(this.settings.queue), this.context.timeoutMs, 'reading the queue');
      return { ...state, active: queue.messageCount };
    } catch (err) {
      // 404: the queue is not declared yet. RoadRunner fails the whole jobs.Stat and redials here (docs/jobs-amqp.md §7);
      // the broker closed only this channel, so the next state opens another one
      if ((err as { code?: number }).code === 404) return state;
      return { ...state, errorMessage: describeError(err) };
    }
  }

  private openStateChannel(model: ChannelModel): Promise<Channel> {
    const opening = model.createChannel().then((channel) => {
      channel.on('error', () => {}); // a passive declare of a missing queue closes the channel; expected
      channel.on('close', () => {
        if (this.stateChannel === opening) this.stateChannel = null;
      });
      return channel;
    });
    return opening;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.wantConsume = false;
    this.wake();
    const model = this.model;
    // the acks of jobs answered this turn go out before the connection closes
    this.consumer?.acks.flush();
    try {
      await withTimeout(
        this.serialised(async () => {
          const consumer = this.consumer;
          if (consumer?.active && this.model === model) {
            consumer.active = false;
            await consumer.channel.cancel(this.settings.consumerId);
          }
        }),
        this.context.timeoutMs,
        'cancelling the consumer',
      );
    } catch (err) {
      this.log.warn({ err: describeError(err) }, 'amqp stop: consumer not cancelled');
    }
    // unacked, so the broker keeps them when the connection closes below
    this.context.queue.removePipeline(this.pipeline.name);
    if (model && this.settings.deleteQueueOnStop && this.settings.queue !== '') {
      try {
        const channel = await withTimeout(model.createChannel(), this.context.timeoutMs, 'opening a channel');
        channel.on('error', () => {});
        const { messageCount } = await withTimeout(channel.deleteQueue(this.settings.queue), this.context.timeoutMs, 'deleting the queue');
        this.log.debug({ messageCount }, 'queue deleted on stop');
      } catch (err) {
        this.log.error({ err: describeError(err) }, 'amqp stop: queue not deleted');
      }
    }
    const connection = this.connection;
    this.connection = null;
    this.model = null;
    this.consumer = null;
    if (connection) await withTimeout(connection.close(), this.context.timeoutMs, 'closing the connection').catch(() => {});
  }

  // --- settling a delivery (docs/jobs-amqp.md §3) ------------------------------------------------------------------------------

  get timeoutMs(): number {
    return this.context.timeoutMs;
  }

  /** Throws the text RoadRunner gives once the pipeline stopped. */
  checkNotStopped(): void {
    if (this.stopped) throw new JobsDriverError(STOPPED_TEXT);
  }

  delayedJobDone(job: JobItem): void {
    if (job.delaySeconds > 0 && this.delayedCount > 0) this.delayedCount--;
  }
}

/** A job delivered by the broker, settled on the channel it came from. */
class AmqpDeliveredJob implements DeliveredJob {
  readonly item: JobItem;
  private readonly contextPipeline: string;
  private readonly contextHeaders: JobHeaders;
  private delayCounted = false;

  constructor(
    private readonly driver: AmqpDriver,
    private readonly acks: AckBatcher,
    private readonly message: ConsumeMessage,
    unpacked: UnpackedDelivery,
  ) {
    this.item = unpacked.item;
    this.contextPipeline = unpacked.contextPipeline;
    this.contextHeaders = unpacked.contextHeaders;
  }

  context(): string {
    return amqpContext(this.item.id, this.item.job, this.driver.settings.queue, this.contextHeaders, this.contextPipeline);
  }

  async ack(): Promise<void> {
    this.driver.checkNotStopped();
    this.countDelayDone();
    const tag = this.message.fields.deliveryTag;
    this.send('ack', () => (this.driver.settings.multipleAck ? this.acks.ackAllUpTo(tag) : this.acks.ack(tag)));
  }

  async nack(): Promise<void> {
    this.driver.checkNotStopped();
    this.countDelayDone();
    this.send('nack', () => this.acks.nack(this.message.fields.deliveryTag, this.driver.settings.requeueOnFail));
  }

  async nackWithOptions(redeliver: boolean, delaySeconds: number): Promise<void> {
    this.driver.checkNotStopped();
    if (redeliver && delaySeconds > 0) return this.requeue({}, delaySeconds);
    // a dropped delayed job is done; one the broker hands out again is counted when that delivery settles
    if (!redeliver) this.countDelayDone();
    this.send('nack', () => this.acks.nack(this.message.fields.deliveryTag, redeliver));
  }

  /** Publishes a copy with the merged headers and the new delay, then acks this one; a failed publish nacks it back. */
  async requeue(headers: JobHeaders, delaySeconds: number): Promise<void> {
    this.driver.checkNotStopped();
    this.countDelayDone();
    // the SDK sends back every header it got, RoadRunner's rr_* bookkeeping included: that must not pile up
    const merged: JobHeaders = { ...this.item.headers, ...withoutReservedHeaders(headers) };
    const copy: JobItem = { ...this.item, headers: merged, delaySeconds, pipeline: this.contextPipeline };
    try {
      await this.driver.publishJob(copy, Date.now() + this.driver.timeoutMs);
    } catch (err) {
      try {
        this.send('nack', () => this.acks.nack(this.message.fields.deliveryTag, true));
      } catch (nackErr) {
        throw new JobsDriverError(`${describeError(err)}; ${describeError(nackErr)}`);
      }
      throw err;
    }
    this.send('ack', () => this.acks.ack(this.message.fields.deliveryTag));
  }

  private countDelayDone(): void {
    if (this.delayCounted) return;
    this.delayCounted = true;
    this.driver.delayedJobDone(this.item);
  }

  /** auto_ack jobs were acked on receipt: settling them is a no-op, as in RoadRunner. */
  private send(what: string, operation: () => void): void {
    if (this.item.autoAck) return;
    try {
      if (this.acks.closed) throw new Error('Channel closed');
      operation();
    } catch (err) {
      throw new JobsDriverError(
        `amqp pipeline ${this.driver.pipeline.name}: cannot ${what} job ${this.item.id}: ${describeError(err)} (the connection it came on is gone; the broker delivers the job again)`,
      );
    }
  }
}

function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new JobsDriverError(`${what} took longer than jobs.timeout (${ms / 1000}s)`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The dial URL: Go's amqp091 heartbeat unless the URL sets one; amqps when a TLS key and cert are configured. */
function connectionUrl(settings: AmqpSettings): string {
  let url: URL;
  try {
    url = new URL(settings.addr);
  } catch {
    throw new ConfigError(`amqp.addr: ${JSON.stringify(redactedUrl(settings.addr))} is not a URL (amqp://user:password@host:port/vhost)`);
  }
  if (url.protocol !== 'amqp:' && url.protocol !== 'amqps:') throw new ConfigError(`amqp.addr: the scheme must be amqp:// or amqps://, got ${url.protocol}//`);
  if (settings.tls && url.protocol === 'amqp:') {
    // amqp091 speaks TLS to the URL's port (5672 when none) once TLS is configured; amqplib needs the amqps scheme
    if (url.port === '') url.port = '5672';
    url = new URL(url.href.replace(/^amqp:/, 'amqps:'));
  }
  if (!url.searchParams.has('heartbeat')) url.searchParams.set('heartbeat', String(HEARTBEAT_SECONDS));
  return url.href;
}

function redactedUrl(addr: string): string {
  try {
    const url = new URL(addr);
    if (url.password !== '') url.password = '***';
    return url.href;
  } catch {
    return addr.replace(/:[^:@/]*@/, ':***@');
  }
}
