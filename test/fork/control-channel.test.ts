// ControlChannel (src/spawn/fork/master.ts) on an in-memory stream: how requests are written.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import pino from 'pino';
import { ControlChannel } from '../../src/spawn/fork/master.js';
import { FrameDecoder } from '../../src/goridge/frame.js';

/** A stream that records each write system call it would make: one entry per _write or _writev. */
class RecordingStream extends Duplex {
  readonly writes: Buffer[][] = [];

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error) => void): void {
    this.writes.push([chunk]);
    done();
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, done: (err?: Error) => void): void {
    this.writes.push(chunks.map((c) => c.chunk));
    done();
  }
}

function channelOn(stream: RecordingStream): ControlChannel {
  return new ControlChannel(stream, new FrameDecoder(), () => 'the test master', () => undefined, () => undefined, pino({ level: 'silent' }));
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('ControlChannel', () => {
  it('writes the requests made in one tick together, so the master reads a burst of forks at once', async () => {
    const stream = new RecordingStream();
    const channel = channelOn(stream);
    const requests: Array<Promise<unknown>> = [];
    requests.push(channel.request({ op: 'fork', env: {} }));
    // a pool's reset asks from promise callbacks of the same tick
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        await Promise.resolve();
        requests.push(channel.request({ op: 'fork', env: {} }));
      }),
    );
    await nextTurn();
    assert.equal(stream.writes.length, 1, 'one write for the five requests');
    assert.equal(stream.writes[0]!.length, 5, 'five frames in it');
    channel.request({ op: 'ping' }).catch(() => undefined);
    await nextTurn();
    assert.equal(stream.writes.length, 2, 'a request of a later tick is written on its own, without waiting for more');
    channel.fail(new Error('done'));
    for (const r of requests) await assert.rejects(r, /done/);
  });
});
