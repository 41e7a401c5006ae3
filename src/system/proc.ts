// Reading /proc: the one place that parses /proc/<pid>/stat.
import fs from 'node:fs';

export interface ProcStat {
  state: string;
  ppid: number;
  /** CPU time spent in user mode, in clock ticks */
  utime: number;
  /** CPU time spent in kernel mode, in clock ticks */
  stime: number;
  /** when the process started, in clock ticks after boot */
  startTime: number;
}

/** State, parent pid and CPU times of a process from /proc/<pid>/stat, or null once it is fully gone. */
export function procStat(pid: number): ProcStat | null {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' '); // the name in () may hold spaces and ')'
    return { state: rest[0]!, ppid: Number(rest[1]), utime: Number(rest[11]), stime: Number(rest[12]), startTime: Number(rest[19]) };
  } catch {
    return null;
  }
}
