// ControlChannel (src/spawn/fork/control-channel.ts) on an in-memory stream: how requests are written.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import pino from 'pino';
import { ControlChannel } from '../../../src/spawn/fork/control-channel.js';
import { decodeMasterMessage } from '../../../src/spawn/fork/protocol.js';
import { encodeFrame, FrameDecoder } from '../../../src/goridge/frame.js';
import { Flag } from '../../../src/goridge/flags.js';
import { Packr } from 'msgpackr';
import { ProtocolError } from '../../../src/errors.js';

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

function channelOn(stream: RecordingStream): ControlChannel<ReturnType<typeof decodeMasterMessage>> {
  return new ControlChannel(
    stream,
    new FrameDecoder(),
    () => 'the test master',
    decodeMasterMessage,
    () => undefined,
    () => undefined,
    pino({ level: 'silent' }),
  );
}

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

/** What the master would write back: one control frame. */
function answer(stream: RecordingStream, msg: Record<string, unknown>): void {
  stream.push(encodeFrame({ flags: Flag.CODEC_MSGPACK, payload: packr.pack(msg) }));
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

  it('answers a request with the checked message', async () => {
    const stream = new RecordingStream();
    const channel = channelOn(stream);
    const reply = channel.request({ op: 'fork', env: {} });
    answer(stream, { op: 'forked', id: 1, pid: 4242 });
    assert.deepEqual(await reply, { op: 'forked', id: 1, pid: 4242 });
  });

  it('fails the request whose answer does not match the protocol, naming the op and the field', async () => {
    const stream = new RecordingStream();
    const channel = channelOn(stream);
    const reply = channel.request({ op: 'fork', env: {} });
    answer(stream, { op: 'forked', id: 1, pid: 'not a pid' });
    await assert.rejects(reply, (err: Error) => {
      assert.ok(err instanceof ProtocolError, err.message);
      assert.match(
        err.message,
        /the test master sent its answer to 'fork' that breaks the control protocol: 'forked' message: field 'pid' must be an integer, got the string "not a pid"/,
      );
      return true;
    });
    // a reap is matched by pid: its malformed answer fails that request too
    const reap = channel.request({ op: 'reap', pid: 7 }, 'reap:7');
    answer(stream, { op: 'reaped', id: 2, pid: 7, done: 'yes', code: null, signal: null, error: null });
    await assert.rejects(reap, /'reaped' message: field 'done' must be a boolean, got the string "yes"/);
  });
});
