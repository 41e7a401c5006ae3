// The supervisor: every watch_tick it checks each worker's age (ttl), idle time (idle_ttl) and memory
// (max_worker_memory) and retires the ones past a limit: idle ones at once, busy ones after their job (soft limits).
// exec_ttl, the hard limit, is a per-job deadline in the pool (one timer for all of them).
import pidusage from 'pidusage';
import type { Logger } from 'pino';
import type { SupervisorConfig } from '../config/types.js';
import { WorkerState } from '../worker/state.js';
import type { Worker } from '../worker/worker.js';
import type { WorkerPool } from './pool.js';
import { settlesWithin } from '../time.js';
import { readRssBytes } from '../system/proc.js';

/** Reads a worker's memory in bytes. Exec mode: RSS. Fork mode passes its own (USS) reader. */
export type MemoryReader = (pids: number[]) => Promise<Map<number, number>>;

export const rssReader: MemoryReader = async (pids) => {
  const out = new Map<number, number>();
  if (pids.length === 0) return out;
  // pidusage would start `getconf` here, a child outside spawnChild that the orphan reaper could collect first
  if (process.platform === 'linux') {
    const sizes = await Promise.all(pids.map((pid) => readRssBytes(pid)));
    pids.forEach((pid, i) => {
      const bytes = sizes[i];
      if (bytes !== null && bytes !== undefined) out.set(pid, bytes);
    });
    return out;
  }
  const stats = await pidusage(pids).catch(() => ({}));
  for (const pid of pids) {
    const s = (stats as Record<string, { memory: number } | undefined>)[String(pid)];
    if (s) out.set(pid, s.memory);
  }
  return out;
};

export class Supervisor {
  private timer: NodeJS.Timeout | null = null;
  private ticking = false;

  constructor(
    private readonly pool: WorkerPool,
    private readonly config: SupervisorConfig,
    private readonly log: Logger,
    private readonly readMemory: MemoryReader = rssReader,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), Math.max(10, this.config.watchTick));
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      const workers = this.pool.list().filter((w) => w.state === WorkerState.Ready || w.state === WorkerState.Working);
      const memory = this.config.maxWorkerMemory > 0 ? await this.readMemoryInTime(workers.map((w) => w.pid)) : null;
      const now = Date.now();
      for (const w of workers) {
        const verdict = this.check(w, now, memory?.get(w.pid));
        if (!verdict) continue;
        this.log.info({ pid: w.pid, reason: verdict.why }, `worker ${w.pid} will be replaced: ${verdict.why}`);
        this.pool.markForRetirement(w, verdict.state);
      }
    } finally {
      this.ticking = false;
    }
  }

  /**
   * The memory reader, bounded: a read that never answers (it happened when a child process the reader started was
   * taken by the orphan reaper) must not stop every later check (ttl, idle_ttl). Null when it took too long.
   */
  private async readMemoryInTime(pids: number[]): Promise<Map<number, number> | null> {
    const limitMs = Math.max(1_000, this.config.watchTick * 5);
    const read = this.readMemory(pids);
    if (await settlesWithin(read, limitMs)) return read;
    this.log.warn(`reading the workers' memory took over ${limitMs} ms: max_worker_memory was not checked this time`);
    return null;
  }

  private check(w: Worker, now: number, memory: number | undefined): { state: WorkerState; why: string } | null {
    const { ttl, idleTtl, maxWorkerMemory } = this.config;
    if (ttl > 0 && now - w.created >= ttl) return { state: WorkerState.TTLReached, why: 'ttl reached' };
    if (maxWorkerMemory > 0 && memory !== undefined && memory >= maxWorkerMemory) {
      return { state: WorkerState.MaxMemoryReached, why: `memory ${Math.round(memory / 1048576)} MiB is over max_worker_memory` };
    }
    if (idleTtl > 0 && w.state === WorkerState.Ready && w.numExecs > 0 && now - w.lastUsed >= idleTtl) {
      return { state: WorkerState.IdleTTLReached, why: 'idle_ttl reached' };
    }
    return null;
  }
}
