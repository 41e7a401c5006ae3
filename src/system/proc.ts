// Reading /proc: the one place that parses /proc/<pid>/stat.
import fs from 'node:fs';

/** Parent pid and state of a process from /proc/<pid>/stat, or null once it is fully gone. */
export function procStat(pid: number): { ppid: number; state: string } | null {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' '); // the name in () may hold spaces and ')'
    return { state: rest[0]!, ppid: Number(rest[1]) };
  } catch {
    return null;
  }
}
