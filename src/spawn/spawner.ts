// How a worker is born, behind one interface: exec (a php-cli per worker, RoadRunner's way) or fork (a PHP master).
import type { Worker, WorkerEvents } from '../worker/worker.js';

export interface Spawner {
  readonly mode: 'exec' | 'fork';
  /** fork mode: the pid of the current master (0 when none) */
  readonly masterPid?: number;
  /** Start listeners or a master; called once before the first spawn. */
  start(): Promise<void>;
  /** Start one worker and return it once it answered the pid handshake (its only ready signal). */
  spawnWorker(events: WorkerEvents): Promise<Worker>;
  /**
   * Before a reset: start fresh (fork mode: a new master with the new code). Returns the rollback used when the
   * fresh workers cannot start. Exec mode has nothing to renew.
   */
  renew?(): Promise<() => Promise<void>>;
  /** Set by the pool: the spawner had to start over (fork master crash); replace the old workers gradually. */
  onMasterRestart?: (() => void) | null;
  /** Release everything the spawner owns (sockets, master). Workers are stopped by the pool before. */
  close(): Promise<void>;
}
