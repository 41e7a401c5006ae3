// Fork mode: the fork roots live in the primary, one per recipe, and every pool's generation masters are forked
// from it (each front's http pool, the jobs pool here), so all workers map one opcache segment. A front's master
// connects to the root's control socket here (checked by ForkRoot); its connection is handed to the front that asked
// for it, and its exit is reported there (docs/front.md §4, docs/fork-mode.md). Each master and its workers write to
// the output socket of the pool that asked for it (the generation request names it), not to the host.
import fs from 'node:fs';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { ForkMasterRefusedError } from '../errors.js';
import type { FrameDecoder } from '../goridge/frame.js';
import { ForkMaster } from '../spawn/fork/master.js';
import { ForkRoot, generationEnv, type ForkRootHandle, type GenerationTarget, type MasterOptions, type ReadyInfo } from '../spawn/fork/root.js';
import type { ForkRootProvider } from '../spawn/fork/spawner.js';
import type { Identity } from '../system/users.js';
import type { ExitInfo } from '../worker/process.js';
import type { RootEvent, RootReply, RootRequest } from './messages.js';
import { recipeKey, rootSpec } from './remote-roots.js';

/** How the host answers one front (the latest process in that slot). */
export type FrontPost = (msg: RootReply | RootEvent, socket?: net.Socket) => void;

interface SharedRoot {
  root: ForkRoot;
  key: string;
  readyTimeoutMs: number;
  /** the fronts holding it (front indexes), and this process's pools (negative: see localProvider) */
  holders: Set<number>;
  /** this process's pools' handles of it */
  locals: Set<LocalRoot>;
}

export class RootHost {
  /** every root's control socket (one directory for the host: removed by close() and killAll()) */
  private runtimeDir = '';
  /** by root pid */
  private readonly roots = new Map<number, SharedRoot>();
  /** roots no longer held, being stopped: close() waits for them, killAll() kills them */
  private readonly stopping = new Set<ForkRoot>();
  /** recipe key -> the root new masters of that recipe come from (starting or running) */
  private readonly current = new Map<string, Promise<SharedRoot>>();
  private readonly posts = new Map<number, FrontPost>();
  private closed = false;
  /** the holder number of the next pool of this process (fronts count up from 0) */
  private nextLocal = -1;

  constructor(
    private readonly log: Logger,
    private readonly identity: Identity | null,
  ) {}

  /** One front's request; the answer (and later the events of its masters) go through `post`. */
  request(front: number, msg: RootRequest, post: FrontPost): void {
    this.posts.set(front, post);
    const fail = (err: unknown, refused = false): void =>
      post({ t: 'rootReply', id: msg.id, pid: 0, error: (err as Error).message, ...(refused ? { refused } : {}) });
    if (msg.op === 'root') {
      this.rootFor(front, msg).then((shared) => post({ t: 'rootReply', id: msg.id, pid: shared.root.pid, info: { ...shared.root.info } }), fail);
    } else if (msg.op === 'generation') {
      const shared = this.roots.get(msg.root!);
      if (!shared || !shared.root.alive) {
        fail(new Error(`the fork root ${msg.root} is gone`));
        return;
      }
      shared.root
        .startGeneration((pid) => new RemoteGeneration(pid, shared.root.pid, msg.id, front, this, shared.readyTimeoutMs), msg.env, msg.output)
        .catch((err: Error) => fail(err, err instanceof ForkMasterRefusedError));
    } else {
      const shared = this.roots.get(msg.root!);
      shared?.holders.delete(front);
      if (shared) this.stopIfUnused(shared);
      post({ t: 'rootReply', id: msg.id, pid: msg.root! });
    }
  }

  /** Send to the front process in slot `front` now (a replacement, when the one that asked died). */
  post(front: number, msg: RootReply | RootEvent, socket?: net.Socket): void {
    this.posts.get(front)?.(msg, socket);
  }

  /**
   * The roots of one pool of this process (its ForkSpawner's sharedRoots): the same as the fronts' for the same
   * command and preload, so the jobs workers share the http workers' opcache.
   */
  localProvider(): ForkRootProvider {
    const holder = this.nextLocal--;
    const handles = new Map<number, LocalRoot>();
    return {
      root: async (opts: MasterOptions, refused: ForkRootHandle | null): Promise<ForkRootHandle> => {
        const spec = rootSpec(opts);
        const request: RootRequest = {
          t: 'rootRequest',
          id: 0,
          op: 'root',
          key: recipeKey(spec),
          spec,
          ...(refused ? { fresh: true, root: refused.pid } : {}),
        };
        const shared = await this.rootFor(holder, request);
        let handle = handles.get(shared.root.pid);
        // one handle per root and pool, as a spawner compares its roots by identity
        if (!handle || !handle.alive) {
          handle = new LocalRoot(shared, opts, () => this.release(holder, shared, handle!));
          handles.set(shared.root.pid, handle);
          shared.locals.add(handle);
        }
        return handle;
      },
    };
  }

  private release(holder: number, shared: SharedRoot, handle: LocalRoot): void {
    shared.locals.delete(handle);
    shared.holders.delete(holder);
    if (this.roots.get(shared.root.pid) === shared) this.stopIfUnused(shared);
  }

  /** A front process died: the roots it held are no longer held by it (its masters quit as their channels close). */
  frontGone(front: number): void {
    for (const shared of this.roots.values()) {
      shared.holders.delete(front);
      this.stopIfUnused(shared);
    }
  }

  private async rootFor(front: number, msg: RootRequest): Promise<SharedRoot> {
    let running = this.current.get(msg.key);
    if (running) {
      const shared = await running.catch(() => null);
      // a fresh root only when the one that refused is still the current one (another front may have replaced it)
      if (shared && shared.root.alive && !(msg.fresh && shared.root.pid === msg.root)) {
        shared.holders.add(front);
        return shared;
      }
    }
    running = this.startRoot(msg);
    this.current.set(msg.key, running);
    running.catch(() => this.current.get(msg.key) === running && this.current.delete(msg.key));
    const shared = await running;
    shared.holders.add(front);
    return shared;
  }

  private async startRoot(msg: RootRequest): Promise<SharedRoot> {
    if (this.closed) throw new Error('rrts is stopping');
    this.ensureDir();
    const spec = msg.spec!;
    const root = new ForkRoot(
      {
        command: spec.command,
        preload: spec.preload,
        spares: spec.spares,
        env: spec.env,
        cwd: spec.cwd,
        log: this.log,
        readyTimeoutMs: spec.readyTimeoutMs,
        identity: this.identity,
      },
      this.runtimeDir,
    );
    const info = await root.start();
    const shared: SharedRoot = { root, key: msg.key, readyTimeoutMs: spec.readyTimeoutMs, holders: new Set(), locals: new Set() };
    this.roots.set(root.pid, shared);
    this.log.info({ pid: root.pid, php: info.php, opcache: info.opcache, control: root.controlSocket }, `shared fork root ${root.pid} is ready`);
    root.onExit = (exit) => {
      this.roots.delete(root.pid);
      for (const front of shared.holders) {
        if (front < 0) continue;
        this.post(front, { t: 'rootEvent', kind: 'rootExited', root: root.pid, pid: root.pid, code: exit.code, signal: exit.signal });
      }
      for (const local of shared.locals) local.onExit?.(exit);
    };
    return shared;
  }

  /** Neither current for its recipe nor held: stopped. A current root stays while any front holds it. */
  private stopIfUnused(shared: SharedRoot): void {
    if (shared.holders.size > 0) return;
    this.roots.delete(shared.root.pid);
    void this.current
      .get(shared.key)
      ?.then((c) => c === shared && this.current.delete(shared.key))
      .catch(() => undefined);
    const root = shared.root;
    this.stopping.add(root);
    void root.stop().finally(() => this.stopping.delete(root));
  }

  private ensureDir(): void {
    if (this.runtimeDir) return;
    this.runtimeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-')); // 0700
    if (this.identity) fs.chownSync(this.runtimeDir, this.identity.uid, this.identity.gid);
  }

  /** After the last pool stopped: every root is stopped (those released earlier too) and the directory removed. */
  async close(): Promise<void> {
    this.closed = true;
    const roots = [...[...this.roots.values()].map((s) => s.root), ...this.stopping];
    this.roots.clear();
    await Promise.all(roots.map((root) => root.stop()));
    if (this.runtimeDir) fs.rmSync(this.runtimeDir, { recursive: true, force: true });
  }

  /** Forced exit: SIGKILL every root with its group (its masters, their workers and spares), remove the directory. */
  killAll(): void {
    this.closed = true;
    for (const root of [...[...this.roots.values()].map((s) => s.root), ...this.stopping]) root.killGroup();
    if (this.runtimeDir) fs.rmSync(this.runtimeDir, { recursive: true, force: true });
  }
}

/** One of the host's roots as a pool of this process holds it: the masters forked for that pool. */
class LocalRoot implements ForkRootHandle {
  private readonly masters = new Set<ForkMaster>();
  private released = false;
  onExit: ((exit: ExitInfo) => void) | null = null;

  constructor(
    private readonly shared: SharedRoot,
    private readonly opts: MasterOptions,
    private readonly onRelease: () => void,
  ) {}

  get pid(): number {
    return this.shared.root.pid;
  }

  get alive(): boolean {
    return this.shared.root.alive && !this.released;
  }

  get warm(): boolean {
    return this.alive && this.shared.root.warm;
  }

  get info(): ReadyInfo | null {
    return this.shared.root.info;
  }

  get liveMasters(): number {
    return [...this.masters].filter((m) => m.alive).length;
  }

  async startMaster(): Promise<ForkMaster> {
    const make = (pid: number): ForkMaster => new ForkMaster(pid, this, this.opts);
    const master = await this.shared.root.startGeneration(make, generationEnv(this.opts.env), this.opts.output?.path);
    this.masters.add(master);
    void master.exited.then(() => this.masters.delete(master));
    await master.untilReady();
    return master;
  }

  /** This pool is done with it: the host stops it once nothing holds it. */
  async stop(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.onRelease();
  }

  killGroup(): void {
    this.shared.root.killGroup();
  }

  tail(): string {
    return this.shared.root.tail();
  }
}

/**
 * A generation master forked for a front process: its control connection (checked by the root) is sent to that
 * front with the frames read with its hello; its exit is reported to it. Exported for its unit test.
 */
export class RemoteGeneration implements GenerationTarget {
  private attached = false;
  private exit: ExitInfo | null = null;
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly pid: number,
    private readonly rootPid: number,
    private readonly requestId: number,
    private readonly front: number,
    private readonly host: { post: (front: number, msg: RootReply | RootEvent, socket?: net.Socket) => void },
    readyTimeoutMs: number,
  ) {
    this.timer = setTimeout(() => {
      if (this.attached || this.exit) return;
      this.fail(`the fork master ${pid} did not connect within ${readyTimeoutMs} ms`);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, readyTimeoutMs);
    this.timer.unref();
  }

  get alive(): boolean {
    return this.exit === null;
  }

  get awaitingConnection(): boolean {
    return !this.attached && this.alive;
  }

  attach(socket: net.Socket, decoder: FrameDecoder, early: Array<{ payload: Buffer }>): void {
    this.attached = true;
    clearTimeout(this.timer);
    // A paused net.Socket still reads into its stream buffer, and what the handle reads once it is being sent is
    // dropped: stop reading at the handle, then take what was read so far along with the hello's frames.
    (socket as unknown as { _handle?: { readStop?(): void } })._handle?.readStop?.();
    const frames = early.map((f) => new Uint8Array(f.payload));
    try {
      for (let chunk = socket.read() as Buffer | null; chunk !== null; chunk = socket.read() as Buffer | null) {
        for (const frame of decoder.push(chunk)) frames.push(new Uint8Array(frame.payload));
      }
    } catch (err) {
      socket.destroy();
      this.fail(`the fork master ${this.pid} sent a bad frame: ${(err as Error).message}`);
      return;
    }
    if (decoder.pending > 0) {
      // part of a frame cannot follow the socket: the master is refused rather than misread
      socket.destroy();
      this.fail(`the fork master ${this.pid} sent a partial frame with its hello`);
      return;
    }
    this.host.post(this.front, { t: 'rootReply', id: this.requestId, pid: this.pid, frames }, socket);
  }

  gone(exit: ExitInfo): void {
    if (this.exit) return;
    this.exit = exit;
    clearTimeout(this.timer);
    if (!this.attached) this.fail(`the fork master ${this.pid} exited before it connected`);
    else this.host.post(this.front, { t: 'rootEvent', kind: 'masterExited', root: this.rootPid, pid: this.pid, code: exit.code, signal: exit.signal });
  }

  rootGone(): void {
    if (!this.attached) this.gone({ code: null, signal: null });
  }

  private fail(error: string): void {
    this.attached = true; // answered once
    this.host.post(this.front, { t: 'rootReply', id: this.requestId, pid: 0, error });
  }
}
