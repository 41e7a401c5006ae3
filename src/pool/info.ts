// What the informer reports about a pool's workers: RoadRunner's State shape (docs/compatibility.md §4.2, docs/protocol.md §5.4),
// plus each worker's own memory (USS, PSS) for fork pools, where RSS counts the shared opcache in every worker.
import fs from 'node:fs';
import type { WorkerPool } from './pool.js';
import { readMemory } from './memory.js';
import { procStat } from '../system/proc.js';

/** Linux reports process times in clock ticks of 1/100 s on every architecture Node supports. */
const CLOCK_TICKS = 100;

/** CPU % over the process's whole life (CPU time / wall time since start), as rr's gopsutil figure. */
export function lifetimeCpuPercent(pid: number): number {
  const stat = procStat(pid);
  if (!stat) return 0;
  try {
    const cpuSeconds = (stat.utime + stat.stime) / CLOCK_TICKS;
    const startedAt = stat.startTime / CLOCK_TICKS; // seconds after boot
    const uptime = Number(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
    const alive = uptime - startedAt;
    return alive > 0 ? Math.round((cpuSeconds / alive) * 10000) / 100 : 0;
  } catch {
    return 0;
  }
}

export interface WorkerInfo {
  pid: number;
  /** RoadRunner's state number and name */
  status: number;
  statusStr: string;
  numExecs: number;
  /** creation time, Unix nanoseconds */
  created: number;
  /** RSS bytes */
  memoryUsage: number;
  CPUPercent: number;
  command: string;
  /** rrts additions: the worker's own memory, bytes (0 when unknown) */
  uss: number;
  pss: number;
}

/** The pool's live workers, sorted by pid. */
export async function describeWorkers(pool: Pick<WorkerPool, 'list'>): Promise<WorkerInfo[]> {
  const workers = pool.list();
  const pids = workers.map((w) => w.pid);
  const memory = await Promise.all(pids.map((pid) => readMemory(pid)));
  return workers
    .map((w, i) => {
      const m = memory[i];
      return {
        pid: w.pid,
        status: w.state,
        statusStr: w.statusName,
        numExecs: w.numExecs,
        created: w.created * 1e6,
        memoryUsage: m?.rss ?? 0,
        CPUPercent: lifetimeCpuPercent(w.pid),
        command: '',
        uss: m?.uss ?? 0,
        pss: m?.pss ?? 0,
      };
    })
    .sort((a, b) => a.pid - b.pid);
}
