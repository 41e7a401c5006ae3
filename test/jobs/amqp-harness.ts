// What the amqp driver tests share: a JobQueue standing in for the jobs plugin's priority queue, a DriverContext
// around it, and a plain amqplib connection to look at the broker from outside the driver.
import os from 'node:os';
import amqp, { type ChannelModel } from 'amqplib';
import pino from 'pino';
import type { DeliveredJob, DriverContext, JobItem, JobQueue, PipelineConfig } from '../../src/jobs/driver.js';
import { createAmqpDriver } from '../../src/jobs/drivers/amqp.js';
import type { AmqpDriver } from '../../src/jobs/drivers/amqp.js';
import type { RabbitMq } from '../support/rabbitmq.js';

const POLL_MS = 20;

/** The plugin's queue, reduced to a list the test takes jobs from (a taken job is a running one). */
export class TestQueue implements JobQueue {
  waiting: DeliveredJob[] = [];
  inserted = 0;

  async insert(job: DeliveredJob): Promise<void> {
    this.inserted++;
    this.waiting.push(job);
  }

  removePipeline(pipeline: string): DeliveredJob[] {
    const removed = this.waiting.filter((job) => job.item.pipeline === pipeline);
    this.waiting = this.waiting.filter((job) => job.item.pipeline !== pipeline);
    return removed;
  }

  /** Takes `count` jobs, waiting (bounded) for them to arrive. */
  async take(count: number, timeoutMs = 20_000): Promise<DeliveredJob[]> {
    await waitUntil(
      () => this.waiting.length >= count,
      timeoutMs,
      () => `${count} jobs (have ${this.waiting.length})`,
    );
    return this.waiting.splice(0, count);
  }
}

/** Takes and acks jobs as they come (prefetch holds the rest back) until `count` were seen; returns their ids. */
export async function consumeAndAck(queue: TestQueue, count: number, timeoutMs = 30_000): Promise<string[]> {
  const ids: string[] = [];
  await waitUntil(
    async () => {
      for (const taken of queue.waiting.splice(0)) {
        ids.push(taken.item.id);
        await taken.ack();
      }
      return ids.length >= count;
    },
    timeoutMs,
    () => `${count} jobs (have ${ids.length})`,
  );
  return ids;
}

export async function waitUntil(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: () => string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface Made {
  driver: AmqpDriver;
  queue: TestQueue;
}

/** A driver for a configured pipeline (`config` = jobs.pipelines.<name>.config) on `broker`. */
export async function makeDriver(
  broker: RabbitMq,
  name: string,
  config: Record<string, unknown>,
  options: { timeoutMs?: number; declared?: boolean; queue?: TestQueue; amqp?: Record<string, unknown> } = {},
): Promise<Made> {
  const queue = options.queue ?? new TestQueue();
  const pipeline: PipelineConfig = { name, driver: 'amqp', priority: 10, config, declared: options.declared ?? false };
  const context: DriverContext = {
    queue,
    log: pino({ level: 'silent' }),
    workDir: os.tmpdir(),
    timeoutMs: options.timeoutMs ?? 10_000,
    globalConfig: { amqp: options.amqp ?? { addr: broker.url } },
  };
  const driver = (await createAmqpDriver(pipeline, context)) as AmqpDriver;
  return { driver, queue };
}

export function job(id: string, pipeline: string, extra: Partial<JobItem> = {}): JobItem {
  return { id, job: 'test.Job', payload: Buffer.from(`{"id":"${id}"}`), headers: {}, pipeline, priority: 10, delaySeconds: 0, autoAck: false, ...extra };
}

/** A connection of the test's own, to look at queues as the broker sees them. */
export class Inspector {
  private constructor(private readonly connection: ChannelModel) {}

  static async open(broker: RabbitMq): Promise<Inspector> {
    return new Inspector(await amqp.connect(broker.url));
  }

  /** Ready messages in `queue`, or null when the queue does not exist. */
  async ready(queue: string): Promise<number | null> {
    const channel = await this.connection.createChannel();
    channel.on('error', () => {});
    try {
      return (await channel.checkQueue(queue)).messageCount;
    } catch (err) {
      if ((err as { code?: number }).code === 404) return null;
      throw err;
    } finally {
      await channel.close().catch(() => {});
    }
  }

  async channel() {
    const channel = await this.connection.createChannel();
    channel.on('error', () => {});
    return channel;
  }

  async close(): Promise<void> {
    await this.connection.close().catch(() => {});
  }
}
