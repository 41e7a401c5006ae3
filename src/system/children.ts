// Pids of the processes Node spawned (exec workers, fork roots, on_init, a library's `exec()`: every one once the
// orphan reaper runs, see trackEverySpawn) or the fork reaper watches (forked workers): their exit status belongs to
// libuv or to the fork reaper, so the orphan reaper must never waitpid them.
import { ChildProcess } from 'node:child_process';

const known = new Set<number>();

/** From the moment a child is spawned (or a fork is reported) until its exit was collected by its owner. */
export function registerChild(pid: number): void {
  if (pid > 0) known.add(pid);
}

export function unregisterChild(pid: number): void {
  known.delete(pid);
}

export function isKnownChild(pid: number): boolean {
  return known.has(pid);
}

/** Registers a ChildProcess now and unregisters it once Node has collected its exit ('exit' event). */
function trackChildProcess(child: { pid?: number | undefined; once(event: 'exit', listener: () => void): unknown }): void {
  const pid = child.pid;
  if (pid === undefined) return;
  registerChild(pid);
  child.once('exit', () => unregisterChild(pid));
}

let everySpawnTracked = false;

/**
 * Register every child Node spawns from now on, whoever spawns it (a library's `child_process.exec()` too: pidusage
 * runs `getconf` on its first call): its exit belongs to libuv. An orphan reaper that took it would leave libuv
 * without the exit status, and that caller waiting forever (the supervisor's memory check did). Idempotent.
 */
export function trackEverySpawn(): void {
  if (everySpawnTracked) return;
  everySpawnTracked = true;
  // child_process.spawn/exec/execFile/fork all create a ChildProcess and call its spawn()
  const proto = ChildProcess.prototype as unknown as { spawn: (this: ChildProcess, ...args: unknown[]) => unknown };
  const spawn = proto.spawn;
  proto.spawn = function (this: ChildProcess, ...args: unknown[]): unknown {
    const result = spawn.apply(this, args);
    trackChildProcess(this);
    return result;
  };
}
