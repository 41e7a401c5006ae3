// Watches forked workers: a pidfd per child (readable = the child exited) where the kernel has them, else a
// /proc poll. When a child is gone it is reaped by whoever is its parent now: the master that forked it (asked
// over the control channel), or rrts itself when the master died and the child was re-parented to us.
import posixNode from 'posix-node';
import type { Logger } from 'pino';
import { loadNative, nativeUnavailableReason, type NativeAddon } from '../../native/index.js';
import { signalName, type ExitInfo, type WorkerProcess } from '../../worker/process.js';
import type { ForkMaster } from './master.js';
import os from 'node:os';
import { registerChild, unregisterChild } from '../../system/children.js';
import { procStat } from '../../system/proc.js';
import { delay } from '../../time.js';

const PROC_POLL_MS = 100;
// posix-node is CommonJS with `exports.default`; its functions are optional in its types.
const posix = posixNode.default;
const WNOHANG = posix.constants?.WNOHANG ?? 1;

export class Reaper {
  readonly native: NativeAddon | null;
  private warned = false;
  /** forked workers watched and not yet collected */
  private readonly live = new Set<ForkedProcess>();

  constructor(private readonly log: Logger) {
    this.native = loadNative();
  }

  /** Make rrts the parent of orphaned workers when their master dies, so we can reap them. */
  becomeSubreaper(): boolean {
    if (!this.native) return false;
    try {
      this.native.setChildSubreaper();
      return true;
    } catch (err) {
      this.log.warn(`cannot become a child subreaper: ${(err as Error).message}`);
      return false;
    }
  }

  /** A WorkerProcess for a forked child whose exit is watched from now on. */
  watch(pid: number, master: ForkMaster): ForkedProcess {
    registerChild(pid); // if its master dies it is ours to reap, not the orphan reaper's
    const fd = this.openPidfd(pid);
    const proc = new ForkedProcess(pid, master, fd, this.native, this.log);
    this.live.add(proc);
    void proc.exited.then(() => this.live.delete(proc));
    return proc;
  }

  /** Forced exit: SIGKILL every watched worker now (through its pidfd where there is one: no pid reuse). */
  killAll(): void {
    for (const proc of this.live) proc.signal('SIGKILL');
  }

  private openPidfd(pid: number): number | null {
    if (this.native) {
      try {
        return this.native.pidfdOpen(pid);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ESRCH') return null; // already gone: the poll finds it
        this.warnOnce(`pidfd_open failed (${(err as Error).message})`);
        return null;
      }
    }
    this.warnOnce(nativeUnavailableReason() ?? 'the native addon is not loaded');
    return null;
  }

  private warnOnce(reason: string): void {
    if (this.warned) return;
    this.warned = true;
    this.log.warn(`fork mode watches workers by polling /proc instead of pidfd: ${reason}`);
  }
}

export class ForkedProcess implements WorkerProcess {
  readonly exited: Promise<ExitInfo>;
  private resolveExit!: (exit: ExitInfo) => void;
  private gone = false;
  private watcher: { close(): void } | null = null;
  private poll: NodeJS.Timeout | null = null;

  constructor(
    readonly pid: number,
    private readonly master: ForkMaster,
    private pidfd: number | null,
    private readonly native: NativeAddon | null,
    private readonly log: Logger,
  ) {
    this.exited = new Promise((resolve) => (this.resolveExit = resolve));
    if (pidfd !== null && native) {
      this.watcher = native.watchPidfd(pidfd, () => void this.onExit());
    } else {
      this.poll = setInterval(() => {
        const stat = procStat(pid);
        if (stat === null || stat.state === 'Z' || stat.state === 'X') void this.onExit();
      }, PROC_POLL_MS);
    }
  }

  signal(sig: NodeJS.Signals): boolean {
    if (this.gone) return false;
    try {
      if (this.pidfd !== null && this.native) this.native.pidfdSendSignal(this.pidfd, os.constants.signals[sig]);
      else process.kill(this.pid, sig);
      return true;
    } catch {
      return false;
    }
  }

  private async onExit(): Promise<void> {
    if (this.gone) return;
    this.gone = true;
    this.watcher?.close();
    if (this.poll) clearInterval(this.poll);
    if (this.pidfd !== null && this.native) this.native.closeFd(this.pidfd);
    this.pidfd = null;
    const exit = await this.reap();
    unregisterChild(this.pid);
    this.resolveExit(exit);
  }

  /** Reap by the current parent: the master if it still has the child, else rrts (re-parented orphan). */
  private async reap(): Promise<ExitInfo> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const stat = procStat(this.pid);
      if (stat === null) return { code: null, signal: null }; // reaped elsewhere
      if (stat.ppid === process.pid) {
        let r: { ret: number; wstatus: number } | undefined;
        try {
          r = posix.waitpid?.(this.pid, WNOHANG);
        } catch {
          r = undefined; // ECHILD: not (yet) ours
        }
        if (r && r.ret === this.pid) return decodeStatus(r.wstatus);
      } else if (this.master.alive && stat.ppid === this.master.pid) {
        try {
          const r = await this.master.reap(this.pid);
          if (r.done) return { code: r.code, signal: r.signal === null ? null : signalName(r.signal) };
        } catch {
          /* the master died meanwhile: the child comes to us */
        }
      }
      await delay(20);
    }
    this.log.warn({ pid: this.pid }, `could not reap forked worker ${this.pid}`);
    return { code: null, signal: null };
  }
}

/** Decode a waitpid status word. */
function decodeStatus(status: number): ExitInfo {
  const sig = status & 0x7f;
  if (sig === 0) return { code: (status >> 8) & 0xff, signal: null };
  return { code: null, signal: signalName(sig) };
}
