// A process that tries to take a worker's place on rrts's socket relay: it waits for the real worker's pid file,
// connects first and answers the pid handshake with that pid. Run as a script, it prints what happens to it as JSON
// lines; RelayImpostor starts it and collects them.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { encodeFrame, FrameDecoder } from '../../src/goridge/frame.js';
import { Flag } from '../../src/goridge/flags.js';
import { sleep } from './sleep.js';

export type ImpostorEvent =
  | { event: 'connected' }
  | { event: 'pid-request' }
  | { event: 'answered'; pid: number }
  /** a frame after the handshake: rrts handed it a request */
  | { event: 'frame'; payload: string }
  | { event: 'closed' }
  | { event: 'failed'; why: string };

const POLL_MS = 5;
const GIVE_UP_MS = 30_000;

export class RelayImpostor {
  readonly events: ImpostorEvent[] = [];
  readonly exited: Promise<void>;
  private buffered = '';

  private constructor(private readonly proc: ChildProcess) {
    proc.stdout!.on('data', (c: Buffer) => {
      this.buffered += c.toString();
      let nl;
      while ((nl = this.buffered.indexOf('\n')) >= 0) {
        this.events.push(JSON.parse(this.buffered.slice(0, nl)) as ImpostorEvent);
        this.buffered = this.buffered.slice(nl + 1);
      }
    });
    this.exited = new Promise((resolve) => proc.once('exit', () => resolve()));
  }

  /** Start an impostor for `relay` (tcp://host:port or unix:///path) that claims the pid written to `pidFile`. */
  static start(relay: string, pidFile: string): RelayImpostor {
    const proc = spawn(process.execPath, [fileURLToPath(import.meta.url), relay, pidFile], { stdio: ['ignore', 'pipe', 'inherit'] });
    return new RelayImpostor(proc);
  }

  get pid(): number {
    return this.proc.pid!;
  }

  has(event: ImpostorEvent['event']): boolean {
    return this.events.some((e) => e.event === event);
  }

  /** Wait (bounded) until the impostor reports `event`, or throw with what it reported. */
  async waitFor(event: ImpostorEvent['event'], timeoutMs = 15_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!this.has(event)) {
      if (Date.now() > until) throw new Error(`the impostor never reported '${event}': ${JSON.stringify(this.events)}`);
      await sleep(20);
    }
  }

  kill(): void {
    try {
      process.kill(this.proc.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

function report(e: ImpostorEvent): void {
  process.stdout.write(`${JSON.stringify(e)}\n`);
}

async function impersonate(relay: string, pidFile: string): Promise<void> {
  setTimeout(() => {
    report({ event: 'failed', why: `gave up after ${GIVE_UP_MS} ms` });
    process.exit(1);
  }, GIVE_UP_MS).unref();
  let pid = 0;
  while (!(pid > 0)) {
    try {
      pid = Number(fs.readFileSync(pidFile, 'utf8'));
    } catch {
      await sleep(POLL_MS);
    }
  }
  const unix = relay.startsWith('unix://');
  const hostPort = /^tcp:\/\/(.+):(\d+)$/.exec(relay);
  const socket = unix ? net.connect(relay.slice('unix://'.length)) : net.connect(Number(hostPort![2]), hostPort![1]);
  const decoder = new FrameDecoder();
  let answered = false;
  socket.on('connect', () => report({ event: 'connected' }));
  socket.on('data', (chunk: Buffer) => {
    for (const frame of decoder.push(chunk)) {
      if (!answered) {
        report({ event: 'pid-request' });
        socket.write(encodeFrame({ flags: Flag.CONTROL, payload: JSON.stringify({ pid }) }));
        answered = true;
        report({ event: 'answered', pid });
      } else {
        report({ event: 'frame', payload: frame.payload.toString('utf8', 0, 300) });
        socket.destroy(); // it got a request: that is all the test needs to know
        process.exit(0);
      }
    }
  });
  socket.on('error', (err) => report({ event: 'failed', why: err.message }));
  socket.on('close', () => {
    report({ event: 'closed' });
    process.exit(0);
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await impersonate(process.argv[2]!, process.argv[3]!);
}
