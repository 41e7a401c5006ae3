// A worker's memory, honestly: RSS counts every shared page (the whole opcache segment in each forked worker),
// so fork mode measures USS (pages only this process has) and PSS (shared pages split among their users)
// from /proc/<pid>/smaps_rollup.
import fs from 'node:fs/promises';
import type { MemoryReader } from './supervisor.js';

export interface MemoryUsage {
  rss: number;
  pss: number;
  uss: number;
}

/** Bytes from /proc/<pid>/smaps_rollup, or null when the process is gone. */
export async function readMemory(pid: number): Promise<MemoryUsage | null> {
  let text: string;
  try {
    text = await fs.readFile(`/proc/${pid}/smaps_rollup`, 'utf8');
  } catch {
    return null;
  }
  const kb = (field: string): number => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : 0;
  };
  return { rss: kb('Rss'), pss: kb('Pss'), uss: kb('Private_Clean') + kb('Private_Dirty') };
}

/** The supervisor's memory reader for fork mode: USS. */
export const ussReader: MemoryReader = async (pids) => {
  const out = new Map<number, number>();
  const usages = await Promise.all(pids.map((pid) => readMemory(pid)));
  pids.forEach((pid, i) => {
    const u = usages[i];
    if (u) out.set(pid, u.uss);
  });
  return out;
};
