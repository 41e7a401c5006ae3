// How a worker is born, behind one interface: exec (a php-cli per worker, RoadRunner's way) or fork (a PHP master).
import type { Worker, WorkerEvents } from '../worker/worker.js';

/** What a worker is made from: its command, environment and (fork mode) preload. */
export interface WorkerRecipe {
  command: readonly string[];
  env: NodeJS.ProcessEnv;
  preload: string | null;
}

/** What a spawner tells the pool that owns it (Node event name -> arguments). */
export interface SpawnerEvents {
  /** The spawner had to start over (fork mode: its master died and a new one runs); replace the old workers gradually. */
  masterRestart: [];
}

export interface Spawner {
  readonly mode: 'exec' | 'fork';
  /** fork mode: the pid of the current master (0 when none) */
  readonly masterPid?: number;
  /** Start listeners or a master; called once before the first spawn. */
  start(): Promise<void>;
  /** Start one worker and return it once it answered the pid handshake (its only ready signal). */
  spawnWorker(events: WorkerEvents): Promise<Worker>;
  /**
   * Before a reset: start fresh (fork mode: a new master with the new code), with `recipe` when a reload changed
   * the command, environment or preload. Every worker started from now on uses it. Returns the rollback used when
   * the fresh workers cannot start: it puts the previous recipe (and master) back, so later replacements do not
   * start the recipe that just failed. Throws, with the previous recipe kept, when it cannot start fresh.
   */
  renew?(recipe?: WorkerRecipe): Promise<() => Promise<void>>;
  /** The pool subscribes once, when it is made (exec spawners never emit). */
  on(event: 'masterRestart', listener: () => void): unknown;
  /** Release everything the spawner owns (sockets, master). Workers are stopped by the pool before. */
  close(): Promise<void>;
  /**
   * Forced exit (a second stop signal): SIGKILL every process this spawner started and remove its socket files, all
   * synchronously, as the process exits right after.
   */
  killAll?(): void;
}
