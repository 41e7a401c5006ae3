// src/relay/listener.ts with real sockets and real connecting processes (test/support/relay-client.ts): a worker's
// connection that passed the pid handshake and the peer checks is moved into a socket read with `onread` into one
// reused 64 KiB buffer, and everything the relay did on the accepted socket still holds: frames of any size and
// split any way, in order, the end of a worker, a stop that reaches the worker, an impostor refused.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { encodeFrame, type Frame } from '../../src/goridge/frame.js';
import { Flag } from '../../src/goridge/flags.js';
import { peerPidIs, socketFd } from '../../src/native/index.js';
import { canAdopt } from '../../src/native/adopt.js';
import { SocketRelayListener, type AcceptedWorker } from '../../src/relay/listener.js';
import { patternPayload, type ClientOrder } from '../support/relay-client.js';
import { freePort } from '../support/ports.js';
import { until } from '../support/sleep.js';

const CLIENT = fileURLToPath(new URL('../support/relay-client.js', import.meta.url));
const log = pino({ level: 'silent' });

/** One relay client process: its pid, its exit, and whether it printed that rrts closed the connection. */
interface Client {
  proc: ChildProcess;
  pid: number;
  closedByRrts: () => boolean;
  exited: Promise<void>;
}

const started: ChildProcess[] = [];

after(() => {
  for (const proc of started) if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
});

function startClient(target: string, claimPid?: number): Client {
  const proc = spawn(process.execPath, [CLIENT, target, ...(claimPid === undefined ? [] : [String(claimPid)])], { stdio: ['ignore', 'pipe', 'inherit'] });
  started.push(proc);
  let out = '';
  proc.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  return { proc, pid: proc.pid!, closedByRrts: () => out.includes('closed'), exited };
}

/** The frames the relay hands on, and its end, collected. */
function collect(worker: AcceptedWorker): { frames: Frame[]; closed: () => boolean; errors: Error[] } {
  const frames: Frame[] = [];
  const errors: Error[] = [];
  let closed = false;
  worker.relay.attach({ frame: (f) => frames.push(f), error: (err) => errors.push(err), close: () => (closed = true) });
  return { frames, closed: () => closed, errors };
}

function order(o: ClientOrder): Buffer {
  return encodeFrame({ flags: Flag.CODEC_JSON, payload: JSON.stringify(o) });
}

function assertPattern(frame: Frame, bytes: number, seed: number, what: string): void {
  assert.equal(frame.payload.length, bytes, `${what}: payload length`);
  assert.ok(frame.payload.equals(patternPayload(bytes, seed)), `${what}: every byte in place`);
}

for (const kind of ['unix', 'tcp'] as const) {
  describe(`socket relay over ${kind}: connections read with onread`, { timeout: 60_000 }, () => {
    let dir: string;
    let listener: SocketRelayListener;
    let target: string;

    before(async () => {
      assert.ok(canAdopt(), 'the native addon here has dupCloexec (npm run install rebuilds it)');
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-relay-'));
      if (kind === 'unix') {
        const file = path.join(dir, 'relay.sock');
        // fork mode's rule: the process the kernel names at the other end must be the pid it answered
        listener = new SocketRelayListener({ kind: 'unix', path: file }, log, { acceptPid: (pid, socket) => peerPidIs(socket, pid) });
        target = `unix:${file}`;
      } else {
        const port = await freePort();
        // exec mode's rule: the peer checks, through /proc for tcp
        listener = new SocketRelayListener({ kind: 'tcp', host: '127.0.0.1', port }, log, { checkPeers: true });
        target = `tcp:${port}`;
      }
      await listener.listen();
    });

    after(async () => {
      await listener.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    async function connect(): Promise<{ client: Client; worker: AcceptedWorker }> {
      const client = startClient(target);
      const worker = await listener.waitFor(client.pid);
      listener.forget(client.pid);
      return { client, worker };
    }

    test('the relay socket is rrts own, read by onread, and its fd is close-on-exec', async () => {
      const { client, worker } = await connect();
      const got = collect(worker);
      // No 'data' listener: the bytes come by the onread callback, not through the Readable stream.
      assert.equal(worker.sockets[0]!.listenerCount('data'), 0);
      const fd = socketFd(worker.sockets[0]!);
      assert.ok(fd !== null);
      const flags = /flags:\s*(\d+)/.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!;
      assert.ok((parseInt(flags, 8) & 0o2000000) !== 0, `O_CLOEXEC in the fd's flags (${flags})`);
      worker.relay.send(order({ reply: 'frame', bytes: 300, seed: 1, pieces: 1 }));
      await until(() => got.frames.length === 1, 'the answer');
      assertPattern(got.frames[0]!, 300, 1, 'the answer');
      worker.relay.close();
      await client.exited;
    });

    test('a 4 MiB frame arrives whole, through 64 KiB reads into one reused buffer', async () => {
      const { client, worker } = await connect();
      const got = collect(worker);
      const bytes = 4 * 1024 * 1024 + 123;
      worker.relay.send(order({ reply: 'frame', bytes, seed: 7, pieces: 1 }));
      await until(() => got.frames.length === 1, 'the large frame', { tries: 4_000 });
      assertPattern(got.frames[0]!, bytes, 7, 'the large frame');
      // The next one after it must not see any of its bytes again (each read is copied before the buffer is reused).
      worker.relay.send(order({ reply: 'frame', bytes: 1000, seed: 8, pieces: 1 }));
      await until(() => got.frames.length === 2, 'the frame after it');
      assertPattern(got.frames[1]!, 1000, 8, 'the frame after it');
      assert.deepEqual(got.errors, []);
      worker.relay.close();
      await client.exited;
    });

    test('a frame split over several writes, then 50 frames in one write, in order', async () => {
      const { client, worker } = await connect();
      const got = collect(worker);
      worker.relay.send(order({ reply: 'frame', bytes: 100_000, seed: 3, pieces: 7 }));
      await until(() => got.frames.length === 1, 'the split frame');
      assertPattern(got.frames[0]!, 100_000, 3, 'the split frame');
      worker.relay.send(order({ reply: 'many', bytes: 2_000, count: 50 }));
      await until(() => got.frames.length === 51, 'the 50 frames');
      got.frames.slice(1).forEach((f, seed) => assertPattern(f, 2_000, seed, `frame ${seed} of 50`));
      worker.relay.close();
      await client.exited;
    });

    test('a worker that exits: the relay sees the end', async () => {
      const { client, worker } = await connect();
      const got = collect(worker);
      worker.relay.send(order({ reply: 'exit' }));
      await client.exited;
      await until(() => got.closed(), 'the relay to see the end');
      assert.deepEqual(got.errors, []);
    });

    test('the listener closing reaches the worker (graceful stop)', async () => {
      const { client, worker } = await connect();
      collect(worker);
      await listener.close();
      await client.exited;
      assert.ok(client.closedByRrts(), 'the worker saw its connection closed');
      await listener.listen(); // for the tests after this one
    });
  });
}

describe('socket relay over unix: the peer check still runs on the accepted socket', { timeout: 30_000 }, () => {
  test('a process answering another pid than its own is refused before it is adopted', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-relay-'));
    const file = path.join(dir, 'relay.sock');
    const listener = new SocketRelayListener({ kind: 'unix', path: file }, log, { acceptPid: (pid, socket) => peerPidIs(socket, pid) });
    await listener.listen();
    try {
      const impostor = startClient(`unix:${file}`, process.pid); // claims the test runner's pid
      let delivered = false;
      void listener.waitFor(process.pid).then(() => (delivered = true));
      await impostor.exited;
      assert.ok(impostor.closedByRrts(), 'the impostor was disconnected');
      assert.equal(delivered, false, 'no connection was filed under the claimed pid');
    } finally {
      listener.forget(process.pid);
      await listener.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
