// Pids of the processes rrts spawned itself (exec workers, fork masters, on_init) or watches (forked workers):
// their exit status belongs to libuv or to the fork reaper, so the orphan reaper must never waitpid them.

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
export function trackChildProcess(child: { pid?: number | undefined; once(event: 'exit', listener: () => void): unknown }): void {
  const pid = child.pid;
  if (pid === undefined) return;
  registerChild(pid);
  child.once('exit', () => unregisterChild(pid));
}
