// What the informer reports about a pool's workers: RoadRunner's State shape (compat.md §4.2, protocol.md §5.4),
// plus each worker's own memory (USS, PSS) for fork pools, where RSS counts the shared opcache in every worker.
import pidusage from 'pidusage';
import type { WorkerPool } from './pool.js';
import { readMemory } from './memory.js';

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
export async function describeWorkers(pool: WorkerPool): Promise<WorkerInfo[]> {
  const workers = pool.list();
  const pids = workers.map((w) => w.pid);
  const usage = pids.length > 0 ? await pidusage(pids).catch(() => ({}) as Record<string, { memory: number; cpu: number }>) : {};
  const memory = await Promise.all(pids.map((pid) => readMemory(pid)));
  return workers
    .map((w, i) => {
      const u = (usage as Record<string, { memory: number; cpu: number } | undefined>)[String(w.pid)];
      const m = memory[i];
      return {
        pid: w.pid,
        status: w.state,
        statusStr: w.statusName,
        numExecs: w.numExecs,
        created: w.created * 1e6,
        memoryUsage: u?.memory ?? m?.rss ?? 0,
        CPUPercent: u?.cpu ?? 0,
        command: '',
        uss: m?.uss ?? 0,
        pss: m?.pss ?? 0,
      };
    })
    .sort((a, b) => a.pid - b.pid);
}
