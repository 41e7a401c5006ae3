// Helpers for the production tests (prod-*.test.ts): start `rrts serve` optionally behind a wrapper command
// (unshare), drive load at it, and look at processes through /proc. Everything started is killed by pid.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { BIN, childrenOf, deepMerge, freePort, killQuietly, procStat, ROOT, RrtsInstance, sleep } from './harness.js';
import { assertValidConfig } from '../support/schema.js';
import { zombiesOf } from '../support/processes.js';

export { ROOT, sleep, procStat, childrenOf, zombiesOf };

export interface ServeOptions {
  /** e.g. ['unshare', '--pid', '--fork', '--mount-proc']: rrts is then the wrapper's child */
  wrapper?: string[];
  config: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
  args?: string[];
  /** do not wait for "server started" */
  expectFailure?: boolean;
  /** chmod the temp dir (workers running as another user need to enter it) */
  dirMode?: number;
  /**
   * Run a copy of rrts (bin, dist, php, the addon) and of the PHP fixtures from a temp dir every user can read:
   * PHP running as server.user must read them, and a checkout may sit where other users cannot enter (a 0700 home).
   */
  readableCopy?: boolean;
}

let copyRoot: string | null = null;

/** The copy of this checkout that readableCopy serves from, made once per test process and removed at its exit. */
export function readableCopyOfRrts(): string {
  if (copyRoot) return copyRoot;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-copy-'));
  fs.chmodSync(dir, 0o755);
  for (const part of ['bin', 'dist/src', 'php', 'test/fixtures/php', 'package.json', 'build/Release/rrts_native.node']) {
    fs.cpSync(path.join(ROOT, part), path.join(dir, part), { recursive: true });
  }
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules')); // read by rrts (root) only
  // every directory on the way 0755 and every file world-readable, whatever the checkout's umask gave them
  const open = (p: string): void => {
    const st = fs.lstatSync(p);
    if (st.isSymbolicLink()) return;
    fs.chmodSync(p, st.isDirectory() ? 0o755 : st.mode | 0o444);
    if (st.isDirectory()) for (const name of fs.readdirSync(p)) open(path.join(p, name));
  };
  open(dir);
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  copyRoot = dir;
  return dir;
}

/** An RrtsInstance that may run behind a wrapper (unshare): rrts is then the wrapper's child. */
export class Served extends RrtsInstance {
  constructor(
    proc: ChildProcess,
    dir: string,
    port: number,
    readonly file: string,
    readonly wrapped: boolean,
  ) {
    super(proc, dir, port);
  }

  override waitFor(predicate: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
    return super.waitFor(predicate, what, timeoutMs);
  }

  /** rrts's own pid as seen from here: the spawned process, or the wrapper's only child. */
  rrtsPid(): number {
    if (!this.wrapped) return this.proc.pid!;
    const kids = childrenOf(this.proc.pid!);
    return kids.length === 1 ? kids[0]! : this.proc.pid!;
  }

  /** Every process below `root` (not `root` itself). */
  descendants(root = this.rrtsPid()): number[] {
    const out: number[] = [];
    const queue = [root];
    while (queue.length > 0) {
      for (const kid of childrenOf(queue.shift()!)) {
        out.push(kid);
        queue.push(kid);
      }
    }
    return out;
  }

  async kill(): Promise<void> {
    const pids = [this.rrtsPid(), ...this.descendants()];
    for (const pid of pids) killQuietly(pid);
    killQuietly(this.proc.pid!);
    await this.exited;
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function serve(opts: ServeOptions): Promise<Served> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-prod-'));
  if (opts.dirMode !== undefined) fs.chmodSync(dir, opts.dirMode);
  const port = await freePort();
  const base = {
    version: '3',
    http: { address: `127.0.0.1:${port}`, pool: { num_workers: 2, allocate_timeout: '10s' } },
    logs: { mode: 'production', level: 'info' },
  };
  const config = deepMerge(base, opts.config);
  if (!opts.expectFailure && opts.env?.RRTS_STRICT !== '') assertValidConfig(config, 'serve');
  const file = path.join(dir, '.rr.yaml');
  fs.writeFileSync(file, stringify(config));
  const bin = opts.readableCopy ? path.join(readableCopyOfRrts(), 'bin', 'rrts') : BIN;
  const argv = [...(opts.wrapper ?? []), process.execPath, bin, 'serve', '-c', file, ...(opts.args ?? [])];
  const proc = spawn(argv[0]!, argv.slice(1), { cwd: dir, env: { ...process.env, RRTS_STRICT: '1', ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const served = new Served(proc, dir, port, file, (opts.wrapper ?? []).length > 0);
  if (opts.expectFailure) return served;
  try {
    await served.waitFor(() => served.stdout.includes('server started') || proc.exitCode !== null, 'rrts to start');
  } catch (err) {
    await served.kill();
    throw err;
  }
  if (proc.exitCode !== null) throw new Error(`rrts exited at start (${proc.exitCode}): ${served.stderr}`);
  return served;
}

export interface Outcome {
  ok: number;
  /** failed before any response byte: refused, reset, hang up */
  failed: number;
  /** got a response that was not complete: must never happen */
  truncated: number;
  errors: string[];
}

/** One GET; a response counts as complete only if its body has the Content-Length it announced. */
export function get(url: string): Promise<{ kind: 'ok' | 'failed' | 'truncated'; status?: number; body?: string; error?: string }> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (err) => resolve({ kind: 'truncated', error: err.message }));
      res.on('aborted', () => resolve({ kind: 'truncated', error: 'aborted' }));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        const announced = res.headers['content-length'];
        if (!res.complete || (announced !== undefined && Number(announced) !== body.length))
          resolve({ kind: 'truncated', error: `got ${body.length} of ${announced}` });
        else resolve({ kind: 'ok', status: res.statusCode, body: body.toString() });
      });
    });
    req.on('error', (err) => resolve({ kind: 'failed', error: (err as NodeJS.ErrnoException).code ?? err.message }));
  });
}

/** `total` GETs of `url` with `concurrency` in flight; `until` stops early. */
export async function load(url: string, total: number, concurrency: number, check?: (status: number, body: string) => void): Promise<Outcome> {
  const outcome: Outcome = { ok: 0, failed: 0, truncated: 0, errors: [] };
  let next = 0;
  const runner = async (): Promise<void> => {
    while (next < total) {
      next++;
      const r = await get(url);
      if (r.kind === 'ok') {
        outcome.ok++;
        check?.(r.status!, r.body!);
      } else {
        outcome[r.kind]++;
        if (outcome.errors.length < 20) outcome.errors.push(r.error ?? '');
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, runner));
  return outcome;
}

/** Zombie children of `ppid`. */
/** The pid namespace of a process (inode link text), or null once it is gone. */
export function pidNamespace(pid: number): string | null {
  try {
    return fs.readlinkSync(`/proc/${pid}/ns/pid`);
  } catch {
    return null;
  }
}

/** Pids (as seen here) of every process in a pid namespace. */
export function processesIn(ns: string): number[] {
  return fs
    .readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .filter((pid) => pidNamespace(pid) === ns);
}

/** A field of /proc/<pid>/status, e.g. 'Uid' or 'NSpid'. */
export function statusField(pid: number, field: string): string | null {
  try {
    const line = fs
      .readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${field}:`));
    return line ? line.slice(field.length + 1).trim() : null;
  } catch {
    return null;
  }
}
