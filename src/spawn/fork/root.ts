// The fork root (php/master.php --root): one for the pools of one command and preload (a new one after a reload),
// it never loads the app; it forks a generation master per start or reset of a pool, and they all share its opcache
// segment. We talk to it over its fd 3; each master connects to our private control socket, checked here.
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { FrameDecoder } from '../../goridge/frame.js';
import { ForkMasterGoneError, ForkMasterRefusedError, ForkMasterStartError } from '../../errors.js';
import { logOutputLines } from '../../log/index.js';
import type { PhpCommand } from '../../config/php-command.js';
import { describeExit, signalName, type ExitInfo } from '../../worker/process.js';
import { peerPidIs } from '../../native/index.js';
import { listenOn } from '../../listen.js';
import { procStat } from '../../system/proc.js';
import { onFirstFrames } from '../../relay/first-frames.js';
import type { Identity } from '../../system/users.js';
import { spawnChild } from '../../system/children.js';
import { settlesWithin, delay } from '../../time.js';
import { waitForStart } from '../start-race.js';
import { ControlChannel, packr } from './control-channel.js';
import { ForkMaster } from './master.js';
import { decodeHello, decodeRootMessage, failureText, type HelloMessage, type ReadyMessage, type RootMessage } from './protocol.js';

export const MASTER_SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../php/master.php');

export interface MasterOptions {
  command: PhpCommand;
  preload: string | null;
  /** children to keep forked and parked ahead of fork requests (master.php --spares) */
  spares: number;
  env: NodeJS.ProcessEnv;
  cwd: string;
  log: Logger;
  /** how long the master may take to preload and report ready */
  readyTimeoutMs: number;
  /** server.user/group: uid/gid of the master, inherited by every forked worker */
  identity?: Identity | null;
  /**
   * The pool's output server: each master it asks for, and each of their children, connect their stdout and stderr
   * to it, and a start that fails quotes what they wrote there; absent: they keep the root's pipes.
   */
  output?: StartOutput | null;
}

/** Where a pool's masters and workers write (WorkerOutputServer): held while each one starts. */
export interface StartOutput {
  readonly path: string;
  /** it is ready: what it wrote is logged, and the rest as it comes */
  started(pid: number): void;
  /** it left before it was ready: its last lines, for the start's error (not logged) */
  startFailed(pid: number): Promise<string[]>;
}

/** What a root or master reports once it is up (docs/protocol.md §6.3, §6.4). */
export type ReadyInfo = ReadyMessage;

/** What a generation master's control connection is handed to, and told of its exit (ForkMaster is one). */
export interface GenerationTarget {
  readonly alive: boolean;
  readonly awaitingConnection: boolean;
  attach(socket: net.Socket, decoder: FrameDecoder, early: Array<{ payload: Buffer }>): void;
  gone(exit: ExitInfo): void;
  rootGone(): void;
}

/** A root as a fork spawner uses it: this process's ForkRoot, or a shared one in another process (src/front/). */
export interface ForkRootHandle {
  readonly pid: number;
  readonly alive: boolean;
  /** a reset may fork its new master here (shared, revalidated opcache) instead of a fresh root */
  readonly warm: boolean;
  readonly info: ReadyInfo | null;
  /** masters of this root, of this spawner's, still running */
  readonly liveMasters: number;
  onExit: ((exit: ExitInfo) => void) | null;
  startMaster(): Promise<ForkMaster>;
  /** this spawner is done with it */
  stop(): Promise<void>;
  /** forced exit: SIGKILL it with its group, where this process owns it */
  killGroup(): void;
  /** the root's recent output for an error ('; its output: …'), or '' (a master writing to its pool's output has none here) */
  tail(): string;
}

/** What tells the pools sharing a root apart: each of their masters gets its own (the root has the first pool's). */
export const POOL_ENV_NAMES = ['RR_MODE', 'RR_RELAY'] as const;

/** The env a generation request carries: the pool's own RR_MODE and RR_RELAY. */
export function generationEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(POOL_ENV_NAMES.filter((name) => env[name] !== undefined).map((name) => [name, env[name]!]));
}

let controlSockets = 0;

/**
 * The root: `php master.php --root --control=<socket> …`, rrts' child. It forks the generation masters (each one
 * connects to the root's private control socket) and reports their exits.
 */
export class ForkRoot implements ForkRootHandle {
  private child: ChildProcess | null = null;
  private channel: ControlChannel<RootMessage> | null = null;
  private server: net.Server | null = null;
  private controlPath = '';
  /** the last 4 KiB of the root's output (and so of its masters' start-ups): since the last generation started */
  private stderrTail = '';
  private onReady: ((info: ReadyInfo) => void) | null = null;
  /** generation masters forked and not yet reported gone, by pid */
  private readonly masters = new Map<number, GenerationTarget>();
  /** control connections that said hello before the root's answer named their pid */
  private readonly early = new Map<number, { socket: net.Socket; decoder: FrameDecoder; frames: Array<{ payload: Buffer }>; timer: NodeJS.Timeout }>();
  exitInfo: ExitInfo | null = null;
  exited: Promise<ExitInfo> = Promise.resolve({ code: null, signal: null });
  info: ReadyInfo | null = null;
  /** set by the owner: called once when the root process is gone */
  onExit: ((exit: ExitInfo) => void) | null = null;

  constructor(
    private readonly opts: MasterOptions,
    private readonly runtimeDir: string,
  ) {}

  get pid(): number {
    return this.child?.pid ?? 0;
  }

  /** where its masters connect (in the runtime directory it was given) */
  get controlSocket(): string {
    return this.controlPath;
  }

  get alive(): boolean {
    return this.child !== null && this.exitInfo === null;
  }

  /** true when a reset may fork its new master here (shared, revalidated opcache) instead of a fresh root */
  get warm(): boolean {
    return this.alive && this.info?.warm === true;
  }

  /** Masters of this root still running. */
  get liveMasters(): number {
    return [...this.masters.values()].filter((m) => m.alive).length;
  }

  /** Open the control socket, start the root and wait for its ready message. */
  async start(): Promise<ReadyInfo> {
    const { command, preload, env, cwd, log } = this.opts;
    this.controlPath = path.join(this.runtimeDir, `control-${++controlSockets}.sock`);
    const server = net.createServer((socket) => this.onConnection(socket));
    this.server = server;
    await listenOn(server, { path: this.controlPath });
    fs.chmodSync(this.controlPath, 0o600);
    const id = this.opts.identity;
    if (id) fs.chownSync(this.controlPath, id.uid, id.gid);

    // opcache on for the CLI (the shared segment is the point), unless the user's own flags already say so last
    const last = command.flags.at(-2) === '-d' ? `-d${command.flags.at(-1)}` : command.flags.at(-1);
    const opcacheOn = last === '-dopcache.enable_cli=1';
    const args = [...command.flags, ...(opcacheOn ? [] : ['-d', 'opcache.enable_cli=1']), MASTER_SCRIPT, `--script=${command.script}`];
    if (preload) args.push(`--preload=${preload}`);
    if (this.opts.spares > 0) args.push(`--spares=${this.opts.spares}`);
    args.push('--root', `--control=${this.controlPath}`);
    if (command.args.length > 0) args.push('--', ...command.args);
    const child = spawnChild(command.php, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe', 'pipe'], ...(id ?? {}) });
    this.child = child;
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('error', (err) =>
        reject(new ForkMasterStartError(`cannot start the fork master '${command.php}': ${(err as NodeJS.ErrnoException).code ?? err.message}`)),
      );
      child.once('spawn', () => resolve(child.pid!));
    });
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    void this.exited.then((exit) => this.onProcessExit(exit));
    const keepTail = (chunk: Buffer): void => {
      this.stderrTail = (this.stderrTail + chunk.toString('utf8')).slice(-4096);
    };
    for (const stream of [child.stdout!, child.stderr!]) {
      stream.on('data', keepTail);
      logOutputLines(stream, log, pid);
    }
    this.channel = new ControlChannel(
      child.stdio[3] as Duplex,
      new FrameDecoder({ maxPayload: 1024 * 1024 }),
      () => `the fork root ${pid}`,
      decodeRootMessage,
      (msg) => this.onMessage(msg),
      (why) => {
        log.error({ pid }, `the fork root ${why}`);
        this.kill();
      },
      log,
    );

    const ready = new Promise<ReadyInfo>((resolve) => (this.onReady = resolve));
    try {
      this.info = await this.untilReady(ready, `the fork master ${pid}`);
    } catch (err) {
      this.killGroup(); // the root and a warm-up child stuck in the preload
      throw err;
    }
    return this.info;
  }

  /** A new generation master: forked by the root, connected to us, preloaded and ready. */
  async startMaster(): Promise<ForkMaster> {
    const master = await this.startGeneration((pid) => new ForkMaster(pid, this, this.opts), generationEnv(this.opts.env), this.opts.output?.path);
    await master.untilReady();
    return master;
  }

  /**
   * Ask the root for a generation master; `make` builds what its control connection and its exit go to: a
   * ForkMaster here, or a front process's stand-in when the root is shared between processes (src/front/).
   */
  async startGeneration<T extends GenerationTarget>(make: (pid: number) => T, env?: Record<string, string>, output?: string): Promise<T> {
    this.stderrTail = ''; // an error of this master quotes its own output, not the warm-up's (the same preload)
    const reply = await this.channel!.request({ op: 'generation', ...(env ? { env } : {}), ...(output ? { output } : {}) });
    if (reply.op !== 'generation') {
      throw new ForkMasterRefusedError(`the fork root ${this.pid} did not start a master: ${failureText(reply)}`);
    }
    const target = make(reply.pid);
    this.masters.set(reply.pid, target);
    const early = this.early.get(reply.pid);
    if (early) {
      this.early.delete(reply.pid);
      clearTimeout(early.timer);
      target.attach(early.socket, early.decoder, early.frames);
    }
    return target;
  }

  /** Close the channel: the root waits for its masters to quit (their own channels closed first), then exits. */
  async stop(timeoutMs = 5_000): Promise<void> {
    if (!this.child) return;
    this.channel?.close();
    this.closeServer();
    if (this.exitInfo) return;
    if (!(await settlesWithin(this.exited, timeoutMs))) {
      this.kill();
      await this.exited;
    }
  }

  kill(): void {
    if (this.child && this.exitInfo === null) {
      try {
        this.child.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }
  }

  /** Wait for the root's ready message, failing on a timeout or an early exit. */
  private async untilReady(ready: Promise<ReadyInfo>, what: string): Promise<ReadyInfo> {
    return waitForStart(ready, {
      exited: this.exited,
      timeoutMs: this.opts.readyTimeoutMs,
      exitError: async (exit) => {
        await delay(20); // let the last output arrive
        return new ForkMasterStartError(`${what} exited before it was ready (${describeExit(exit)})${this.tail()}`);
      },
      timeoutError: () => new ForkMasterStartError(`${what} did not report ready within ${this.opts.readyTimeoutMs} ms${this.tail()}`),
    });
  }

  tail(): string {
    const t = this.stderrTail.trim();
    return t ? `; its output: ${t}` : '';
  }

  /** A generation master connects: its first frame says hello with its pid, which its peer credentials confirm. */
  private onConnection(socket: net.Socket): void {
    const decoder = new FrameDecoder({ maxPayload: 1024 * 1024 });
    const drop = (why: string): void => {
      this.opts.log.warn(`fork control connection dropped: ${why}`);
      socket.destroy();
    };
    onFirstFrames(
      socket,
      decoder,
      this.opts.readyTimeoutMs,
      'no hello in time',
      (frames) => {
        socket.pause(); // until a master takes it: nothing it sends next may be lost
        let raw: unknown;
        try {
          raw = packr.unpack(frames[0]!.payload);
        } catch {
          drop('unreadable hello');
          return;
        }
        let hello: HelloMessage;
        try {
          hello = decodeHello(raw);
        } catch (err) {
          drop((err as Error).message);
          return;
        }
        const pid = hello.pid;
        // a master whose preload failed may be reaped before its hello is read: /proc cannot name its parent then, and
        // it is held like any early one until the root names that pid (its exit, which the pool then quotes)
        const parent = procStat(pid)?.ppid;
        if (!peerPidIs(socket, pid) || (parent !== undefined && parent !== this.pid)) {
          drop(`pid ${pid} is not a fork master this root started`);
          return;
        }
        const master = this.masters.get(pid);
        if (master) {
          if (master.awaitingConnection) master.attach(socket, decoder, frames.slice(1));
          else drop(`the fork master ${pid} is already connected`);
          return;
        }
        // the root's answer naming this pid is still on its way: hold the connection until it comes
        const early = {
          socket,
          decoder,
          frames: frames.slice(1),
          timer: setTimeout(() => this.early.delete(pid) && drop(`pid ${pid} was never announced by the root`), this.opts.readyTimeoutMs),
        };
        this.early.set(pid, early);
      },
      drop,
    );
    socket.on('error', () => socket.destroy());
  }

  private onMessage(msg: RootMessage): void {
    if (msg.op === 'ready') {
      this.onReady?.(msg);
      this.onReady = null;
    } else if (msg.op === 'exited') {
      const master = this.masters.get(msg.pid);
      this.masters.delete(msg.pid);
      master?.gone({ code: msg.code, signal: msg.signal === null ? null : signalName(msg.signal) });
    } else if (msg.op === 'error') {
      this.opts.log.error({ pid: this.pid }, `fork root: ${msg.error}`);
    }
  }

  private onProcessExit(exit: ExitInfo): void {
    this.exitInfo = exit;
    this.channel?.fail(new ForkMasterGoneError(`the fork root ${this.pid} exited (${describeExit(exit)})`));
    this.closeServer();
    // its masters live on (re-parented to rrts, the subreaper); without the root their exits come from the channel
    for (const master of this.masters.values()) master.rootGone();
    this.onExit?.(exit);
  }

  private closeServer(): void {
    for (const early of this.early.values()) {
      clearTimeout(early.timer);
      early.socket.destroy();
    }
    this.early.clear();
    this.server?.close();
    this.server = null;
    if (this.controlPath) fs.rmSync(this.controlPath, { force: true });
  }

  /** SIGKILL the root and its process group: the masters it forked, their workers and spares (none change group). */
  killGroup(): void {
    if (this.child?.pid && this.exitInfo === null) {
      try {
        process.kill(-this.child.pid, 'SIGKILL');
      } catch {
        this.kill();
      }
    }
  }
}
