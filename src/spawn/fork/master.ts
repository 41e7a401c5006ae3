// A generation master (php/master.php, forked by the root): it preloads the app and forks the workers on request,
// over its connection to our private control socket (control-channel.ts; the messages are in protocol.ts and
// docs/protocol.md §6).
import type net from 'node:net';
import { ForkFailedError, ForkMasterGoneError, ForkMasterStartError } from '../../errors.js';
import type { FrameDecoder } from '../../goridge/frame.js';
import { describeExit, type ExitInfo } from '../../worker/process.js';
import { delay, settlesWithin } from '../../time.js';
import { waitForStart } from '../start-race.js';
import { ControlChannel } from './control-channel.js';
import { decodeMasterMessage, failureText, type MasterMessage, type MasterRequest } from './protocol.js';
import type { ForkRootHandle, GenerationTarget, MasterOptions, ReadyInfo } from './root.js';

/** A fork request waiting for a child. */
interface PendingFork {
  resolve(pid: number): void;
  reject(err: Error): void;
}

export interface ReapResult {
  done: boolean;
  code: number | null;
  signal: number | null;
  error: string | null;
}

/** A generation master: forked by the root, it preloads the app and forks the workers. */
export class ForkMaster implements GenerationTarget {
  private channel: ControlChannel<MasterMessage> | null = null;
  private onReady: ((info: ReadyInfo) => void) | null = null;
  private readonly ready: Promise<ReadyInfo>;
  private resolveExit!: (exit: ExitInfo) => void;
  exitInfo: ExitInfo | null = null;
  readonly exited: Promise<ExitInfo>;
  /** pids forked by this master and not yet reaped */
  readonly children = new Set<number>();
  /** fork requests not yet given a child, oldest first */
  private readonly unmatched: PendingFork[] = [];
  /** children given to a fork request when they connected, before the master's answer named them */
  private readonly early = new Set<number>();
  info: ReadyInfo | null = null;
  /** set by the owner: called once when the master process is gone */
  onExit: ((exit: ExitInfo) => void) | null = null;

  constructor(
    readonly pid: number,
    readonly root: ForkRootHandle,
    private readonly opts: MasterOptions,
  ) {
    this.ready = new Promise<ReadyInfo>((resolve) => (this.onReady = resolve));
    this.exited = new Promise<ExitInfo>((resolve) => (this.resolveExit = resolve));
  }

  get alive(): boolean {
    return this.exitInfo === null;
  }

  get awaitingConnection(): boolean {
    return this.channel === null && this.alive;
  }

  /**
   * Resolves once the master has preloaded the app; kills it if it does not in time. An early exit's error quotes
   * what it wrote (to its pool's output server, or else the root's pipes).
   */
  async untilReady(): Promise<ReadyInfo> {
    const what = `the fork master ${this.pid}`;
    const output = this.opts.output;
    const timeoutMs = this.opts.readyTimeoutMs;
    try {
      this.info = await waitForStart(this.ready, {
        exited: this.exited,
        timeoutMs,
        exitError: async (exit) => {
          const lines = output ? await output.startFailed(this.pid) : [];
          if (!output) await delay(20); // the root's pipes: let the last output arrive
          const quoted = lines.length > 0 ? `; its output: ${lines.join('\n').slice(-4096)}` : this.root.tail();
          return new ForkMasterStartError(`${what} exited before it was ready (${describeExit(exit)})${quoted}`);
        },
        timeoutError: () => new ForkMasterStartError(`${what} did not report ready within ${timeoutMs} ms${this.root.tail()}`),
      });
    } catch (err) {
      this.kill();
      throw err;
    } finally {
      output?.started(this.pid); // from now on its lines are logged as they come (what an error quoted is not)
    }
    return this.info;
  }

  /** Its control connection arrived (checked by the root): from now on requests go there. */
  attach(socket: net.Socket, decoder: FrameDecoder, early: Array<{ payload: Buffer }>): void {
    this.channel = new ControlChannel(
      socket,
      decoder,
      () => `the fork master ${this.pid}`,
      decodeMasterMessage,
      (msg) => this.onMessage(msg),
      (why) => {
        this.opts.log.error({ pid: this.pid }, `the fork master ${why}`);
        this.kill();
      },
      this.opts.log,
    );
    socket.once('close', () => this.onChannelClosed());
    this.channel.deliver(early);
    socket.resume();
  }

  /**
   * Ask for a worker; resolves with the pid of a child of this master: the one the answer names, or one that
   * connected before the answers came (childConnected). The master answers a burst of fork requests together after
   * its last fork (docs/protocol.md §6.5), so without this the first children of a burst wait, connected, for the
   * last fork. The requests of one master are alike (the pool's env), so any of its new children serves any of them.
   */
  fork(env: Record<string, string>): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      const request: PendingFork = { resolve, reject };
      this.unmatched.push(request);
      this.request({ op: 'fork', env }).then(
        (reply) => {
          if (reply.op !== 'forked') {
            this.forkFailed(request, new ForkFailedError(`the fork master ${this.pid} could not fork: ${failureText(reply)}`));
            return;
          }
          this.children.add(reply.pid);
          if (!this.early.delete(reply.pid)) this.unmatched.shift()?.resolve(reply.pid);
        },
        (err: Error) => this.forkFailed(request, err),
      );
    });
  }

  /**
   * A child of this master (its parent per /proc, its peer credentials checked) connected before the master named
   * it: the oldest fork request still waiting takes it. False when no request waits or the child is known already.
   */
  childConnected(pid: number): boolean {
    if (this.children.has(pid) || this.unmatched.length === 0) return false;
    this.early.add(pid);
    this.children.add(pid);
    this.unmatched.shift()!.resolve(pid);
    return true;
  }

  /** A fork failed, so one child fewer comes: its request fails, or (given an early child) the newest still waiting. */
  private forkFailed(request: PendingFork, err: Error): void {
    const at = this.unmatched.indexOf(request);
    const failing = at >= 0 ? this.unmatched.splice(at, 1)[0] : this.unmatched.pop();
    failing?.reject(err);
  }

  /** Ask the master to waitpid(pid, WNOHANG) a child of its own. */
  async reap(pid: number): Promise<ReapResult> {
    const reply = await this.request({ op: 'reap', pid }, `reap:${pid}`);
    if (reply.op !== 'reaped') return { done: false, code: null, signal: null, error: failureText(reply) };
    if (reply.done) this.children.delete(pid);
    return { done: reply.done, code: reply.code, signal: reply.signal, error: reply.error };
  }

  /** Keep `count` children parked from now on (a pool's own count: the root's --spares applies until then). */
  async setSpares(count: number): Promise<void> {
    const reply = await this.request({ op: 'spares', count });
    if (reply.op !== 'spares') throw new ForkFailedError(`the fork master ${this.pid} refused ${count} spares: ${failureText(reply)}`);
  }

  /** Close the control channel: the master kills the children it still has and exits. SIGKILL if it lingers. */
  async stop(timeoutMs = 5_000): Promise<void> {
    this.channel?.close();
    if (this.exitInfo) return;
    if (!(await settlesWithin(this.exited, timeoutMs))) {
      this.kill();
      // its parent (the root) reports the exit; if it does not, stop waiting
      if (!(await settlesWithin(this.exited, 1_000))) this.gone({ code: null, signal: 'SIGKILL' });
    }
  }

  /** SIGKILL. Safe from pid reuse: until its parent (the root, or rrts) reaps it, the pid stays this process's. */
  kill(): void {
    if (this.exitInfo === null) {
      try {
        process.kill(this.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }

  /** The root reaped it (or it is gone otherwise): settle once. */
  gone(exit: ExitInfo): void {
    if (this.exitInfo) return;
    this.exitInfo = exit;
    this.early.clear();
    this.channel?.fail(new ForkMasterGoneError(`the fork master ${this.pid} exited (${describeExit(exit)})`));
    this.channel?.close();
    this.resolveExit(exit);
    this.onExit?.(exit);
  }

  /** The root died: a channel already closed means this master is gone too; later, the channel's close tells. */
  rootGone(): void {
    if (this.channel === null) this.gone({ code: null, signal: null });
  }

  private request(msg: MasterRequest, key?: string): Promise<MasterMessage> {
    if (!this.alive || !this.channel) return Promise.reject(new ForkMasterGoneError(`the fork master ${this.pid} is not running`));
    return this.channel.request(msg, key);
  }

  private onMessage(msg: MasterMessage): void {
    if (msg.op === 'ready') {
      this.onReady?.(msg);
      this.onReady = null;
    } else if (msg.op === 'error') {
      this.opts.log.error({ pid: this.pid }, `fork master: ${msg.error}`);
    }
  }

  /**
   * The master closed its end: it exited (or is exiting). The root reports how; if the root is gone (the master
   * was re-parented to rrts, whose orphan reaper collects it), we settle without the status.
   */
  private onChannelClosed(): void {
    if (this.exitInfo) return;
    this.channel?.fail(new ForkMasterGoneError(`the fork master ${this.pid} closed its control channel`));
    if (!this.root.alive) {
      this.gone({ code: null, signal: null });
      return;
    }
    const timer = setTimeout(() => this.gone({ code: null, signal: null }), 2_000);
    timer.unref();
  }
}
