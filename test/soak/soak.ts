// The soak run: a real `rrts serve` under keep-alive HTTP load while a worker is SIGKILLed every 200 ms, the pool
// is reset over RPC and rrts gets SIGHUP on a schedule; it measures what must stay flat (rrts's RSS and fds, no
// zombie) and what each event may cost (a failed request per kill at most, the pool back to N workers).
// test/integration/soak.test.ts runs a short version; `npm run soak` the full one (test/soak/full.soak.ts).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { FIXTURE, procStat, type Mode } from '../integration/harness.js';
import { serve, sleep, type Served } from '../integration/prod-harness.js';
import { RpcClient } from '../../src/cli/rpc-client.js';

export interface SoakOptions {
  mode: Mode;
  /** the whole run, warm-up included */
  seconds: number;
  /** RSS and fds are compared with their values at the end of this */
  warmupSeconds: number;
  killEveryMs?: number;
  resetEveryMs?: number;
  hupEveryMs?: number;
  /** the first SIGHUP of each phase comes this long after its start (so it does not meet the first RPC reset) */
  hupOffsetMs?: number;
  workers?: number;
  /** keep-alive connections sending requests back to back */
  concurrency?: number;
  /** each request sleeps this long in the worker, so a kill often finds it busy */
  requestMs?: number;
  /** rrts's log level (debug names every worker start) */
  logLevel?: string;
}

export interface SoakResult {
  mode: Mode;
  requests: number;
  ok: number;
  /** 5xx answers and connection errors */
  failures: number;
  failureKinds: Record<string, number>;
  kills: number;
  /** kills of a worker the informer listed as working just before */
  busyKills: number;
  resets: number;
  resetErrors: string[];
  hups: number;
  hupErrors: string[];
  /** the longest wait for the pool to list N live workers again, after a kill / a reset / a SIGHUP's reset */
  recoveryMs: { kill: number; reset: number; hup: number };
  /** events after which the pool was not back to N workers within RECOVERY_BOUND_MS */
  notRecovered: string[];
  rssKb: { warm: number; end: number; max: number };
  /** rrts's RSS every 10 s of load (KiB) */
  rssEvery10sKb: number[];
  fds: { warm: number; end: number };
  /** zombie children of rrts or its descendants seen in ZOMBIE_PERSIST_SAMPLES samples in a row */
  lingeringZombies: string[];
  zombiesAtEnd: string[];
  /** rrts's log lines that name a lingering zombie (for the report) */
  zombieLog: string[];
}

/** how long the pool may take to list N live workers again after an event */
export const RECOVERY_BOUND_MS = 15_000;
/** allowed growth of rrts's RSS over the run (after the warm-up) */
export const RSS_MARGIN_KB = 20 * 1024;
/** allowed difference in rrts's open fds between the quiet moments after the warm-up and at the end */
export const FD_MARGIN = 8;
/** a zombie child seen in this many 1-second samples in a row is one nobody reaps */
const ZOMBIE_PERSIST_SAMPLES = 3;
const REQUEST_TIMEOUT_MS = 30_000;
/** a bound on the requests of one run: ~8 connections of ~10 ms requests cannot reach it in 3 minutes */
const MAX_REQUESTS = 1_000_000;

interface WorkerState {
  pid: number;
  statusStr: string;
}

function live(pid: number): boolean {
  const s = procStat(pid);
  return s !== null && s.state !== 'Z';
}

function rssKb(pid: number): number {
  const line = fs
    .readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'));
  return Number(/(\d+)/.exec(line ?? '')?.[1] ?? 0);
}

function fdCount(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

/** Zombie children of rrts and of its descendants (in fork mode the root and masters: workers are their children). */
function zombies(rrts: Served): number[] {
  const parents = new Set([rrts.pid, ...rrts.descendants()]);
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const s = procStat(Number(entry));
    if (s && s.state === 'Z' && parents.has(s.ppid)) out.push(Number(entry));
  }
  return out;
}

/** `pid (child of ppid: its command line)`, for a report. */
function describeZombie(pid: number): string {
  const ppid = procStat(pid)?.ppid ?? 0;
  let parent = '';
  try {
    parent = fs.readFileSync(`/proc/${ppid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
  } catch {
    /* gone */
  }
  return `${pid} (child of ${ppid}: ${parent})`;
}

/** Everything a run does, with its counters; phases share them. */
class Soak {
  readonly result: SoakResult;
  private agent: http.Agent | null = null;
  private stopLoad = false;
  private readonly opts: Required<SoakOptions>;

  constructor(
    private readonly rrts: Served,
    private readonly rpc: RpcClient,
    opts: SoakOptions,
  ) {
    this.opts = {
      logLevel: 'info',
      killEveryMs: 200,
      resetEveryMs: 10_000,
      hupEveryMs: 30_000,
      hupOffsetMs: 5_000,
      workers: 4,
      concurrency: 8,
      requestMs: 10,
      ...opts,
    };
    this.result = {
      mode: opts.mode,
      requests: 0,
      ok: 0,
      failures: 0,
      failureKinds: {},
      kills: 0,
      busyKills: 0,
      resets: 0,
      resetErrors: [],
      hups: 0,
      hupErrors: [],
      recoveryMs: { kill: 0, reset: 0, hup: 0 },
      notRecovered: [],
      rssKb: { warm: 0, end: 0, max: 0 },
      rssEvery10sKb: [],
      fds: { warm: 0, end: 0 },
      lingeringZombies: [],
      zombiesAtEnd: [],
      zombieLog: [],
    };
  }

  /** Load and events for `ms`, then everything quiet again: N idle workers, no connection of ours but the RPC one. */
  async phase(ms: number): Promise<void> {
    this.stopLoad = false;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: this.opts.concurrency });
    const until = Date.now() + ms;
    const runners = Array.from({ length: this.opts.concurrency }, () => this.loadRunner());
    const events = [this.killer(until), this.resetter(until), this.hupper(until), this.watcher(until)];
    await Promise.all(events);
    this.stopLoad = true;
    await Promise.all(runners);
    this.agent.destroy();
    this.agent = null;
    await this.untilPoolIs(this.opts.workers, 'the end of a phase', (list) => list.every((w) => w.statusStr === 'ready'));
  }

  /** rrts's RSS and fd count at a quiet moment (the fd count once two samples 200 ms apart agree). */
  async sample(): Promise<{ rss: number; fds: number }> {
    let fds = fdCount(this.rrts.pid);
    for (let i = 0; i < 25; i++) {
      await sleep(200);
      const again = fdCount(this.rrts.pid);
      if (again === fds) break;
      fds = again;
    }
    return { rss: rssKb(this.rrts.pid), fds };
  }

  private async loadRunner(): Promise<void> {
    const url = `${this.rrts.url}/sleep?ms=${this.opts.requestMs}`;
    while (!this.stopLoad && this.result.requests < MAX_REQUESTS) {
      this.result.requests++;
      const outcome = await this.get(url);
      if (outcome === 'ok') this.result.ok++;
      else {
        this.result.failures++;
        this.result.failureKinds[outcome] = (this.result.failureKinds[outcome] ?? 0) + 1;
      }
    }
  }

  /** 'ok', or what failed: 'status 5xx' or the connection error's code. */
  private get(url: string): Promise<string> {
    return new Promise((resolve) => {
      const req = http.get(url, { agent: this.agent! }, (res) => {
        res.resume();
        res.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
        res.on('end', () => resolve(res.statusCode !== undefined && res.statusCode >= 500 ? `status ${res.statusCode}` : res.complete ? 'ok' : 'truncated'));
      });
      req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error('timeout')));
      req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    });
  }

  private workers(): Promise<WorkerState[]> {
    return this.rpc.call<{ workers: WorkerState[] }>('informer.Workers', 'http').then((r) => r.workers);
  }

  /**
   * Wait (bounded) until the pool lists N live workers, none of them `gone`; returns the wait, or records the event
   * as not recovered.
   */
  private async untilPoolIs(n: number, event: string, also: (list: WorkerState[]) => boolean = () => true, gone = 0): Promise<number> {
    const started = Date.now();
    for (;;) {
      const list = await this.workers();
      if (list.length === n && list.every((w) => w.pid !== gone && live(w.pid)) && also(list)) return Date.now() - started;
      if (Date.now() - started > RECOVERY_BOUND_MS) {
        this.result.notRecovered.push(`${event}: ${list.length} workers listed (${list.map((w) => `${w.pid} ${w.statusStr}`).join(', ')})`);
        return Date.now() - started;
      }
      await sleep(20);
    }
  }

  /** Every killEveryMs: SIGKILL a worker the informer lists, then wait for the pool to be back to N. */
  private async killer(until: number): Promise<void> {
    while (Date.now() < until) {
      const next = Date.now() + this.opts.killEveryMs;
      const list = (await this.workers()).filter((w) => live(w.pid));
      const victim = list[Math.floor(Math.random() * list.length)];
      if (victim) {
        try {
          process.kill(victim.pid, 'SIGKILL');
          this.result.kills++;
          if (victim.statusStr === 'working') this.result.busyKills++;
        } catch {
          /* exited meanwhile (a reset retired it) */
        }
        const waited = await this.untilPoolIs(this.opts.workers, `kill of ${victim.pid}`, undefined, victim.pid);
        this.result.recoveryMs.kill = Math.max(this.result.recoveryMs.kill, waited);
      }
      await sleep(Math.max(0, Math.min(next, until) - Date.now()));
    }
  }

  /** resetter.Reset over RPC every resetEveryMs (the first one resetEveryMs after the start). */
  private async resetter(until: number): Promise<void> {
    for (let at = Date.now() + this.opts.resetEveryMs; at < until; at += this.opts.resetEveryMs) {
      await sleep(Math.max(0, at - Date.now()));
      this.result.resets++;
      try {
        await this.rpc.call('resetter.Reset', 'http', 60_000);
      } catch (err) {
        this.result.resetErrors.push((err as Error).message);
      }
      const waited = await this.untilPoolIs(this.opts.workers, `reset ${this.result.resets}`);
      this.result.recoveryMs.reset = Math.max(this.result.recoveryMs.reset, waited);
    }
  }

  /** SIGHUP every hupEveryMs (from hupOffsetMs); done when rrts logs the reset's end (or its failure). */
  private async hupper(until: number): Promise<void> {
    for (let at = Date.now() + this.opts.hupOffsetMs; at < until; at += this.opts.hupEveryMs) {
      await sleep(Math.max(0, at - Date.now()));
      const before = this.reloadOutcomes().length;
      this.result.hups++;
      this.rrts.proc.kill('SIGHUP');
      const deadline = Date.now() + 60_000;
      while (this.reloadOutcomes().length === before && Date.now() < deadline) await sleep(50);
      const outcome = this.reloadOutcomes()[before];
      if (outcome === undefined) this.result.hupErrors.push(`SIGHUP ${this.result.hups}: no reset logged within 60 s`);
      else if (outcome !== 'http: workers reset') this.result.hupErrors.push(`SIGHUP ${this.result.hups}: ${outcome}`);
      const waited = await this.untilPoolIs(this.opts.workers, `SIGHUP ${this.result.hups}`);
      this.result.recoveryMs.hup = Math.max(this.result.recoveryMs.hup, waited);
    }
  }

  /** What each SIGHUP came to, in order: rrts's log line for the reset's end or its failure. */
  private reloadOutcomes(): string[] {
    return this.rrts
      .logs()
      .map((r) => String(r.msg ?? ''))
      .filter((m) => m === 'http: workers reset' || m.startsWith('reset failed') || m.startsWith('config reload failed'));
  }

  /** Every second: rrts's RSS (the maximum) and zombies that stay. */
  private async watcher(until: number): Promise<void> {
    const seen = new Map<number, number>();
    for (let second = 0; Date.now() < until; second++) {
      const rss = rssKb(this.rrts.pid);
      this.result.rssKb.max = Math.max(this.result.rssKb.max, rss);
      if (second % 10 === 0) this.result.rssEvery10sKb.push(rss);
      const now = zombies(this.rrts);
      for (const pid of [...seen.keys()]) if (!now.includes(pid)) seen.delete(pid);
      for (const pid of now) {
        const count = (seen.get(pid) ?? 0) + 1;
        seen.set(pid, count);
        if (count === ZOMBIE_PERSIST_SAMPLES) this.result.lingeringZombies.push(describeZombie(pid));
      }
      await sleep(1_000);
    }
  }
}

/** One soak run in one mode; rrts is stopped (and everything it started killed) before this returns. */
export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const workers = options.workers ?? 4;
  const rrts = await serve({
    config: {
      server: { command: `php ${FIXTURE}`, fork: { enabled: options.mode === 'fork' } },
      http: { pool: { num_workers: workers } },
      rpc: { listen: 'unix://rpc.sock' },
      logs: { level: options.logLevel ?? 'info' },
    },
  });
  let rpc: RpcClient | null = null;
  try {
    rpc = await RpcClient.connect('unix://rpc.sock', rrts.dir);
    const soak = new Soak(rrts, rpc, { ...options, workers });
    await soak.phase(options.warmupSeconds * 1000);
    const warm = await soak.sample();
    await soak.phase((options.seconds - options.warmupSeconds) * 1000);
    const end = await soak.sample();
    const result = soak.result;
    result.rssKb = { warm: warm.rss, end: end.rss, max: Math.max(result.rssKb.max, end.rss) };
    result.fds = { warm: warm.fds, end: end.fds };
    result.zombiesAtEnd = zombies(rrts).map(describeZombie);
    const pids = [...result.lingeringZombies, ...result.zombiesAtEnd].map((z) => z.split(' ')[0]!);
    result.zombieLog = rrts.stderr
      .split('\n')
      .filter((line) => pids.some((pid) => line.includes(pid)))
      .slice(0, 20);
    return result;
  } finally {
    rpc?.close();
    await rrts.kill();
  }
}

/** The soak's promises; each message carries the numbers. */
export function assertSoak(r: SoakResult): void {
  const summary = JSON.stringify(r);
  assert.ok(r.requests > r.kills, `the load ran: ${summary}`);
  assert.ok(r.kills > 0 && r.resets > 0 && r.hups > 0, `every kind of event happened: ${summary}`);
  // each worker runs one request at a time: a kill can cost at most the one request it was running
  assert.ok(r.failures <= r.kills, `failed requests (${r.failures}) <= kills (${r.kills}): ${summary}`);
  assert.deepEqual(r.notRecovered, [], `the pool is back to N workers after every event: ${summary}`);
  assert.deepEqual(r.resetErrors, [], `every RPC reset succeeded: ${summary}`);
  assert.deepEqual(r.hupErrors, [], `every SIGHUP reset succeeded: ${summary}`);
  assert.ok(r.rssKb.end <= r.rssKb.warm + RSS_MARGIN_KB, `RSS flat: ${r.rssKb.warm} KiB after the warm-up, ${r.rssKb.end} KiB at the end: ${summary}`);
  assert.ok(Math.abs(r.fds.end - r.fds.warm) <= FD_MARGIN, `fds flat: ${r.fds.warm} after the warm-up, ${r.fds.end} at the end: ${summary}`);
  assert.deepEqual(r.lingeringZombies, [], `no zombie stays: ${summary}`);
  assert.deepEqual(r.zombiesAtEnd, [], `no zombie at the end: ${summary}`);
}
