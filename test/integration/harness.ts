// Starts a real `rrts serve` (bin/rrts) on a generated config in a temp dir, with the project's PHP fixture worker,
// and cleans up every process it started, by pid.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { procStat } from '../../src/system/proc.js';
import { assertValidConfig } from '../support/schema.js';
import { sleep } from '../support/sleep.js';
import { BIN, FIXTURE, ROOT } from '../support/paths.js';
import { alive, childrenOf, isForkRoot, isForkSpare, killQuietly } from '../support/processes.js';
import { freePort } from '../support/ports.js';

// the integration tests took these from here
export { ROOT, BIN, FIXTURE, childrenOf, isForkSpare, isForkRoot, alive, killQuietly, procStat, sleep, freePort };

export type Relay = 'pipes' | 'unix' | 'tcp';
export type Mode = 'exec' | 'fork';
/** Every pool test runs in both modes. */
export const MODES: Mode[] = ['exec', 'fork'];

type Obj = Record<string, unknown>;
function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
export function deepMerge(a: Obj, b: Obj): Obj {
  const out: Obj = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = isObj(v) && isObj(out[k]) ? deepMerge(out[k], v) : v;
  return out;
}

export interface StartOptions {
  /** exec (a php per worker) or fork (one master forks the workers) */
  mode?: Mode;
  relay?: Relay;
  workers?: number;
  /** merged over the generated config */
  config?: Obj;
  env?: NodeJS.ProcessEnv;
  args?: string[];
  /** do not wait for the "started" line (for start-up failure tests) */
  expectFailure?: boolean;
  timeoutMs?: number;
}

export class RrtsInstance {
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: string | null }>;

  constructor(
    readonly proc: ChildProcess,
    readonly dir: string,
    readonly port: number,
    readonly fork = false,
  ) {
    // setEncoding keeps a character split between two reads whole (a per-chunk toString() would not)
    proc.stdout!.setEncoding('utf8').on('data', (c: string) => (this.stdout += c));
    proc.stderr!.setEncoding('utf8').on('data', (c: string) => (this.stderr += c));
    this.exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  }

  get pid(): number {
    return this.proc.pid!;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Parsed JSON log records (production mode). */
  logs(): Array<Record<string, unknown>> {
    return this.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          return {};
        }
      });
  }

  /** The pids of the php workers: rrts's children in exec mode, the fork masters' children (not spares) in fork mode. */
  workerPids(): number[] {
    if (!this.fork) return childrenOf(this.pid);
    return this.masterPids()
      .flatMap((pid) => childrenOf(pid))
      .filter((pid) => !isForkSpare(pid));
  }

  /** Fork mode: the masters' parked spares (server.fork.spares), forked but not yet workers. */
  sparePids(): number[] {
    return this.masterPids()
      .flatMap((pid) => childrenOf(pid))
      .filter(isForkSpare);
  }

  /** Fork mode: the roots (rrts's PHP children, titled "rrts: fork root: ..."), which fork the masters. */
  rootPids(): number[] {
    return this.fork ? childrenOf(this.pid).filter(isForkRoot) : [];
  }

  /**
   * Fork mode: the master pids: the roots' children, and rrts's own children that are no root (a master whose
   * root died is re-parented to rrts; so, briefly, is a dead master's spare, which is left out).
   */
  masterPids(): number[] {
    if (!this.fork) return [];
    const direct = childrenOf(this.pid);
    return [...direct.filter(isForkRoot).flatMap((pid) => childrenOf(pid)), ...direct.filter((pid) => !isForkRoot(pid) && !isForkSpare(pid))].sort(
      (a, b) => a - b,
    );
  }

  async waitFor(predicate: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}\nstdout: ${this.stdout}\nstderr: ${this.stderr.slice(-4000)}`);
      await sleep(25);
    }
  }

  /** Wait until exactly `n` workers run (as direct children). */
  async waitForWorkers(n: number, timeoutMs = 15_000): Promise<number[]> {
    await this.waitFor(() => this.workerPids().length === n, `${n} workers`, timeoutMs);
    return this.workerPids();
  }

  /** SIGTERM, wait for exit, then make sure nothing it started is left (SIGKILL stragglers). */
  async stop(): Promise<{ code: number | null; signal: string | null }> {
    const children = [...this.workerPids(), ...this.sparePids(), ...this.masterPids(), ...this.rootPids()];
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 20_000);
    const exit = await this.exited;
    clearTimeout(timer);
    for (const pid of children) killQuietly(pid);
    fs.rmSync(this.dir, { recursive: true, force: true });
    return exit;
  }
}

export async function startRrts(opts: StartOptions = {}): Promise<RrtsInstance> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-it-'));
  const port = await freePort();
  const relay = opts.relay ?? 'pipes';
  const relayValue = relay === 'pipes' ? 'pipes' : relay === 'unix' ? `unix://${path.join(dir, 'rr.sock')}` : `tcp://127.0.0.1:${await freePort()}`;
  const base: Obj = {
    version: '3',
    server: { command: `php ${FIXTURE}`, relay: relayValue, env: { APP_FLAVOR: 'blue' }, fork: { enabled: opts.mode === 'fork' } },
    http: { address: `127.0.0.1:${port}`, pool: { num_workers: opts.workers ?? 2, allocate_timeout: '10s' } },
    logs: { mode: 'production', level: 'debug' },
  };
  const config = opts.config ? deepMerge(base, opts.config) : base;
  // a config meant to start must validate (one meant to fail, or to show a warning, may not)
  if (!opts.expectFailure && opts.env?.RRTS_STRICT !== '') assertValidConfig(config, 'startRrts');
  const file = path.join(dir, '.rr.yaml');
  fs.writeFileSync(file, stringify(config));
  const proc = spawn(process.execPath, [BIN, 'serve', '-c', file, ...(opts.args ?? [])], {
    cwd: dir,
    env: { ...process.env, RRTS_STRICT: '1', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const instance = new RrtsInstance(proc, dir, port, opts.mode === 'fork');
  if (opts.expectFailure) return instance;
  try {
    await instance.waitFor(() => instance.stdout.includes('server started') || proc.exitCode !== null, 'rrts to start', opts.timeoutMs ?? 20_000);
  } catch (err) {
    await instance.stop();
    throw err;
  }
  if (proc.exitCode !== null) throw new Error(`rrts exited at start (${proc.exitCode}): ${instance.stderr}`);
  return instance;
}
