// The acks of one consume channel, sent once per turn of the event loop: the jobs answered since the last turn that
// follow every earlier delivery of the channel go as one basic.ack with `multiple`, the others one by one. A job is
// never acked before its worker answered, and an ack is never held back waiting for an earlier job (docs/jobs-amqp.md §3).
import type { Message } from 'amqplib';

/** What the batcher needs of an amqplib channel. */
export interface AckChannel {
  ack(message: Message, allUpTo?: boolean): void;
  nack(message: Message, allUpTo?: boolean, requeue?: boolean): void;
}

/** amqplib reads only the delivery tag of the message it acks. */
function byTag(deliveryTag: number): Message {
  return { fields: { deliveryTag } } as Message;
}

export class AckBatcher {
  /** delivery tags the broker handed out and this channel has not acked or nacked yet, in delivery order */
  private readonly outstanding = new Set<number>();
  /** answered: acked on the next flush */
  private readonly answered = new Set<number>();
  private scheduled: NodeJS.Immediate | null = null;
  private isClosed = false;

  constructor(
    private readonly channel: AckChannel,
    /** a flush the channel refused (it closed): those jobs come back from the broker */
    private readonly onFlushError: (err: unknown, unsent: number) => void,
  ) {}

  /** Every delivery of the channel, in order, as it arrives: an earlier one not yet answered stops a `multiple` ack. */
  delivered(deliveryTag: number): void {
    this.outstanding.add(deliveryTag);
  }

  /** The worker answered (or auto_ack): acked on this turn's flush. */
  ack(deliveryTag: number): void {
    if (!this.outstanding.has(deliveryTag)) return;
    this.answered.add(deliveryTag);
    this.scheduled ??= setImmediate(() => this.flush());
  }

  /** `multiple_ack` as RoadRunner does it: this and every earlier delivery of the channel, answered or not, at once. */
  ackAllUpTo(deliveryTag: number): void {
    this.flush();
    this.channel.ack(byTag(deliveryTag), true);
    for (const tag of this.outstanding) {
      if (tag > deliveryTag) break;
      this.outstanding.delete(tag);
    }
  }

  /** At once: a nack settles only its own delivery, so the acks waiting for the flush stay right. */
  nack(deliveryTag: number, requeue: boolean): void {
    this.channel.nack(byTag(deliveryTag), false, requeue);
    this.outstanding.delete(deliveryTag);
    this.answered.delete(deliveryTag);
  }

  /** Sends the waiting acks now (also before the connection closes). */
  flush(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = null;
    if (this.answered.size === 0 || this.isClosed) return;
    try {
      let last = -1;
      let run = 0;
      for (const tag of this.outstanding) {
        if (!this.answered.has(tag)) break;
        last = tag;
        run++;
      }
      if (run > 1) {
        this.channel.ack(byTag(last), true);
      } else if (run === 1) {
        this.channel.ack(byTag(last), false);
      }
      for (const tag of this.outstanding) {
        if (tag > last) break;
        this.outstanding.delete(tag);
        this.answered.delete(tag);
      }
      // answered behind a job still running: each on its own, so none waits for that job
      for (const tag of this.answered) {
        this.channel.ack(byTag(tag), false);
        this.outstanding.delete(tag);
      }
      this.answered.clear();
    } catch (err) {
      const unsent = this.answered.size;
      this.answered.clear();
      this.close();
      this.onFlushError(err, unsent);
    }
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** The channel is gone: the broker hands its unacked deliveries out again. */
  close(): void {
    this.isClosed = true;
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = null;
    this.outstanding.clear();
    this.answered.clear();
  }
}
