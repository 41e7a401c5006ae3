// The PHP fork master (php/master.php): started once per pool generation, it preloads the app and forks workers on
// request. We talk to it over fd 3 with goridge frames carrying msgpack maps (the protocol is in master.php's header).
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Readable, Writable } from 'node:stream';
import type { Logger } from 'pino';
import { Packr } from 'msgpackr';
import { encodeFrame, FrameDecoder } from '../../goridge/frame.js';
import { Flag } from '../../goridge/flags.js';
import { WorkerError } from '../../errors.js';
import { logWorkerOutput } from '../../log/index.js';
import type { PhpCommand } from '../../config/php-command.js';
import { describeExit, type ExitInfo } from '../../worker/process.js';
import { trackChildProcess } from '../../system/children.js';
import type { Identity } from '../../system/users.js';

export const MASTER_SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../php/master.php');

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

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
}

export interface ReadyInfo {
  pid: number;
  php: string;
  opcache: boolean;
  preload: string | null;
  resources: number;
}

export interface ReapResult {
  done: boolean;
  code: number | null;
  signal: number | null;
  error: string | null;
}

type Message = Record<string, unknown> & { op: string };

interface Pending {
  resolve(msg: Message): void;
  reject(err: Error): void;
}

const REQUEST_TIMEOUT_MS = 10_000;

export class ForkMaster {
  private child: ChildProcess | null = null;
  private control: (Readable & Writable) | null = null;
  private readonly decoder = new FrameDecoder({ maxPayload: 1024 * 1024 });
  private readonly pending = new Map<string, Pending>();
  private nextId = 1;
  private stderrTail = '';
  private onReady: ((info: ReadyInfo) => void) | null = null;
  exitInfo: ExitInfo | null = null;
  exited: Promise<ExitInfo> = Promise.resolve({ code: null, signal: null });
  /** pids forked by this master and not yet reaped */
  readonly children = new Set<number>();
  info: ReadyInfo | null = null;
  /** set by the owner: called once when the master process is gone */
  onExit: ((exit: ExitInfo) => void) | null = null;

  constructor(private readonly opts: MasterOptions) {}

  get pid(): number {
    return this.child?.pid ?? 0;
  }

  get alive(): boolean {
    return this.child !== null && this.exitInfo === null;
  }

  /** Start php/master.php and wait for its ready message. */
  async start(): Promise<ReadyInfo> {
    const { command, preload, env, cwd, log } = this.opts;
    const args = [...command.flags, '-d', 'opcache.enable_cli=1', MASTER_SCRIPT, `--script=${command.script}`];
    if (preload) args.push(`--preload=${preload}`);
    if (this.opts.spares > 0) args.push(`--spares=${this.opts.spares}`);
    if (command.args.length > 0) args.push('--', ...command.args);
    const child = spawn(command.php, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe', 'pipe'], ...(this.opts.identity ?? {}) });
    this.child = child;
    trackChildProcess(child);
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('error', (err) => reject(new WorkerError(`cannot start the fork master '${command.php}': ${(err as NodeJS.ErrnoException).code ?? err.message}`, 'ERR_MASTER_BOOT')));
      child.once('spawn', () => resolve(child.pid!));
    });
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    void this.exited.then((exit) => this.onProcessExit(exit));
    const onOutput = (chunk: Buffer): void => {
      this.stderrTail = (this.stderrTail + chunk.toString('utf8')).slice(-4096);
      logWorkerOutput(log, pid, chunk);
    };
    child.stdout!.on('data', onOutput);
    child.stderr!.on('data', onOutput);
    const control = child.stdio[3] as Readable & Writable;
    this.control = control;
    control.on('data', (chunk: Buffer) => this.onControlData(chunk));
    control.on('error', () => undefined);

    const ready = new Promise<ReadyInfo>((resolve) => (this.onReady = resolve));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new WorkerError(`the fork master ${pid} did not report ready within ${this.opts.readyTimeoutMs} ms${this.tail()}`, 'ERR_MASTER_BOOT')), this.opts.readyTimeoutMs);
    });
    const died = this.exited.then(async (exit): Promise<never> => {
      await new Promise((r) => setTimeout(r, 20));
      throw new WorkerError(`the fork master ${pid} exited before it was ready (${describeExit(exit)})${this.tail()}`, 'ERR_MASTER_BOOT');
    });
    try {
      this.info = await Promise.race([ready, timeout, died]);
    } catch (err) {
      this.kill();
      throw err;
    } finally {
      clearTimeout(timer);
    }
    return this.info;
  }

  /** Ask for a worker; resolves with the child's pid. */
  async fork(env: Record<string, string>): Promise<number> {
    const reply = await this.request({ op: 'fork', env });
    if (reply.op !== 'forked' || typeof reply.pid !== 'number') throw new WorkerError(`the fork master ${this.pid} could not fork: ${String(reply.error ?? reply.op)}`, 'ERR_FORK');
    this.children.add(reply.pid);
    return reply.pid;
  }

  /** Ask the master to waitpid(pid, WNOHANG) a child of its own. */
  async reap(pid: number): Promise<ReapResult> {
    const reply = await this.request({ op: 'reap', pid }, `reap:${pid}`);
    const done = reply.done === true;
    if (done) this.children.delete(pid);
    return {
      done,
      code: typeof reply.code === 'number' ? reply.code : null,
      signal: typeof reply.signal === 'number' ? reply.signal : null,
      error: typeof reply.error === 'string' ? reply.error : null,
    };
  }

  /** Close the control channel: the master kills the children it still has and exits. SIGKILL if it lingers. */
  async stop(timeoutMs = 5_000): Promise<void> {
    if (!this.child) return;
    this.control?.end();
    this.control?.destroy();
    if (this.exitInfo) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.exited, new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
    if (!this.exitInfo) {
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

  private request(msg: Message, key?: string): Promise<Message> {
    if (!this.alive || !this.control || this.control.destroyed) {
      return Promise.reject(new WorkerError(`the fork master ${this.pid} is not running`, 'ERR_MASTER_GONE'));
    }
    const id = this.nextId++;
    const pendingKey = key ?? `id:${id}`;
    return new Promise<Message>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(pendingKey);
        reject(new WorkerError(`the fork master ${this.pid} did not answer '${msg.op}' in time`, 'ERR_MASTER_TIMEOUT'));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(pendingKey, {
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.control!.write(encodeFrame({ flags: Flag.CODEC_MSGPACK, payload: packr.pack({ ...msg, id }) as Buffer }));
    });
  }

  private onControlData(chunk: Buffer): void {
    let frames;
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      this.opts.log.error({ pid: this.pid }, `the fork master broke the control protocol: ${(err as Error).message}`);
      this.kill();
      return;
    }
    for (const frame of frames) {
      let msg: Message;
      try {
        msg = packr.unpack(frame.payload) as Message;
      } catch (err) {
        this.opts.log.error({ pid: this.pid }, `unreadable message from the fork master: ${(err as Error).message}`);
        continue;
      }
      this.dispatch(msg);
    }
  }

  private dispatch(msg: Message): void {
    if (msg.op === 'ready') {
      this.onReady?.(msg as unknown as ReadyInfo);
      this.onReady = null;
      return;
    }
    const key = msg.op === 'reaped' ? `reap:${String(msg.pid)}` : `id:${String(msg.id)}`;
    const pending = this.pending.get(key);
    if (!pending) {
      if (msg.op === 'error') this.opts.log.error({ pid: this.pid }, `fork master: ${String(msg.error)}`);
      return;
    }
    this.pending.delete(key);
    pending.resolve(msg);
  }

  private onProcessExit(exit: ExitInfo): void {
    this.exitInfo = exit;
    for (const p of this.pending.values()) p.reject(new WorkerError(`the fork master ${this.pid} exited (${describeExit(exit)})`, 'ERR_MASTER_GONE'));
    this.pending.clear();
    this.onExit?.(exit);
  }

  private tail(): string {
    const t = this.stderrTail.trim();
    return t ? `; its output: ${t}` : '';
  }
}
