// The amqp driver's ack batcher against a channel that records what it is asked to send: one basic.ack with
// `multiple` for the jobs answered in one turn that follow every earlier delivery, single acks for those behind a job
// still running, nothing for a job whose worker has not answered, nacks at once (docs/jobs-amqp.md §3).
import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, it } from 'node:test';
import type { Message } from 'amqplib';
import { AckBatcher, type AckChannel } from '../../src/jobs/drivers/amqp/acks.js';

/** What the broker would get, in order: `ack 5 multiple`, `ack 7`, `nack 3 requeue`. */
class RecordingChannel implements AckChannel {
  sent: string[] = [];
  refuse = false;

  ack(message: Message, allUpTo = false): void {
    if (this.refuse) throw new Error('Channel closed');
    this.sent.push(`ack ${message.fields.deliveryTag}${allUpTo ? ' multiple' : ''}`);
  }

  nack(message: Message, allUpTo = false, requeue = true): void {
    if (this.refuse) throw new Error('Channel closed');
    this.sent.push(`nack ${message.fields.deliveryTag}${allUpTo ? ' multiple' : ''}${requeue ? ' requeue' : ''}`);
  }
}

function batcher(delivered: number[]): { acks: AckBatcher; channel: RecordingChannel; errors: number[] } {
  const channel = new RecordingChannel();
  const errors: number[] = [];
  const acks = new AckBatcher(channel, (_err, unsent) => errors.push(unsent));
  for (const tag of delivered) acks.delivered(tag);
  return { acks, channel, errors };
}

describe('AckBatcher', () => {
  it('acks the jobs answered in one turn with one basic.ack multiple, on the next turn', async () => {
    const { acks, channel } = batcher([1, 2, 3, 4]);
    for (const tag of [2, 1, 3]) acks.ack(tag);
    assert.deepEqual(channel.sent, [], 'nothing before the turn ends');
    await nextTurn();
    assert.deepEqual(channel.sent, ['ack 3 multiple']);
    acks.ack(4);
    await nextTurn();
    assert.deepEqual(channel.sent, ['ack 3 multiple', 'ack 4'], 'one answer alone: a plain ack');
  });

  it('never covers a job still running, and does not hold back the answered ones behind it', async () => {
    const { acks, channel } = batcher([1, 2, 3, 4, 5]);
    // job 1 runs on; 2, 3 and 5 answered
    for (const tag of [3, 5, 2]) acks.ack(tag);
    await nextTurn();
    assert.deepEqual(channel.sent.sort(), ['ack 2', 'ack 3', 'ack 5']);
    channel.sent = [];
    acks.ack(1);
    acks.ack(4);
    await nextTurn();
    // 2, 3, 5 are acked already: 1..4 is the run that follows every earlier delivery
    assert.deepEqual(channel.sent, ['ack 4 multiple']);
  });

  it('nacks at once, and a later multiple ack does not pass over a job whose nack is not sent', async () => {
    const { acks, channel } = batcher([1, 2, 3]);
    acks.ack(1);
    acks.nack(2, true);
    acks.ack(3);
    assert.deepEqual(channel.sent, ['nack 2 requeue']);
    await nextTurn();
    assert.deepEqual(channel.sent, ['nack 2 requeue', 'ack 3 multiple']);
  });

  it('flush() sends the waiting acks at once (before the connection closes); one answer is acked once', async () => {
    const { acks, channel } = batcher([7, 8]);
    acks.ack(8);
    acks.ack(8);
    acks.flush();
    assert.deepEqual(channel.sent, ['ack 8']);
    await nextTurn();
    assert.deepEqual(channel.sent, ['ack 8']);
  });

  it('multiple_ack: every earlier delivery at once, as RoadRunner does, after the waiting acks', async () => {
    const { acks, channel } = batcher([1, 2, 3, 4]);
    acks.ack(1);
    acks.ackAllUpTo(3);
    acks.ack(4);
    await nextTurn();
    assert.deepEqual(channel.sent, ['ack 1', 'ack 3 multiple', 'ack 4']);
  });

  it('a channel that refuses the flush reports the acks it lost and sends nothing more', async () => {
    const { acks, channel, errors } = batcher([1, 2]);
    channel.refuse = true;
    acks.ack(1);
    acks.ack(2);
    await nextTurn();
    assert.deepEqual(errors, [2]);
    assert.equal(acks.closed, true);
    channel.refuse = false;
    acks.ack(2);
    await nextTurn();
    assert.deepEqual(channel.sent, []);
  });
});
