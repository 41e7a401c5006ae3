// ForkMaster's fork requests (src/spawn/fork/master.ts) against a stand-in master on an in-memory stream: a child
// that connects before the master's answer goes to the oldest request still waiting, and answers, early children
// and failed forks add up so that every request gets one child or one error.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type net from 'node:net';
import { Duplex } from 'node:stream';
import pino from 'pino';
import { Packr } from 'msgpackr';
import { ForkMaster } from '../../../src/spawn/fork/master.js';
import type { ForkRootHandle, MasterOptions } from '../../../src/spawn/fork/root.js';
import { encodeFrame, FrameDecoder } from '../../../src/goridge/frame.js';
import { Flag } from '../../../src/goridge/flags.js';
import { ForkFailedError } from '../../../src/errors.js';

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

/** The master's end of the control connection: what rrts writes is dropped, answers are pushed by the test. */
class StandInMaster extends Duplex {
  override _read(): void {}

  override _write(_chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error) => void): void {
    done();
  }

  /** Answer the request with this id (ControlChannel numbers them from 1). */
  answer(msg: Record<string, unknown>): void {
    this.push(encodeFrame({ flags: Flag.CODEC_MSGPACK, payload: packr.pack(msg) }));
  }
}

function masterOn(stream: StandInMaster): ForkMaster {
  const root = { alive: true } as unknown as ForkRootHandle;
  const opts = { log: pino({ level: 'silent' }) } as unknown as MasterOptions;
  const master = new ForkMaster(4000, root, opts);
  master.attach(stream as unknown as net.Socket, new FrameDecoder(), []);
  return master;
}

/** Settles `promise` into a value to look at without awaiting it: undefined while it is pending. */
function watch<T>(promise: Promise<T>): { value?: T; error?: Error } {
  const seen: { value?: T; error?: Error } = {};
  promise.then(
    (value) => (seen.value = value),
    (error: Error) => (seen.error = error),
  );
  return seen;
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('ForkMaster fork requests', () => {
  it('gives a child that connects before the answer to the oldest waiting request, and its answer to the next', async () => {
    const stream = new StandInMaster();
    const master = masterOn(stream);
    const first = watch(master.fork({}));
    const second = watch(master.fork({}));
    await nextTurn();
    assert.equal(master.childConnected(5002), true, 'the second child of the burst connected first');
    await nextTurn();
    assert.equal(first.value, 5002, 'the oldest request has a child before any answer came');
    assert.equal(second.value, undefined);
    stream.answer({ op: 'forked', id: 1, pid: 5001 });
    await nextTurn();
    assert.equal(second.value, 5001, "the first answer's child goes to the request still waiting");
    stream.answer({ op: 'forked', id: 2, pid: 5002 });
    await nextTurn();
    assert.deepEqual([...master.children].sort(), [5001, 5002]);
    assert.equal(master.childConnected(5002), false, 'a known child is not given out twice');
    assert.equal(master.childConnected(5001), false);
  });

  it('gives nothing to a child that connects while no request waits', async () => {
    const stream = new StandInMaster();
    const master = masterOn(stream);
    assert.equal(master.childConnected(5003), false);
    assert.equal(master.children.has(5003), false);
    const request = watch(master.fork({}));
    stream.answer({ op: 'forked', id: 1, pid: 5004 });
    await nextTurn();
    assert.equal(request.value, 5004);
  });

  it('a failed fork fails the newest request still waiting when its own request took an early child', async () => {
    const stream = new StandInMaster();
    const master = masterOn(stream);
    const first = watch(master.fork({}));
    const second = watch(master.fork({}));
    await nextTurn();
    master.childConnected(5006); // the answer to the second request names it
    stream.answer({ op: 'fork_failed', id: 1, error: 'pcntl_fork: Resource temporarily unavailable' });
    await nextTurn();
    assert.equal(first.value, 5006);
    assert.ok(second.error instanceof ForkFailedError, `got ${String(second.error)}`);
    stream.answer({ op: 'forked', id: 2, pid: 5006 });
    await nextTurn();
    assert.equal(master.childConnected(5007), false, 'nothing waits any more');
  });
});
