// Every process rrts starts goes through spawnChild (exec workers, fork roots, on_init) or forkClusterWorker (the
// HTTP front processes): its pid is known from the
// spawn until Node collected its exit, as are the forked workers the fork reaper watches. Their exit status belongs
// to libuv or to the fork reaper, so the orphan reaper must never waitpid them. A forced exit SIGKILLs the spawned ones.
import cluster, { type ClusterSettings, type Worker as ClusterWorker } from 'node:cluster';
import { spawn, spawnSync, type ChildProcess, type SpawnOptions, type SpawnSyncOptionsWithStringEncoding, type SpawnSyncReturns } from 'node:child_process';

const known = new Set<number>();
/** the children spawnChild started, pid -> whether it leads its own process group (`detached`) */
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
 * SIGKILL every child spawnChild started and Node has not collected, and the whole process group of those that lead one (what
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

/**
 * child_process.spawn, registered before control returns to the event loop (so before libuv can collect its exit):
 * the orphan reaper leaves it to Node, and a forced exit kills it. A spawn that fails (no pid) registers nothing.
 */
export function spawnChild(command: string, args: readonly string[], options: SpawnOptions): ChildProcess {
  const child = spawn(command, args, options);
  const pid = child.pid;
  if (pid !== undefined) {
    registerChild(pid);
    spawnedByNode.set(pid, options.detached === true);
    child.once('exit', () => {
      unregisterChild(pid);
      spawnedByNode.delete(pid);
    });
  }
  return child;
}

/**
 * cluster.fork with these settings, registered as spawnChild registers: a front process that the orphan reaper
 * collected would never tell cluster it exited, and a forced exit must kill it too.
 */
export function forkClusterWorker(settings: ClusterSettings): ClusterWorker {
  cluster.setupPrimary(settings);
  const worker = cluster.fork();
  const pid = worker.process.pid;
  if (pid !== undefined) {
    registerChild(pid);
    spawnedByNode.set(pid, false);
    worker.process.once('exit', () => {
      unregisterChild(pid);
      spawnedByNode.delete(pid);
    });
  }
  return worker;
}

/** child_process.spawnSync: it collects its child before it returns, while no sweep can run, so nothing to register. */
export function runChildSync(command: string, args: readonly string[], options: SpawnSyncOptionsWithStringEncoding): SpawnSyncReturns<string> {
  return spawnSync(command, args, options);
}
