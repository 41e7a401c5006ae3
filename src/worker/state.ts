// A worker's states with RoadRunner's numbers and names (docs/compatibility.md §3.2), and the moves allowed between them.

export enum WorkerState {
  Inactive = 0,
  Ready = 1,
  Working = 2,
  Invalid = 3,
  Stopping = 4,
  Stopped = 5,
  Destroyed = 6,
  MaxJobsReached = 7,
  Errored = 8,
  IdleTTLReached = 9,
  TTLReached = 10,
  MaxMemoryReached = 11,
  ExecTTLReached = 12,
}

const NAMES: Record<WorkerState, string> = {
  [WorkerState.Inactive]: 'inactive',
  [WorkerState.Ready]: 'ready',
  [WorkerState.Working]: 'working',
  [WorkerState.Invalid]: 'invalid',
  [WorkerState.Stopping]: 'stopping',
  [WorkerState.Stopped]: 'stopped',
  [WorkerState.Destroyed]: 'destroyed',
  [WorkerState.MaxJobsReached]: 'maxJobsReached',
  [WorkerState.Errored]: 'errored',
  [WorkerState.IdleTTLReached]: 'idleTTLReached',
  [WorkerState.TTLReached]: 'ttlReached',
  [WorkerState.MaxMemoryReached]: 'maxMemoryReached',
  // RoadRunner prints 'undefined' for this one; a name is more useful.
  [WorkerState.ExecTTLReached]: 'execTTLReached',
};

export function stateName(state: WorkerState): string {
  return NAMES[state];
}

/** States a worker can never leave except to be stopped. */
const FINAL = new Set([WorkerState.Stopped, WorkerState.Destroyed]);

/** Whether `from -> to` is a legal move. */
export function canMove(from: WorkerState, to: WorkerState): boolean {
  if (FINAL.has(from)) return from === WorkerState.Stopped && to === WorkerState.Destroyed;
  switch (to) {
    case WorkerState.Ready:
      return from === WorkerState.Inactive || from === WorkerState.Working;
    case WorkerState.Working:
      return from === WorkerState.Ready;
    case WorkerState.Stopped:
    case WorkerState.Stopping:
    case WorkerState.Errored:
    case WorkerState.Invalid:
      return true;
    default:
      // the supervisor's and the pool's marks
      return from !== WorkerState.Stopping;
  }
}
