// Looking at processes through /proc for the tests: children, zombies, the fork roots and spares php/master.php
// titles, and a SIGKILL that does not mind a process already gone.
import fs from 'node:fs';
import { procStat } from '../../src/system/proc.js';

/** Direct children of a pid, from /proc. */
export function childrenOf(ppid: number): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = procStat(Number(entry));
    if (stat && stat.ppid === ppid && stat.state !== 'Z') out.push(Number(entry));
  }
  return out.sort((a, b) => a - b);
}

/** Zombie children of a pid (exited, not collected yet). */
export function zombiesOf(ppid: number): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const s = procStat(Number(entry));
    if (s && s.ppid === ppid && s.state === 'Z') out.push(Number(entry));
  }
  return out;
}

/** A fork master's parked spare: php/master.php titles it "rrts: fork spare (master N)" until it is woken. */
export function isForkSpare(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('rrts: fork spare');
  } catch {
    return false;
  }
}

/** A fork root: php/master.php titles it "rrts: fork root: <the master's command line>". */
export function isForkRoot(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('rrts: fork root');
  } catch {
    return false;
  }
}

export function alive(pid: number): boolean {
  const s = procStat(pid);
  return s !== null && s.state !== 'Z';
}

export function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}
