// One PHP worker: its process, its relay and its state. Runs one job at a time: exec() sends the job frame and
// feeds every response frame to a sink until the last one (streams included), answering PINGs with PONGs.
import { Flag } from '../goridge/flags.js';
import { jobFrame, parseJobReply, PONG, STOP_CONTROL, STREAM_STOP } from '../goridge/messages.js';
import type { Frame } from '../goridge/frame.js';
import { ProtocolError, SoftJobError, StopRequestError, StreamTimeoutError, WorkerBusyError, WorkerGoneError, WorkerProtocolError } from '../errors.js';
import type { FrameRelay } from '../relay/relay.js';
import { canMove, stateName, WorkerState } from './state.js';
import { describeExit, type ExitInfo, type WorkerProcess } from './process.js';

export interface Job {
  /** Codec flag of the context (CODEC_JSON for HTTP). */
  codec: number;
  context: Buffer;
  body: Buffer;
}

/** One data frame of a worker's answer. `more` is true while a stream goes on. */
export interface ReplyChunk {
  flags: number;
  context: Buffer;
  body: Buffer;
  more: boolean;
}

export interface ReplySink {
  /** `workerPid` names the worker in what the sink logs about the answer. */
  chunk(reply: ReplyChunk, workerPid: number): void;
}

/** What a Cancellation tells: a callback, or an object told through its method (no closure per job). */
export type CancelListener = (() => void) | { cancelled(): void };

/**
 * Tells a job its requester went away (the HTTP client disconnected). Lighter than an AbortSignal, which costs an
 * EventTarget per request on the hot path; the first listener has its own slot, so a request whose job runs at once
 * (one listener: the worker's) allocates no list. Listeners registered after the cancel run at once.
 */
export class Cancellation {
  aborted = false;
  private first: CancelListener | null = null;
  private more: CancelListener[] | null = null;

  onCancel(listener: CancelListener): void {
    if (this.aborted) tell(listener);
    else if (this.first === null) this.first = listener;
    else (this.more ??= []).push(listener);
  }

  cancel(): void {
    if (this.aborted) return;
    this.aborted = true;
    const first = this.first;
    const more = this.more;
    this.first = this.more = null;
    if (first) tell(first);
    if (more) for (const listener of more) tell(listener);
  }
}

function tell(listener: CancelListener): void {
  if (typeof listener === 'function') listener();
  else listener.cancelled();
}

export const SOFT_STOP_TIMEOUT_MS = 10_000;

/** How a job ends: null when the last response frame is in, else why it failed (as exec() rejects). */
export type JobDone = (err: Error | null) => void;

/** The promise of a callback-style run: resolves when `start`'s `done` gets null, rejects with its error. */
export function whenDone(start: (done: JobDone) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => start((err) => (err ? reject(err) : resolve())));
}

/** The job a worker runs; the cancellation listener of its request, stale once the job is over. */
class Running {
  /** After a stream STOP we read and drop frames until the last one. */
  discarding = false;
  cancelTimer: NodeJS.Timeout | null = null;
  /** The sink refused a frame: the job ends with this error once the stream is drained. */
  sinkError: Error | null = null;

  constructor(
    private readonly worker: Worker,
    readonly sink: ReplySink,
    readonly done: JobDone,
  ) {}

  cancelled(): void {
    this.worker.cancelStream(this);
  }
}

export interface WorkerEvents {
  /** The protocol broke or the process died; the worker is unusable. Called once. */
  onFailure?(worker: Worker, reason: Error): void;
  /** The process is gone. Called once. */
  onExit?(worker: Worker, exit: ExitInfo): void;
}

export class Worker {
  readonly pid: number;
  /** Unix time in ms when the worker became ready. */
  readonly created = Date.now();
  state: WorkerState = WorkerState.Inactive;
  numExecs = 0;
  lastUsed = 0;
  /** Which pool generation (reset) the worker belongs to. */
  generation = 0;
  /** Set by the pool: executions after which the worker is recycled (max_jobs + jitter), 0 = never. */
  maxExecs = 0;
  exitInfo: ExitInfo | null = null;
  private running: Running | null = null;
  /** whenIdle()'s callers, told when the running job is over */
  private idleWaiters: Array<() => void> = [];
  private failed = false;
  private stopping: Promise<void> | null = null;

  constructor(
    readonly process: WorkerProcess,
    private readonly relay: FrameRelay,
    private readonly events: WorkerEvents = {},
    private readonly streamTimeoutMs = 60_000,
  ) {
    this.pid = process.pid;
    relay.attach({
      frame: (f) => this.onFrame(f),
      error: (err) => this.fail(err instanceof ProtocolError ? new WorkerProtocolError(`worker ${this.pid} broke the protocol: ${err.message}`) : err),
      close: () => this.fail(new WorkerGoneError(`worker ${this.pid} closed its relay`)),
    });
    void process.exited.then((exit) => {
      this.exitInfo = exit;
      this.fail(new WorkerGoneError(`worker ${this.pid} exited (${describeExit(exit)})`));
      this.moveTo(WorkerState.Stopped);
      this.relay.close();
      this.events.onExit?.(this, exit);
    });
  }

  get statusName(): string {
    return stateName(this.state);
  }

  get busy(): boolean {
    return this.running !== null;
  }

  /** Resolves once the job it runs (if any) is over, however it ends. */
  whenIdle(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  get alive(): boolean {
    return this.exitInfo === null && !this.failed;
  }

  /** Move to a new state when the move is legal; returns whether it happened. */
  moveTo(next: WorkerState): boolean {
    if (this.state === next) return true;
    if (!canMove(this.state, next)) return false;
    this.state = next;
    return true;
  }

  /**
   * Run one job. Resolves after the last response frame; rejects with SoftJobError (the worker answered with an
   * error and stays usable), StopRequestError (re-dispatch the job), or WorkerError (the worker is broken).
   * `cancel` stops a stream: a STOP frame is sent and the rest of the stream is dropped.
   */
  exec(job: Job, sink: ReplySink, cancel?: Cancellation): Promise<void> {
    return whenDone((done) => this.run(job, sink, cancel, done));
  }

  /**
   * exec() with a callback, for the hot path (no promise, no microtask turn): `done` is called once, with what exec()
   * would reject with or null; at once when the worker is busy or gone. Called from the worker's frame handler, so
   * `done` must not throw.
   */
  run(job: Job, sink: ReplySink, cancel: Cancellation | undefined, done: JobDone): void {
    if (this.running) return done(new WorkerBusyError(`worker ${this.pid} is already running a job`));
    if (!this.alive) return done(new WorkerGoneError(`worker ${this.pid} is not alive`));
    const running = new Running(this, sink, done);
    this.running = running;
    this.numExecs++;
    if (!this.relay.send(jobFrame(job.codec, job.context, job.body))) {
      this.fail(new WorkerGoneError(`worker ${this.pid}: relay closed`));
      return;
    }
    cancel?.onCancel(running);
  }

  /** Soft stop: the stop control, then SIGKILL if the process has not left within 10 s. */
  stop(timeoutMs = SOFT_STOP_TIMEOUT_MS): Promise<void> {
    if (this.stopping) return this.stopping;
    this.moveTo(WorkerState.Stopping);
    this.stopping = (async () => {
      if (this.exitInfo) return;
      this.relay.send(STOP_CONTROL);
      let timer: NodeJS.Timeout | undefined;
      const killed = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          this.process.signal('SIGKILL');
          resolve();
        }, timeoutMs);
      });
      await Promise.race([this.process.exited, killed]);
      clearTimeout(timer);
      await this.process.exited;
    })();
    return this.stopping;
  }

  /** Hard kill, at once. */
  kill(state: WorkerState = WorkerState.Stopping): void {
    if (this.exitInfo) return;
    this.moveTo(state);
    this.process.signal('SIGKILL');
  }

  /** The requester of `running` went away: STOP its stream (nothing if that job is over already). */
  cancelStream(running: Running): void {
    if (this.running !== running || running.discarding) return;
    running.discarding = true;
    this.relay.send(STREAM_STOP);
    running.cancelTimer = setTimeout(() => {
      this.fail(new StreamTimeoutError(`worker ${this.pid} did not end its stream within stream_timeout after STOP`));
      this.kill(WorkerState.Errored);
    }, this.streamTimeoutMs);
  }

  private onFrame(frame: Frame): void {
    const running = this.running;
    if (!running) {
      this.fail(new WorkerProtocolError(`worker ${this.pid} sent a frame while idle (flags 0x${frame.flags.toString(16)})`));
      this.kill(WorkerState.Errored);
      return;
    }
    let reply;
    try {
      reply = parseJobReply(frame);
    } catch (err) {
      this.fail(new WorkerProtocolError(`worker ${this.pid} sent a malformed response: ${(err as Error).message}`));
      this.kill(WorkerState.Errored);
      return;
    }
    if (frame.flags & Flag.CONTROL) {
      this.fail(new WorkerProtocolError(`worker ${this.pid} sent an unexpected control frame`));
      this.kill(WorkerState.Errored);
      return;
    }
    switch (reply.kind) {
      case 'error':
        this.finish(running, new SoftJobError(reply.message));
        return;
      case 'stop-request':
        this.moveTo(WorkerState.Invalid);
        this.finish(running, new StopRequestError(this.pid));
        return;
      case 'data':
        if (reply.ping && !running.discarding) this.relay.send(PONG);
        if (!running.discarding) {
          try {
            running.sink.chunk(reply, this.pid);
          } catch (err) {
            // The sink could not use this frame (e.g. a bad status): end the job with that error, drain the stream.
            running.sinkError = err as Error;
            if (reply.more) this.cancelStream(running);
          }
        }
        if (!reply.more) this.finish(running, running.sinkError);
    }
  }

  /** The job is over (every way a job ends comes here once). */
  private finish(running: Running, err: Error | null): void {
    if (running.cancelTimer) clearTimeout(running.cancelTimer);
    this.running = null;
    this.lastUsed = Date.now();
    if (this.idleWaiters.length > 0) for (const idle of this.idleWaiters.splice(0)) idle(); // rare: only a stop waits
    // last: `done` may hand the worker its next job at once
    running.done(err);
  }

  /** The worker can no longer be used: fail its job, tell the owner once. */
  private fail(reason: Error): void {
    const running = this.running;
    if (!this.failed) {
      this.failed = true;
      if (this.state !== WorkerState.Stopping && this.exitInfo === null) {
        // Keep a mark already given (exec_ttl, max_jobs…); an unmarked worker is errored.
        if (this.state === WorkerState.Ready || this.state === WorkerState.Working || this.state === WorkerState.Inactive) {
          this.moveTo(WorkerState.Errored);
        }
        this.process.signal('SIGKILL');
      }
      this.events.onFailure?.(this, reason);
    }
    // After the owner heard of the failure: the job's `done` runs at once, and must find the worker unusable.
    if (running) this.finish(running, reason);
  }
}
