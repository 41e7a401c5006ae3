// The OS process behind a worker, whatever spawned it (exec: a ChildProcess; fork: a pid watched by the reaper).
import os from 'node:os';

export interface ExitInfo {
  code: number | null;
  signal: string | null;
}

export interface WorkerProcess {
  readonly pid: number;
  /** Resolves once the process is gone (and reaped). Never rejects. */
  readonly exited: Promise<ExitInfo>;
  /** Send a signal; false when the process is already gone. */
  signal(sig: NodeJS.Signals): boolean;
}

const SIGNAL_NAMES: Record<number, string> = Object.fromEntries(Object.entries(os.constants.signals).map(([name, num]) => [num, name]));

/** 9 -> 'SIGKILL' (a number this system does not name stays a number, as text). */
export function signalName(signal: number): string {
  return SIGNAL_NAMES[signal] ?? String(signal);
}

export function describeExit(exit: ExitInfo): string {
  if (exit.signal) return `killed by ${exit.signal}`;
  return `exit code ${exit.code ?? 'unknown'}`;
}
