// Fork mode: one PHP master preloads the app and forks the workers; the children connect back over a private
// unix socket with the normal pid handshake, are matched to the forks we asked for by pid and peer credentials, and
// are handed two real pipes over that connection for their relay.
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type net from 'node:net';
import type { Logger } from 'pino';
import type { PhpCommand } from '../../config/php-command.js';
import { ForkMasterGoneError, ForkMasterRefusedError, WorkerHandshakeTimeoutError, WorkerStartError } from '../../errors.js';
import { nativeUnavailableReason, peerPidIs } from '../../native/index.js';
import { SocketRelayListener } from '../../relay/listener.js';
import { describeExit } from '../../worker/process.js';
import { Worker, type WorkerEvents } from '../../worker/worker.js';
import type { Spawner, SpawnerEvents, WorkerRecipe } from '../spawner.js';
import { parsePhpCommand } from '../../config/php-command.js';
import type { ForkMaster } from './master.js';
import { ForkRoot, type ForkRootHandle, type MasterOptions, type ReadyInfo } from './root.js';
import { WorkerOutputServer } from './output.js';
import { Reaper } from './reaper.js';
import { procStat } from '../../system/proc.js';
import type { Identity } from '../../system/users.js';
import { settlesWithin, delay } from '../../time.js';
import { waitForStart } from '../start-race.js';
import { CrashLoop } from '../../pool/crash-loop.js';

export interface ForkSpawnerOptions {
  command: PhpCommand;
  preload: string | null;
  /** children the master keeps forked and parked ahead of fork requests (server.fork.spares, default 1; 0 when left out here) */
  spares?: number;
  /**
   * this pool's own count, when it differs from `spares` (the root's, which pools sharing a root have in common):
   * each of its masters is told once it is ready (a pool with a dynamic_allocator parks enough for a burst)
   */
  poolSpares?: number;
  /** the pool's worker environment; RR_RELAY is replaced by the private socket */
  env: NodeJS.ProcessEnv;
  cwd: string;
  allocateTimeoutMs: number;
  streamTimeoutMs: number;
  log: Logger;
  /** server.user/group: the master (and so every worker) runs with this uid/gid */
  identity?: Identity | null;
  /** roots shared with other spawners (a front process's: the primary's), instead of a root of its own */
  sharedRoots?: ForkRootProvider | null;
}

/** Where a spawner gets shared roots: the one running for the same recipe, so all masters share one opcache. */
export interface ForkRootProvider {
  /**
   * The root for this recipe (the workers' relay aside): the running one, or a new one. `refused`: the root that
   * refused a generation (its opcache full): a fresh one replaces it, unless another spawner replaced it already.
   */
  root(opts: MasterOptions, refused: ForkRootHandle | null): Promise<ForkRootHandle>;
}

/** What a reload changes, kept to put back when its reset fails. */
interface RecipeState {
  opts: ForkSpawnerOptions;
  childEnv: Record<string, string>;
  rootStale: boolean;
  root: ForkRootHandle | null;
}

/** Master starts tried by one restart before its callers see the error (the pool's own back-off goes on). */
const MASTER_ATTEMPTS = 8;
/** how long the other starts wait for a root's first worker (spawnWorker) */
export const FIRST_START_WAIT_MS = 2_000;

export class ForkSpawner extends EventEmitter<SpawnerEvents> implements Spawner {
  readonly mode = 'fork' as const;
  private runtimeDir = '';
  private listener: SocketRelayListener | null = null;
  /** where the masters' and workers' stdout and stderr arrive; null when they keep the root's (no SO_PEERCRED here) */
  private output: WorkerOutputServer | null = null;
  private outputWarned = false;
  private readonly reaper: Reaper;
  /** the root that forks new masters; replaced when a reload changes the command, or when it died */
  private root: ForkRootHandle | null = null;
  /** roots replaced while masters of theirs still run */
  private readonly retiredRoots = new Set<ForkRootHandle>();
  /** a reload changed the command, env or preload: the next master needs a fresh root */
  private rootStale = false;
  private master: ForkMaster | null = null;
  /** masters replaced by a reset that still have workers */
  private readonly retired = new Set<ForkMaster>();
  private childEnv: Record<string, string> = {};
  private closed = false;
  private relay = '';
  private restarting: Promise<ForkMaster> | null = null;
  /** Failed master starts in a row, spaced by the pool's crash-loop policy (src/pool/crash-loop.ts). */
  private readonly masterLoop: CrashLoop;
  /** a root's first worker start (see spawnWorker): under way, or null once it settled */
  private readonly firstStarts = new WeakMap<ForkRootHandle, Promise<void> | null>();

  constructor(private opts: ForkSpawnerOptions) {
    super();
    this.reaper = new Reaper(opts.log);
    this.masterLoop = new CrashLoop('the fork master', opts.log);
  }

  get masterPid(): number {
    return this.master?.pid ?? 0;
  }

  async start(): Promise<void> {
    this.reaper.becomeSubreaper();
    this.runtimeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-')); // 0700
    const socket = path.join(this.runtimeDir, 'workers.sock');
    this.listener = new SocketRelayListener({ kind: 'unix', path: socket }, this.opts.log, {
      handshakeTimeoutMs: this.opts.allocateTimeoutMs,
      acceptPid: (pid, sock) => this.isOurChild(pid, sock),
      offerPipes: true,
    });
    await this.listener.listen();
    const id = this.opts.identity;
    if (id) {
      // the workers run as server.user: the private dir and socket become theirs (still 0700: nobody else's)
      fs.chownSync(this.runtimeDir, id.uid, id.gid);
      fs.chownSync(socket, id.uid, id.gid);
    }
    // this pool's own, though the root be shared: its masters and workers write here, and a failed start quotes them
    const output = new WorkerOutputServer(path.join(this.runtimeDir, 'output.sock'), this.opts.log, (pid) => this.writesOurOutput(pid));
    if (await output.listen(id ?? null)) this.output = output;
    else this.opts.log.warn(`forked workers' output is logged under the fork root's pid: ${nativeUnavailableReason() ?? 'SO_PEERCRED is not available'}`);
    const relay = `unix://${socket}`;
    this.relay = relay;
    this.childEnv = childEnvironment(this.opts.env, relay);
    try {
      this.master = await this.startMaster();
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  /** A reload's recipe becomes current (the next master runs it); returns what it replaced, for restoreRecipe. */
  private applyRecipe(next: WorkerRecipe): RecipeState {
    const before = this.recipeState();
    const command = parsePhpCommand(next.command);
    const childEnv = childEnvironment(next.env, this.relay);
    const recipe = (o: { command: PhpCommand; preload: string | null }, env: Record<string, string>): string =>
      JSON.stringify([o.command, o.preload, Object.entries(env).sort(([a], [b]) => (a < b ? -1 : 1))]);
    // the root's command line and environment are its masters': a change needs a new root (a cold opcache)
    if (recipe({ command, preload: next.preload }, childEnv) !== recipe(this.opts, this.childEnv)) this.rootStale = true;
    this.opts = { ...this.opts, command, env: next.env, preload: next.preload };
    this.childEnv = childEnv;
    return before;
  }

  private recipeState(): RecipeState {
    return { opts: this.opts, childEnv: this.childEnv, rootStale: this.rootStale, root: this.root };
  }

  /**
   * A reset with a new recipe failed: the previous one is current again, and so is its root when it still runs, so
   * a master restarted later runs the code that worked. The new root retires once its masters are gone.
   */
  private restoreRecipe(before: RecipeState): void {
    this.opts = before.opts;
    this.childEnv = before.childEnv;
    this.rootStale = before.rootStale;
    if (this.root === before.root) return;
    if (this.root) this.retiredRoots.add(this.root);
    if (before.root?.alive) {
      this.retiredRoots.delete(before.root);
      this.root = before.root;
    } else {
      this.root = null;
    }
    this.stopIdleRoots();
  }

  /**
   * The first worker of a root starts alone when its opcache is on: it compiles the script and what the script
   * includes before its handshake into the shared opcache, and the starts waiting for it find them compiled. Each
   * worker that compiles them itself (a pool start forks them all at once) keeps the compiler's pages as its own
   * memory (~300 KiB here) and spends the CPU the others need. They wait FIRST_START_WAIT_MS at most: a first
   * worker that hangs before its handshake does not double the time the pool start takes to fail.
   */
  async spawnWorker(events: WorkerEvents): Promise<Worker> {
    const master = await this.currentMaster();
    const root = master.root;
    const first = this.firstStarts.get(root);
    if (first) {
      await settlesWithin(first, FIRST_START_WAIT_MS);
      return this.forkWorker(await this.currentMaster(), events);
    }
    if (first === undefined && root.info?.opcache) {
      const start = this.forkWorker(master, events);
      const done = (): void => void this.firstStarts.set(root, null);
      this.firstStarts.set(root, start.then(done, done));
      return start;
    }
    return this.forkWorker(master, events);
  }

  private async forkWorker(master: ForkMaster, events: WorkerEvents): Promise<Worker> {
    const pid = await master.fork(this.pickEnv());
    const proc = this.reaper.watch(pid, master);
    void proc.exited.then(() => this.stopIfDone(master)); // a retired master stops with its last worker
    const listener = this.listener!;
    try {
      const accepted = await waitForStart(listener.waitFor(pid), {
        exited: proc.exited,
        timeoutMs: this.opts.allocateTimeoutMs,
        exitError: async (exit) => {
          const output = (await this.output?.startFailed(pid))?.join('\n') ?? '';
          const tail = output ? `; its output: ${output.slice(-4096)}` : '';
          return new WorkerStartError(`forked worker ${pid} exited before it was ready (${describeExit(exit)})${tail}`);
        },
        timeoutError: () =>
          new WorkerHandshakeTimeoutError(
            `forked worker ${pid} did not answer the pid handshake within ${this.opts.allocateTimeoutMs} ms (pool.allocate_timeout)`,
          ),
      });
      this.output?.started(pid);
      return new Worker(proc, accepted.relay, events, this.opts.streamTimeoutMs);
    } catch (err) {
      this.output?.started(pid); // what the error did not quote is logged rather than lost
      proc.signal('SIGKILL');
      await proc.exited;
      throw err;
    } finally {
      listener.forget(pid);
    }
  }

  /**
   * Reset: a new master becomes current (new code: forked by the root, it shares the opcache and recompiles what
   * changed; a fresh root when the opcache cannot be shared, or when `recipe` changed the command, env or preload);
   * the old one is stopped once its workers are gone. Returns a rollback that puts the old master and recipe back
   * if the new workers could not start.
   */
  async renew(recipe?: WorkerRecipe): Promise<() => Promise<void>> {
    const before = recipe ? this.applyRecipe(recipe) : this.recipeState();
    const old = this.master;
    let fresh: ForkMaster;
    try {
      fresh = await this.startMaster();
    } catch (err) {
      this.restoreRecipe(before);
      throw err;
    }
    this.master = fresh;
    if (old) this.retire(old);
    return async () => {
      if (old && old.alive) {
        this.retired.delete(old);
        this.master = old;
      }
      await fresh.stop();
      this.restoreRecipe(before);
      this.stopIdleRoots();
    };
  }

  /** Replaced by a reset: the master is stopped once its last worker is gone (checked as each one exits). */
  private retire(master: ForkMaster): void {
    this.retired.add(master);
    this.stopIfDone(master);
    // and every second, for a worker whose exit was seen elsewhere (re-parented, reaped by the orphan reaper)
    const check = setInterval(() => (this.retired.has(master) ? this.stopIfDone(master) : clearInterval(check)), 1_000);
    check.unref();
  }

  private stopIfDone(master: ForkMaster): void {
    if (!this.retired.has(master)) return;
    if (master.alive && [...master.children].some((pid) => procStat(pid) !== null)) return;
    this.retired.delete(master);
    void master.stop().then(() => this.stopIdleRoots());
  }

  /** Roots replaced earlier whose masters are all gone. */
  private stopIdleRoots(): void {
    for (const root of this.retiredRoots) {
      if (root.liveMasters === 0) {
        this.retiredRoots.delete(root);
        void root.stop();
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const masters = [this.master, ...this.retired].filter((m): m is ForkMaster => m !== null);
    this.master = null;
    this.retired.clear();
    await Promise.all(masters.map((m) => m.stop()));
    const roots = [this.root, ...this.retiredRoots].filter((r): r is ForkRootHandle => r !== null);
    this.root = null;
    this.retiredRoots.clear();
    await Promise.all(roots.map((r) => r.stop()));
    await this.listener?.close();
    this.listener = null;
    await this.output?.close();
    this.output = null;
    if (this.runtimeDir) fs.rmSync(this.runtimeDir, { recursive: true, force: true });
  }

  /**
   * Forced exit, synchronous: SIGKILL each root with its process group (its masters, their workers and spares), the
   * masters whose root is gone, and every watched worker; remove the private directory and its sockets.
   */
  killAll(): void {
    this.closed = true;
    for (const root of [this.root, ...this.retiredRoots]) root?.killGroup();
    for (const master of [this.master, ...this.retired]) master?.kill();
    this.reaper.killAll();
    if (this.runtimeDir) fs.rmSync(this.runtimeDir, { recursive: true, force: true });
  }

  /** A new master from the current root; a fresh root first when there is none, it died, or it cannot share. */
  private async startMaster(): Promise<ForkMaster> {
    let root = this.root;
    // a root that cannot share its opcache with a new generation is replaced (a shared one: unless already done)
    if (!root || !root.warm || this.rootStale) root = await this.startRoot(root?.alive && !this.rootStale ? root : null);
    let master: ForkMaster;
    try {
      master = await root.startMaster();
    } catch (err) {
      if (!root.alive || !(err instanceof ForkMasterRefusedError)) throw err;
      // the root refused (its opcache is full or too wasted): a fresh root, fresh opcache
      this.opts.log.warn(`${err.message}; starting a fresh fork root`);
      master = await (await this.startRoot(root)).startMaster();
    }
    const poolSpares = this.opts.poolSpares;
    if (poolSpares !== undefined && poolSpares !== (this.opts.spares ?? 0)) {
      // a master that cannot (gone: the next fork tells) keeps the root's count: fewer spares, not an error
      await master.setSpares(poolSpares).catch((err: Error) => this.opts.log.warn(`${err.message}; it keeps ${this.opts.spares ?? 0}`));
    }
    const info = master.info!;
    this.opts.log.info(
      { pid: info.pid, root: master.root.pid, php: info.php, opcache: info.opcache, preload: info.preload },
      `fork master ${info.pid} is ready`,
    );
    if (typeof info.output === 'string' && !this.outputWarned) {
      this.outputWarned = true;
      this.opts.log.warn(`fork master ${info.pid}: its workers' output is logged under the fork root's pid: ${info.output}`);
    }
    if (info.resources > 0) {
      this.opts.log.warn(
        `fork master ${info.pid} holds ${info.resources} open stream(s) after the preload; every worker shares them (open connections in the worker instead)`,
      );
    }
    master.onExit = (exit) => this.onMasterExit(master, describeExit(exit));
    return master;
  }

  /**
   * Start a root (php master.php --root), or get the shared one; the one it replaces retires once its masters are
   * gone. `refused`: the root that just refused a generation.
   */
  private async startRoot(refused: ForkRootHandle | null = null): Promise<ForkRootHandle> {
    const options: MasterOptions = {
      command: this.opts.command,
      preload: this.opts.preload,
      spares: this.opts.spares ?? 0,
      env: this.childEnv,
      cwd: this.opts.cwd,
      log: this.opts.log,
      readyTimeoutMs: this.opts.allocateTimeoutMs,
      identity: this.opts.identity ?? null,
      output: this.output,
    };
    let root: ForkRootHandle;
    let info: ReadyInfo;
    if (this.opts.sharedRoots) {
      root = await this.opts.sharedRoots.root(options, refused);
      info = root.info!;
    } else {
      const own = new ForkRoot(options, this.runtimeDir);
      info = await own.start();
      root = own;
    }
    this.rootStale = false;
    const old = this.root;
    this.root = root;
    if (old && old !== root) {
      this.retiredRoots.add(old);
      this.stopIdleRoots();
    }
    this.opts.log.info({ pid: info.pid, php: info.php, opcache: info.opcache, warm: info.warm === true, socket: this.relay }, `fork root ${info.pid} is ready`);
    if (!info.opcache) this.opts.log.warn(`fork root ${info.pid}: opcache is off for the CLI; workers will not share compiled code`);
    root.onExit = (exit) => {
      if (!this.closed && root === this.root) {
        this.opts.log.error(
          { pid: root.pid },
          `the fork root ${root.pid} died (${describeExit(exit)}); its masters keep serving, the next master starts a new root`,
        );
        this.root = null;
      }
      this.retiredRoots.delete(root);
    };
    return root;
  }

  private onMasterExit(master: ForkMaster, how: string): void {
    if (this.closed || master !== this.master) return;
    this.opts.log.error({ pid: master.pid }, `the fork master ${master.pid} died (${how}); its workers keep serving and a new master starts`);
    this.master = null;
    void this.currentMaster()
      .then(() => this.emit('masterRestart'))
      .catch(() => undefined);
  }

  /** The running master, restarting a dead one with the crash-loop back-off (100 ms doubling to 10 s). */
  private currentMaster(): Promise<ForkMaster> {
    if (this.master?.alive) return Promise.resolve(this.master);
    if (this.closed) return Promise.reject(new ForkMasterGoneError('the fork spawner is closed'));
    this.restarting ??= (async () => {
      for (let attempt = 1; ; attempt++) {
        const wait = this.masterLoop.delay(); // crashLoop.failed() logged it
        if (wait > 0) await delay(wait);
        if (this.closed) throw new ForkMasterGoneError('the fork spawner is closed');
        try {
          const master = await this.startMaster();
          this.master = master;
          this.masterLoop.succeeded();
          return master;
        } catch (err) {
          this.masterLoop.failed(`cannot start the fork master: ${(err as Error).message}`);
          if (attempt >= MASTER_ATTEMPTS) throw err;
        }
      }
    })().finally(() => (this.restarting = null));
    return this.restarting;
  }

  /**
   * A connection may join only if it is a child of one of our masters: the handshake pid and its peer credentials
   * agree, and a master answered that pid to a fork request (it is not reaped before rrts asks) or, when the
   * connection came before that answer, /proc names one of our masters as its parent. (Reading the /proc/<pid>/stat
   * of a worker that is running took ~0.2 ms of the start here: it is only the fallback.) Such a worker goes to a
   * fork request of its master still waiting for the answer (ForkMaster.childConnected): only a worker connects to
   * the relay, while a parked spare already connects its output.
   */
  private isOurChild(pid: number, socket: net.Socket): boolean {
    if (!peerPidIs(socket, pid)) return false;
    if (this.masters().some((m) => m.children.has(pid))) return true;
    const master = this.parentMaster(pid);
    master?.childConnected(pid);
    return master !== undefined;
  }

  /**
   * Output connections: a child of our masters, or a master a root of ours forked for us (it connects before its
   * preload, maybe before the root's answer names it; another pool's master is told another socket).
   */
  private writesOurOutput(pid: number): boolean {
    if (this.isForkedByOurMaster(pid)) return true;
    const parent = procStat(pid)?.ppid;
    return parent !== undefined && [this.root, ...this.retiredRoots].some((root) => root?.pid === parent);
  }

  /** A master of ours answered this pid to a fork, or (a spare, a fork not yet answered) /proc names it the parent. */
  private isForkedByOurMaster(pid: number): boolean {
    return this.masters().some((m) => m.children.has(pid)) || this.parentMaster(pid) !== undefined;
  }

  private masters(): ForkMaster[] {
    return this.master ? [this.master, ...this.retired] : [...this.retired];
  }

  /** The master of ours that /proc names as the parent of pid. */
  private parentMaster(pid: number): ForkMaster | undefined {
    const parent = procStat(pid)?.ppid;
    return parent === undefined ? undefined : this.masters().find((m) => m.pid === parent);
  }

  private pickEnv(): Record<string, string> {
    const keep = ['RR_RELAY', 'RR_MODE', 'RR_RPC', 'RR_VERSION'];
    return Object.fromEntries(keep.filter((k) => this.childEnv[k] !== undefined).map((k) => [k, this.childEnv[k]!]));
  }
}

/** The master's environment: the pool's, with RR_RELAY pointing at our private socket. */
function childEnvironment(env: NodeJS.ProcessEnv, relay: string): Record<string, string> {
  return Object.fromEntries(Object.entries({ ...env, RR_RELAY: relay }).filter((e): e is [string, string] => e[1] !== undefined));
}
