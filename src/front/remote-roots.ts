// A front process's fork roots: the primary's shared ones (root-host.ts), reached over IPC. A generation master
// is forked there for this front, and its control connection arrives here as a passed socket; from then on the
// front talks to it directly, as to a master of its own (docs/front.md §4).
import type net from 'node:net';
import { FrameDecoder } from '../goridge/frame.js';
import { ForkMasterRefusedError, ForkMasterStartError } from '../errors.js';
import { ForkMaster } from '../spawn/fork/master.js';
import { generationEnv, POOL_ENV_NAMES, type ForkRootHandle, type MasterOptions, type ReadyInfo } from '../spawn/fork/root.js';
import type { ForkRootProvider } from '../spawn/fork/spawner.js';
import type { ExitInfo } from '../worker/process.js';
import type { FromFront, RootEvent, RootReply, RootRequest, RootSpec } from './messages.js';

type Send = (msg: FromFront) => void;

/** The ForkRootProvider of a front process: every root is the primary's. */
export class RemoteRoots implements ForkRootProvider {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (reply: RootReply, socket: net.Socket | null) => void }>();
  /** by the root's pid: one object per root, so a spawner sees the same root as the same */
  private readonly roots = new Map<number, RemoteRoot>();

  constructor(private readonly send: Send) {}

  async root(opts: MasterOptions, refused: ForkRootHandle | null): Promise<ForkRootHandle> {
    const spec = rootSpec(opts);
    const key = recipeKey(spec);
    const { reply } = await this.ask({ op: 'root', key, spec, ...(refused ? { fresh: true, root: refused.pid } : {}) });
    let root = this.roots.get(reply.pid);
    if (!root || !root.alive) {
      root = new RemoteRoot(reply.pid, key, reply.info as unknown as ReadyInfo, opts, this);
      this.roots.set(reply.pid, root);
    }
    return root;
  }

  /** A request to the primary's root host; rejects with its error. */
  async ask(request: Omit<RootRequest, 't' | 'id'>): Promise<{ reply: RootReply; socket: net.Socket | null }> {
    const id = this.nextId++;
    const answer = new Promise<{ reply: RootReply; socket: net.Socket | null }>((resolve) =>
      this.pending.set(id, { resolve: (reply, socket) => resolve({ reply, socket }) }),
    );
    this.send({ t: 'rootRequest', id, ...request });
    const { reply, socket } = await answer;
    if (reply.error !== undefined) {
      socket?.destroy();
      throw reply.refused ? new ForkMasterRefusedError(reply.error) : new ForkMasterStartError(reply.error);
    }
    return { reply, socket };
  }

  onMessage(msg: RootReply | RootEvent, handle: unknown): void {
    if (msg.t === 'rootReply') {
      const pending = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      pending?.resolve(msg, (handle as net.Socket | undefined) ?? null);
      return;
    }
    const root = this.roots.get(msg.root);
    if (!root) return;
    const exit: ExitInfo = { code: msg.code, signal: msg.signal };
    if (msg.kind === 'rootExited') {
      this.roots.delete(msg.root);
      root.gone(exit);
    } else root.masterGone(msg.pid, exit);
  }
}

/** One of the primary's roots as this front sees it: the masters it forked for this front. */
class RemoteRoot implements ForkRootHandle {
  private readonly masters = new Map<number, ForkMaster>();
  private exitInfo: ExitInfo | null = null;
  private released = false;
  onExit: ((exit: ExitInfo) => void) | null = null;

  constructor(
    readonly pid: number,
    private readonly key: string,
    readonly info: ReadyInfo,
    private readonly opts: MasterOptions,
    private readonly roots: RemoteRoots,
  ) {}

  get alive(): boolean {
    return this.exitInfo === null && !this.released;
  }

  get warm(): boolean {
    return this.alive && this.info.warm === true;
  }

  get liveMasters(): number {
    return [...this.masters.values()].filter((m) => m.alive).length;
  }

  async startMaster(): Promise<ForkMaster> {
    const output = this.opts.output?.path;
    const { reply, socket } = await this.roots.ask({
      op: 'generation',
      key: this.key,
      root: this.pid,
      env: generationEnv(this.opts.env),
      ...(output ? { output } : {}),
    });
    if (!socket) throw new ForkMasterStartError(`the fork master ${reply.pid}'s control connection did not arrive`);
    const master = new ForkMaster(reply.pid, this, this.opts);
    this.masters.set(reply.pid, master);
    const frames = (reply.frames ?? []).map((payload) => ({ payload: Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength) }));
    master.attach(socket, new FrameDecoder({ maxPayload: 1024 * 1024 }), frames);
    await master.untilReady();
    return master;
  }

  masterGone(pid: number, exit: ExitInfo): void {
    const master = this.masters.get(pid);
    this.masters.delete(pid);
    master?.gone(exit);
  }

  gone(exit: ExitInfo): void {
    if (this.exitInfo) return;
    this.exitInfo = exit;
    for (const master of this.masters.values()) master.rootGone();
    this.onExit?.(exit);
  }

  /** This front is done with it: the primary stops it once no front holds it. */
  async stop(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.roots.ask({ op: 'release', key: this.key, root: this.pid }).catch(() => undefined);
  }

  /** The root is the primary's, with the other fronts' masters: the forced exit there kills it. */
  killGroup(): void {}

  /** The root's output is the primary's to log (a master's own goes to this front's output server, when it has one). */
  tail(): string {
    return '; its output is in the log';
  }
}

/** What the root is started with. */
export function rootSpec(opts: MasterOptions): RootSpec {
  const env = Object.fromEntries(Object.entries(opts.env).filter((e): e is [string, string] => e[1] !== undefined));
  const { php, flags, script, args } = opts.command;
  return {
    command: { php, flags: [...flags], script, args: [...args] },
    preload: opts.preload,
    spares: opts.spares,
    env,
    cwd: opts.cwd,
    readyTimeoutMs: opts.readyTimeoutMs,
  };
}

/**
 * Pools whose roots would be started alike share one (every front's http pool, the jobs pool): RR_RELAY and RR_MODE
 * differ, and each generation request and each fork carries its pool's own.
 */
export function recipeKey(spec: RootSpec): string {
  const env = Object.entries(spec.env).filter(([name]) => !(POOL_ENV_NAMES as readonly string[]).includes(name));
  return JSON.stringify([spec.command, spec.preload, spec.spares, spec.cwd, env.sort(([a], [b]) => (a < b ? -1 : 1))]);
}
