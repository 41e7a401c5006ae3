// The primary's side of http.front.processes > 1: starts the front processes with node:cluster (they share the
// listening sockets), replaces one that dies, and stands in for them as the `http` plugin: informer, resetter,
// /health, /ready and /metrics ask every front over IPC and merge the answers (docs/front.md).
import type { Worker as ClusterWorker } from 'node:cluster';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { Config } from '../config/types.js';
import type { HasMetrics, HasStatus, HasWorkers, MetricsJson, Plugin, Resettable, WorkerState } from '../plugin.js';
import { forkClusterWorker } from '../system/children.js';
import { procStat } from '../system/proc.js';
import type { WorkerRecipe } from '../spawn/spawner.js';
import { delay, settlesWithin } from '../time.js';
import { decodeFromFront, FrontMessageError, type FrontCallOp, type FrontCallResults, type FromFront, type ToFront } from './messages.js';
import { frontConfig } from './share.js';
import type { RootHost } from './root-host.js';

const ENTRY = path.join(path.dirname(fileURLToPath(import.meta.url)), 'entry.js');
/** A front that dies this soon after its start is restarted after a growing pause (100 ms doubling to 5 s). */
const QUICK_DEATH_MS = 5_000;
const RESTART_BACKOFF_MAX_MS = 5_000;
/** How long a front process may take to exit once it said it stopped, or to die after SIGKILL. */
const EXIT_WAIT_MS = 2_000;

/** What the fronts' pools report, for the primary's metrics plugin. */
export interface FrontObserver {
  workerStarted?(seconds: number): void;
  masterRestarted?(): void;
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

/** One front process slot: its index stays, the process behind it is replaced when it dies. */
class FrontSlot {
  worker: ClusterWorker | null = null;
  pid = 0;
  serving = false;
  startedAt = 0;
  quickDeaths = 0;
  address: AddressInfo | null = null;
  tlsAddress: AddressInfo | null = null;
  exited: Promise<void> = Promise.resolve();
  readonly pending = new Map<number, Pending>();
  constructor(readonly index: number) {}

  get name(): string {
    return `front process ${this.index} (pid ${this.pid})`;
  }
}

export class FrontProcesses implements Plugin, HasWorkers, Resettable, HasStatus, HasMetrics {
  readonly name = 'http';
  private readonly slots: FrontSlot[];
  private nextId = 1;
  private stopping = false;

  constructor(
    private config: Config,
    private readonly log: Logger,
    private readonly observer: FrontObserver,
    /** fork mode: the shared fork roots every front's masters are forked from */
    private readonly roots: RootHost | null,
  ) {
    this.slots = Array.from({ length: config.http!.front.processes }, (_, i) => new FrontSlot(i));
  }

  get workerMode(): 'exec' | 'fork' {
    return this.config.server.fork.enabled ? 'fork' : 'exec';
  }

  /** The bound plain address (the first front's; they share the socket); the TLS one when only https is configured. */
  get address(): AddressInfo | null {
    const slot = this.slots.find((s) => s.serving);
    return slot ? (slot.address ?? slot.tlsAddress) : null;
  }

  get tlsAddress(): AddressInfo | null {
    return this.slots.find((s) => s.serving)?.tlsAddress ?? null;
  }

  /** The pids of the front processes serving now, by index. */
  get pids(): number[] {
    return this.slots.map((s) => s.pid);
  }

  /** Start every front; resolves when all serve, rejects with the first one's failure. */
  async serve(): Promise<void> {
    await Promise.all(this.slots.map((slot) => this.startSlot(slot)));
  }

  private startSlot(slot: FrontSlot): Promise<void> {
    const worker = forkClusterWorker({ exec: ENTRY, args: [], serialization: 'advanced' });
    slot.worker = worker;
    slot.pid = worker.process.pid ?? 0;
    slot.serving = false;
    slot.startedAt = Date.now();
    slot.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    const config = frontConfig(this.config, this.slots.length, slot.index);
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (err: Error | null): void => {
        if (settled) return;
        settled = true;
        if (err) reject(err);
        else resolve();
      };
      worker.on('message', (raw: unknown, handle: unknown) => {
        let msg: FromFront | null;
        try {
          msg = decodeFromFront(raw, slot.name);
        } catch (err) {
          this.log.error((err as FrontMessageError).message);
          return;
        }
        if (msg === null) return;
        if (msg.t === 'hello') this.post(slot, { t: 'start', index: slot.index, config });
        else if (msg.t === 'started') {
          slot.serving = true;
          slot.address = msg.address ?? null;
          slot.tlsAddress = msg.tlsAddress ?? null;
          this.log.debug({ front: slot.index, pid: slot.pid }, `front process ${slot.index} serves (pid ${slot.pid})`);
          settle(null);
        } else if (msg.t === 'failed') settle(new Error(`${slot.name}: ${msg.error}`));
        else this.onMessage(slot, msg, handle);
      });
      worker.once('exit', (code, signal) => {
        settle(new Error(`${slot.name} exited while starting (${signal ?? `code ${code}`})`));
        this.onExit(slot, worker, code, signal);
      });
    });
  }

  private onMessage(slot: FrontSlot, msg: FromFront, handle: unknown): void {
    switch (msg.t) {
      case 'reply': {
        const pending = slot.pending.get(msg.id);
        if (!pending) return;
        slot.pending.delete(msg.id);
        if (msg.error !== undefined) pending.reject(new Error(msg.error));
        else pending.resolve(msg.value);
        break;
      }
      case 'poolEvent':
        if (msg.kind === 'workerStarted') this.observer.workerStarted?.(msg.seconds ?? 0);
        else this.observer.masterRestarted?.();
        break;
      case 'rootRequest':
        if (!this.roots) {
          this.post(slot, { t: 'rootReply', id: msg.id, pid: 0, error: 'fork mode is off in the primary' });
          return;
        }
        this.roots.request(slot.index, msg, (reply, socket) => this.post(slot, reply, socket));
        break;
      default:
        void handle;
    }
  }

  /** A front process is gone: fail its pending calls, and start a new one in its place unless rrts is stopping. */
  private onExit(slot: FrontSlot, worker: ClusterWorker, code: number | null, signal: string | null): void {
    if (slot.worker !== worker) return;
    const wasServing = slot.serving;
    slot.serving = false;
    slot.worker = null;
    for (const pending of slot.pending.values()) pending.reject(new Error(`${slot.name} exited`));
    slot.pending.clear();
    this.roots?.frontGone(slot.index);
    if (this.stopping || !wasServing) return;
    const lived = Date.now() - slot.startedAt;
    slot.quickDeaths = lived < QUICK_DEATH_MS ? slot.quickDeaths + 1 : 0;
    const wait = slot.quickDeaths === 0 ? 0 : Math.min(RESTART_BACKOFF_MAX_MS, 100 * 2 ** (slot.quickDeaths - 1));
    this.log.error(
      { front: slot.index, pid: slot.pid, code, signal },
      `${slot.name} died (${signal ?? `code ${code}`}); a new one takes its place${wait > 0 ? ` in ${wait} ms` : ''}`,
    );
    void this.replace(slot, wait);
  }

  private async replace(slot: FrontSlot, wait: number): Promise<void> {
    if (wait > 0) await delay(wait);
    if (this.stopping) return;
    try {
      await this.startSlot(slot);
    } catch (err) {
      this.log.error(`cannot replace the front process ${slot.index}: ${(err as Error).message}`);
    }
  }

  private post(slot: FrontSlot, msg: ToFront, handle?: unknown): void {
    const worker = slot.worker;
    if (!worker || !worker.isConnected()) return;
    worker.send(msg, handle as undefined, (err: Error | null) => {
      if (err) this.log.debug({ front: slot.index, err: err.message }, 'message to a front process not sent');
    });
  }

  /** Ask one front; rejects when it fails, or exits before it answers. */
  private call<Op extends FrontCallOp>(slot: FrontSlot, op: Op, recipe?: WorkerRecipe): Promise<FrontCallResults[Op]> {
    if (!slot.serving) return Promise.reject(new Error(`${slot.name} is not serving`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      slot.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.post(slot, recipe ? { t: 'call', id, op, recipe } : { t: 'call', id, op });
    });
  }

  private serving(): FrontSlot[] {
    return this.slots.filter((s) => s.serving);
  }

  // Capabilities (src/plugin.ts), merged over every front.

  async workers(): Promise<WorkerState[]> {
    const lists = await Promise.all(this.serving().map((s) => this.call(s, 'workers').catch(() => [])));
    return lists.flat().sort((a, b) => a.pid - b.pid);
  }

  /** One more worker, in the front that has the fewest. */
  async addWorker(): Promise<void> {
    const slot = await this.byWorkerCount((a, b) => a - b);
    await this.call(slot, 'addWorker');
  }

  /** One worker less, from the front that has the most (a front keeps its last one). */
  async removeWorker(): Promise<void> {
    const slot = await this.byWorkerCount((a, b) => b - a);
    await this.call(slot, 'removeWorker');
  }

  private async byWorkerCount(order: (a: number, b: number) => number): Promise<FrontSlot> {
    const slots = this.serving();
    if (slots.length === 0) throw new Error('no front process is serving');
    const counts = await Promise.all(
      slots.map((s) =>
        this.call(s, 'workers').then(
          (w) => w.length,
          () => Infinity,
        ),
      ),
    );
    const best = slots.map((s, i) => ({ s, n: counts[i]! })).sort((a, b) => order(a.n, b.n))[0]!;
    return best.s;
  }

  /** Every front's rolling reset, at once; with `recipe` (a reload) every front takes the new one. */
  async reset(recipe?: WorkerRecipe): Promise<void> {
    const results = await Promise.allSettled(this.serving().map((s) => this.call(s, 'reset', recipe)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** The config a reload brought: fronts started from now on (a replacement) start with it. */
  useConfig(config: Config): void {
    this.config = config;
  }

  /** 200 only while every front process serves and its pool is alive: each front holds its share of the connections. */
  async status(): Promise<number> {
    return this.worstOf('status');
  }

  async ready(): Promise<number> {
    return this.worstOf('ready');
  }

  private async worstOf(op: 'status' | 'ready'): Promise<number> {
    if (this.serving().length < this.slots.length) return 503;
    const codes = await Promise.all(this.slots.map((s) => this.call(s, op).catch(() => 503)));
    return codes.every((c) => c === 200) ? 200 : 503;
  }

  /** Each serving front's http_metrics, one registry's JSON per process, for the metrics plugin to sum. */
  async metricsJson(): Promise<MetricsJson[]> {
    return Promise.all(this.serving().map((s) => this.call(s, 'metrics').catch(() => [])));
  }

  /** Graceful stop of every front: each stops accepting, drains within graceMs, stops its workers and exits. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    const live = this.slots.filter((s) => s.worker !== null);
    for (const slot of live) this.post(slot, { t: 'stop', graceMs });
    await Promise.all(
      live.map(async (slot) => {
        if (await settlesWithin(slot.exited, graceMs + EXIT_WAIT_MS)) return;
        this.log.error(`${slot.name} did not stop within the grace period; killing it and its workers`);
        killFront(slot.pid);
        await settlesWithin(slot.exited, EXIT_WAIT_MS);
      }),
    );
    // the roots are the server's: the jobs pool's masters may still come from them
  }

  /** Forced exit: SIGKILL every front with its workers (their process groups), synchronously. */
  forceStop(): void {
    this.stopping = true;
    for (const slot of this.slots) if (slot.worker) killFront(slot.pid);
    this.roots?.killAll();
  }
}

/** SIGKILL a front process and the process group of each of its children (exec workers lead their own). */
function killFront(pid: number): void {
  if (pid <= 0) return;
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const child = Number(entry);
    if (procStat(child)?.ppid !== pid) continue;
    for (const target of [-child, child]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        /* gone, or no group of its own */
      }
    }
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}
