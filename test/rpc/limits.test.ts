// The RPC port's memory bounds over a real loopback listener: frames announcing big payloads are refused with an
// error frame once the shared buffer budget is spent, small calls keep being answered, the budget goes back to 0
// when the connections close, and connections beyond the cap are closed at accept.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Flag } from '../../src/goridge/flags.js';
import { crc32, HEADER_SIZE } from '../../src/goridge/frame.js';
import { decodeRpc, encodeRpc } from '../../src/goridge/messages.js';
import { DEFAULT_RPC_LIMITS, MAX_RPC_PAYLOAD, RpcPlugin, type RpcLimits } from '../../src/rpc/server.js';
import { registerCoreServices } from '../../src/rpc/services.js';
import { fakeHost, RawConnection, silent } from './rpc-helpers.js';
import { sleep } from '../support/sleep.js';

/** Poll `check` until it holds, for at most `timeoutMs`; returns whether it held. */
async function eventually(check: () => boolean, timeoutMs = 5000): Promise<boolean> {
  for (const until = Date.now() + timeoutMs; Date.now() < until; await sleep(5)) if (check()) return true;
  return check();
}

/** The header and options of an RPC request announcing `payloadLength` bytes, followed by the method name. */
function announce(seq: number, method: string, payloadLength: number): Buffer {
  const head = Buffer.alloc(HEADER_SIZE + 8);
  head[0] = 0x15;
  head[1] = Flag.CODEC_JSON;
  head.writeUInt32LE(payloadLength, 2);
  head.writeUInt32LE(crc32(head, 0, 6), 6);
  head.writeUInt32LE(seq, HEADER_SIZE);
  head.writeUInt32LE(Buffer.byteLength(method), HEADER_SIZE + 4);
  return Buffer.concat([head, Buffer.from(method)]);
}

/** The core services (informer, resetter, rpc) over a host with one empty `http` pool. */
async function startCore(limits: Partial<RpcLimits> = {}): Promise<RpcPlugin> {
  const rpc = new RpcPlugin('tcp://127.0.0.1:0', silent, process.cwd(), limits);
  registerCoreServices(rpc, fakeHost());
  await rpc.serve();
  return rpc;
}

/** informer.Workers("http") on a fresh connection: the answer must be a normal (non-error) frame. */
async function smallCallWorks(rpc: RpcPlugin, seq: number): Promise<void> {
  const c = await RawConnection.open(rpc.address);
  try {
    c.send(encodeRpc({ seq, method: 'informer.Workers', flags: Flag.CODEC_JSON, body: Buffer.from('"http"') }));
    const [frame] = await c.waitFrames(1);
    const msg = decodeRpc(frame!);
    assert.equal(msg.seq, seq);
    assert.equal(msg.flags & Flag.ERROR, 0, `informer.Workers failed: ${msg.body.toString()}`);
    assert.deepEqual(JSON.parse(msg.body.toString()), { workers: [] });
  } finally {
    c.close();
  }
}

describe('rpc plugin: memory bounds', () => {
  const plugins: RpcPlugin[] = [];
  const connections: RawConnection[] = [];
  after(async () => {
    for (const c of connections) c.close();
    for (const p of plugins) await p.stop();
  });

  it('frames announcing big payloads are refused with an error frame once the budget is spent; small calls go on; the budget returns to 0', async () => {
    const rpc = await startCore();
    plugins.push(rpc);
    const limits = DEFAULT_RPC_LIMITS;
    const payload = MAX_RPC_PAYLOAD - 64; // the biggest a request may announce, about 32 MiB
    const frame = HEADER_SIZE + 8 + payload;
    const fits = Math.floor((limits.bufferBudget - limits.smallFrameReserve) / frame);
    assert.ok(fits >= 1 && fits < 10, `the defaults let ${fits} big frames in`);
    const sent = 256 * 1024; // each client really sends this much of its payload
    const big: RawConnection[] = [];
    for (let i = 0; i < fits + 5; i++) {
      const c = await RawConnection.open(rpc.address);
      connections.push(c);
      big.push(c);
      const before = rpc.bufferedBytes;
      c.send(announce(i + 1, 'informer.Workers', payload));
      c.send(Buffer.alloc(sent, 0x61));
      // settled: budgeted, or answered and closed
      assert.ok(await eventually(() => rpc.bufferedBytes > before || c.frames.length > 0 || c.closed), `connection ${i} was neither budgeted nor refused`);
      if (i === fits) await smallCallWorks(rpc, 100); // during: the budget for big frames is spent
    }
    assert.equal(rpc.bufferedBytes, fits * frame);
    for (const [i, c] of big.entries()) {
      if (i < fits) {
        assert.equal(c.frames.length, 0, `connection ${i} fits and waits for the rest of its frame`);
        assert.equal(c.closed, false);
        continue;
      }
      const [answer] = await c.waitFrames(1);
      const msg = decodeRpc(answer!);
      assert.equal(msg.seq, i + 1, 'the error answers the refused request');
      assert.equal(msg.flags, Flag.CODEC_JSON | Flag.ERROR);
      assert.match(msg.body.toString(), new RegExp(`request of ${frame} bytes refused`));
      assert.ok(await c.waitClosed(), `refused connection ${i} is closed`);
    }
    await smallCallWorks(rpc, 101);

    for (const c of big) c.close();
    assert.ok(await eventually(() => rpc.bufferedBytes === 0), `the budget went back to 0, holds ${rpc.bufferedBytes}`);
    assert.ok(await eventually(() => rpc.connections === 0), `${rpc.connections} connections left`);
    // and a big frame fits again
    const again = await RawConnection.open(rpc.address);
    connections.push(again);
    again.send(announce(7, 'informer.Workers', payload));
    assert.ok(await eventually(() => rpc.bufferedBytes === frame));
    again.close();
    assert.ok(await eventually(() => rpc.bufferedBytes === 0));
    await smallCallWorks(rpc, 102);
  });

  it('a call holds its frame in the budget until it answers', async () => {
    let finish: ((value: string) => void) | null = null;
    const rpc = new RpcPlugin('tcp://127.0.0.1:0', silent, process.cwd());
    rpc.register('slow', { Echo: () => new Promise<string>((resolve) => (finish = resolve)) });
    await rpc.serve();
    plugins.push(rpc);
    const body = Buffer.from(JSON.stringify('x'.repeat(1024 * 1024)));
    const request = encodeRpc({ seq: 1, method: 'slow.Echo', flags: Flag.CODEC_JSON, body });
    const c = await RawConnection.open(rpc.address);
    connections.push(c);
    c.send(request);
    // the frame is budgeted from its header; wait for the call itself to be running
    assert.ok(await eventually(() => finish !== null), 'the call started');
    assert.equal(rpc.bufferedBytes, request.length);
    finish!('done');
    const [answer] = await c.waitFrames(1);
    assert.equal(decodeRpc(answer!).body.toString(), '"done"');
    assert.equal(rpc.bufferedBytes, 0);
    c.close();
  });

  it('connections beyond the cap are closed at accept; the others keep working and a freed slot is reusable', async () => {
    const rpc = await startCore({ maxConnections: 3 });
    plugins.push(rpc);
    const open: RawConnection[] = [];
    for (let i = 0; i < 3; i++) open.push(await RawConnection.open(rpc.address));
    connections.push(...open);
    assert.ok(await eventually(() => rpc.connections === 3));
    const extra = await RawConnection.open(rpc.address);
    connections.push(extra);
    assert.ok(await extra.waitClosed(), 'the fourth connection is closed');
    for (const [i, c] of open.entries()) {
      c.send(encodeRpc({ seq: i, method: 'rpc.Version', flags: Flag.CODEC_JSON, body: Buffer.alloc(0) }));
      const [answer] = await c.waitFrames(1);
      assert.equal(decodeRpc(answer!).flags, Flag.CODEC_JSON);
    }
    open[0]!.close();
    assert.ok(await eventually(() => rpc.connections === 2));
    await smallCallWorks(rpc, 9);
  });
});
