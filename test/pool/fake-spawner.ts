// In-memory workers for the pool's unit tests (no PHP): the test answers each job by hand, holds or fails starts,
// and sees every stop; a worker leaves on the stop control or SIGKILL, as a PHP worker does.
import { EventEmitter } from 'node:events';
import { Readable, Writable } from 'node:stream';
import { WorkerError } from '../../src/errors.js';
import { Flag } from '../../src/goridge/flags.js';
import { encodeFrame } from '../../src/goridge/frame.js';
import { STOP_CONTROL } from '../../src/goridge/messages.js';
import type { Spawner } from '../../src/spawn/spawner.js';
import { FrameRelay } from '../../src/relay/relay.js';
import { Worker, type WorkerEvents } from '../../src/worker/worker.js';
import type { ExitInfo } from '../../src/worker/process.js';

export interface FakePhp {
  pid: number;
  alive: boolean;
  /** jobs received and not answered yet */
  pending: number;
  /** jobs received in all */
  received: number;
  answer(body?: string): void;
}

export interface FakeSpawner {
  spawner: Spawner;
  /** every worker started, in start order */
  workers: FakePhp[];
  /** spawnWorker calls so far, started or not */
  starts: number;
  /** while set, starts wait for it (a slow php boot) */
  gate: Promise<void> | null;
  /** while set, a started worker's process exists but its handshake waits for it (an exec boot) */
  readyGate: Promise<void> | null;
  /** this many next starts fail */
  failStarts: number;
  alive(): FakePhp[];
}

export function fakeSpawner(mode: 'exec' | 'fork' = 'exec'): FakeSpawner {
  let nextPid = 1000;
  const events = new EventEmitter();
  const fake: FakeSpawner = {
    workers: [],
    starts: 0,
    gate: null,
    readyGate: null,
    failStarts: 0,
    alive: () => fake.workers.filter((w) => w.alive),
    spawner: {
      mode,
      async start() {},
      async close() {},
      on: (event, listener) => events.on(event, listener),
      async spawnWorker(workerEvents: WorkerEvents): Promise<Worker> {
        fake.starts++;
        if (fake.gate) await fake.gate;
        if (fake.failStarts > 0) {
          fake.failStarts--;
          throw new WorkerError('the fake php failed to start', 'ERR_WORKER_START');
        }
        const input = new Readable({ read() {} });
        let exit: (info: ExitInfo) => void = () => {};
        const exited = new Promise<ExitInfo>((resolve) => (exit = resolve));
        const leave = (info: ExitInfo): void => {
          if (!php.alive) return;
          php.alive = false;
          setImmediate(() => exit(info));
        };
        const php: FakePhp = {
          pid: nextPid++,
          alive: true,
          pending: 0,
          received: 0,
          answer(body = 'ok') {
            php.pending--;
            const context = Buffer.from('{"status":200,"headers":{}}');
            input.push(encodeFrame({ flags: Flag.CODEC_JSON, options: [context.length], payload: [context, Buffer.from(body)] }));
          },
        };
        const output = new Writable({
          write(chunk: Buffer, _encoding, done) {
            if (chunk.equals(STOP_CONTROL)) leave({ code: 0, signal: null });
            else {
              php.pending++;
              php.received++;
            }
            done();
          },
        });
        const process = {
          pid: php.pid,
          exited,
          signal(sig: NodeJS.Signals): boolean {
            if (sig !== 'SIGKILL') return false;
            leave({ code: null, signal: 'SIGKILL' });
            return true;
          },
        };
        fake.workers.push(php);
        const worker = new Worker(process, new FrameRelay('pipes', input, output), workerEvents);
        if (fake.readyGate) await fake.readyGate;
        return worker;
      },
    },
  };
  return fake;
}

export const job = { codec: Flag.CODEC_JSON, context: Buffer.from('{}'), body: Buffer.alloc(0) };
export const sink = { chunk(): void {} };

/** Wait (bounded) until `predicate` holds; yields to the event loop between checks. */
export async function until(predicate: () => boolean, what: string, limitMs = 10_000): Promise<void> {
  const deadline = performance.now() + limitMs;
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Settles with the outcome, for promises whose rejection is part of the test. */
export function outcome<T>(p: Promise<T>): Promise<{ value?: T; error?: unknown }> {
  return p.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
}
