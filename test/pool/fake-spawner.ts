// An in-memory spawner for the pool's unit tests (no PHP): its workers speak the worker protocol over streams, the
// test answers their jobs by hand, holds or fails their starts, and they leave on the stop control, on SIGKILL or
// when the test crashes them.
import { EventEmitter } from 'node:events';
import { Readable, Writable } from 'node:stream';
import { WorkerStartError } from '../../src/errors.js';
import { Flag } from '../../src/goridge/flags.js';
import { encodeFrame } from '../../src/goridge/frame.js';
import { STOP_CONTROL, STOP_REQUEST_CONTEXT } from '../../src/goridge/messages.js';
import type { Spawner } from '../../src/spawn/spawner.js';
import { FrameRelay } from '../../src/relay/relay.js';
import { Worker, type WorkerEvents } from '../../src/worker/worker.js';
import type { ExitInfo } from '../../src/worker/process.js';

export interface FakePhp {
  pid: number;
  /** how many resets had begun (renew calls) when it was started: its generation */
  epoch: number;
  alive: boolean;
  killed: boolean;
  /** the jobs it received and has not answered yet, oldest first */
  jobs: Buffer[];
  /** jobs not answered yet (jobs.length) */
  readonly pending: number;
  /** jobs received in all */
  received: number;
  /** Answer the oldest job with a 200 and `body`. */
  answer(body?: string): void;
  /** Answer the oldest job with the SDK's stop request ($worker->stop()): the job goes to another worker. */
  askToStop(): void;
  /** Send a control frame in answer to the oldest job: the protocol breaks while the process lives on. */
  breakProtocol(): void;
  /** Exit on its own, as a worker that crashes. */
  crash(): void;
}

export interface FakeSpawner {
  spawner: Spawner;
  /** every worker started, in order */
  workers: FakePhp[];
  /** spawnWorker calls so far, failed ones included */
  attempts: number;
  /** the same count, by the name the elastic tests use */
  readonly starts: number;
  /** while set, a start fails with this error (before any worker exists) */
  failStarts: Error | null;
  /** this many next starts fail (a php that cannot boot, then can) */
  failNextStarts: number;
  /** while set, starts wait for it (a slow php boot) */
  gate: Promise<void> | null;
  /** while set, a started worker's process exists but its handshake waits for it (an exec boot) */
  readyGate: Promise<void> | null;
  /** the workers still alive */
  alive(): FakePhp[];
  /** renew calls so far: one per reset */
  renews: number;
  /** resets that began while the one before still had old workers: an overlap */
  overlaps: string[];
  /** What a fork spawner does once a new master replaced a dead one. */
  restartMaster(): void;
}

export function fakeSpawner(mode: 'exec' | 'fork' = 'exec'): FakeSpawner {
  let nextPid = 1000;
  const events = new EventEmitter();
  const fake: FakeSpawner = {
    workers: [],
    attempts: 0,
    get starts() {
      return fake.attempts;
    },
    failStarts: null,
    failNextStarts: 0,
    gate: null,
    readyGate: null,
    alive: () => fake.workers.filter((w) => w.alive),
    renews: 0,
    overlaps: [],
    restartMaster: () => void events.emit('masterRestart'),
    spawner: {
      mode,
      async start() {},
      async close() {},
      on: (event, listener) => events.on(event, listener),
      async renew() {
        fake.renews++;
        // a reset may begin only once the one before is over: its old workers are gone, one generation runs
        const alive = fake.workers.filter((w) => w.alive);
        if (new Set(alive.map((w) => w.epoch)).size > 1) {
          fake.overlaps.push(`reset ${fake.renews} began while workers of several generations ran: ${alive.map((w) => `${w.pid} (${w.epoch})`).join(', ')}`);
        }
        return async () => {};
      },
      async spawnWorker(workerEvents: WorkerEvents): Promise<Worker> {
        fake.attempts++;
        if (fake.gate) await fake.gate;
        if (fake.failStarts) throw fake.failStarts;
        if (fake.failNextStarts > 0) {
          fake.failNextStarts--;
          throw new WorkerStartError('the fake php failed to start');
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
          epoch: fake.renews,
          alive: true,
          killed: false,
          jobs: [],
          get pending() {
            return php.jobs.length;
          },
          received: 0,
          answer(body = 'ok') {
            php.jobs.shift();
            const context = Buffer.from('{"status":200,"headers":{}}');
            input.push(encodeFrame({ flags: Flag.CODEC_JSON, options: [context.length], payload: [context, Buffer.from(body)] }));
          },
          askToStop() {
            php.jobs.shift();
            input.push(encodeFrame({ options: [STOP_REQUEST_CONTEXT.length], payload: STOP_REQUEST_CONTEXT }));
          },
          breakProtocol() {
            php.jobs.shift();
            input.push(encodeFrame({ flags: Flag.CONTROL | Flag.CODEC_JSON, options: [2], payload: '{}' }));
          },
          crash: () => leave({ code: 255, signal: null }),
        };
        const output = new Writable({
          write(chunk: Buffer, _encoding, done) {
            if (chunk.equals(STOP_CONTROL)) leave({ code: 0, signal: null });
            else {
              php.jobs.push(chunk);
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
            php.killed = true;
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
