// Orphan reaping: rrts marks itself a child subreaper (and may run as PID 1 in a container), so every process a PHP
// app leaves behind (`shell_exec('sleep 1 &')`, a dead fork master's workers) is re-parented to rrts. This reaps the
// ones nobody else owns, by pid (never waitpid(-1): libuv and the fork reaper collect their own children).
import fs from 'node:fs';
import posixNode from 'posix-node';
import type { Logger } from 'pino';
import { loadNative, nativeUnavailableReason } from '../native/index.js';
import { isKnownChild } from './children.js';
import { procStat } from './proc.js';

const posix = posixNode.default;
const WNOHANG = posix.constants?.WNOHANG ?? 1;
const SWEEP_MS = 5_000;

/** Our direct children: /proc/self/task/<tid>/children when the kernel has it, else a scan of /proc. */
function directChildren(): number[] {
  try {
    const out: number[] = [];
    for (const tid of fs.readdirSync('/proc/self/task')) {
      const text = fs.readFileSync(`/proc/self/task/${tid}/children`, 'utf8').trim();
      if (text) for (const pid of text.split(' ')) out.push(Number(pid));
    }
    return out;
  } catch {
    const out: number[] = [];
    for (const entry of fs.readdirSync('/proc')) {
      if (/^\d+$/.test(entry) && procStat(Number(entry))?.ppid === process.pid) out.push(Number(entry));
    }
    return out;
  }
}

export class OrphanReaper {
  private timer: NodeJS.Timeout | null = null;
  private scheduled = false;
  private readonly onSigchld = (): void => this.schedule();
  /** orphans reaped so far (for logs and tests) */
  reaped = 0;

  constructor(private readonly log: Logger) {}

  /** Become a child subreaper and start reaping on SIGCHLD and every 5 s. Linux only; elsewhere a no-op. */
  start(): void {
    if (process.platform !== 'linux') return;
    const native = loadNative();
    if (native) {
      try {
        native.setChildSubreaper();
      } catch (err) {
        this.log.warn(`cannot become a child subreaper: ${(err as Error).message}`);
      }
    } else if (process.pid !== 1) {
      this.log.warn(`processes the workers leave behind go to init, not to rrts: ${nativeUnavailableReason()}`);
    }
    process.on('SIGCHLD', this.onSigchld);
    this.timer = setInterval(() => this.sweep(), SWEEP_MS);
    this.timer.unref();
  }

  stop(): void {
    process.off('SIGCHLD', this.onSigchld);
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Coalesce a burst of SIGCHLDs into one sweep, after libuv has handled its own children. */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.sweep();
    });
  }

  /** waitpid(pid, WNOHANG) every zombie child of ours that no one else owns. */
  sweep(): void {
    for (const pid of directChildren()) {
      if (isKnownChild(pid)) continue;
      const s = procStat(pid);
      if (!s || s.state !== 'Z' || s.ppid !== process.pid) continue;
      try {
        const r = posix.waitpid?.(pid, WNOHANG);
        if (r && r.ret === pid) {
          this.reaped++;
          this.log.debug({ pid }, `reaped orphan ${pid}`);
        }
      } catch {
        /* ECHILD: collected meanwhile */
      }
    }
  }
}
