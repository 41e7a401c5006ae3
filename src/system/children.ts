// Pids of the processes Node spawned (exec workers, fork roots, on_init, a library's `exec()`: every one once the
// orphan reaper runs, see trackEverySpawn) or the fork reaper watches (forked workers): their exit status belongs to
// libuv or to the fork reaper, so the orphan reaper must never waitpid them. A forced exit SIGKILLs the ones Node
// spawned.
import { ChildProcess } from 'node:child_process';

const known = new Set<number>();
/** the children Node spawned (trackEverySpawn), pid -> whether it leads its own process group (`detached`) */
const spawnedByNode = new Map<number, boolean>();

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

/**
 * SIGKILL every child Node spawned and has not collected, and the whole process group of those that lead one (what
 * an exec worker started in the background; a fork root's masters, workers and spares). Synchronous, for the forced
 * exit. Safe from pid reuse: libuv collects a child and emits its 'exit' (which unregisters it) in one callback, so
 * a pid still here is unreaped and names that process and its group. (Forked workers are the fork spawner's to
 * kill, through their pidfds: their master may reap them a moment before we hear of it.) Returns how many were
 * signalled.
 */
export function killSpawnedChildren(): number {
  let killed = 0;
  for (const [pid, ownGroup] of spawnedByNode) {
    if (ownGroup && sigkill(-pid)) killed++;
    else if (sigkill(pid)) killed++;
  }
  return killed;
}

function sigkill(pid: number): boolean {
  try {
    process.kill(pid, 'SIGKILL');
    return true;
  } catch {
    return false; // ESRCH: nobody left to signal
  }
}

/** Registers a ChildProcess now and unregisters it once Node has collected its exit ('exit' event). */
function trackChildProcess(child: { pid?: number | undefined; once(event: 'exit', listener: () => void): unknown }, ownGroup: boolean): void {
  const pid = child.pid;
  if (pid === undefined) return;
  registerChild(pid);
  spawnedByNode.set(pid, ownGroup);
  child.once('exit', () => {
    unregisterChild(pid);
    spawnedByNode.delete(pid);
  });
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
  // child_process.spawn/exec/execFile/fork all create a ChildProcess and call its spawn(options)
  const proto = ChildProcess.prototype as unknown as { spawn: (this: ChildProcess, ...args: unknown[]) => unknown };
  const spawn = proto.spawn;
  proto.spawn = function (this: ChildProcess, ...args: unknown[]): unknown {
    const result = spawn.apply(this, args);
    trackChildProcess(this, (args[0] as { detached?: unknown } | undefined)?.detached === true);
    return result;
  };
}
