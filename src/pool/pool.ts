// A pool of N workers: hands jobs to free workers (FIFO wait up to allocate_timeout), recycles them (max_jobs,
// supervisor marks, reset), replaces the ones that die, backs off when workers keep failing to start, and with
// pool.dynamic_allocator adds extra workers while requests wait and stops them once idle (docs/pool.md).
import type { Logger } from 'pino';
import type { PoolConfig } from '../config/types.js';
import {
  ExecTtlError,
  JobCancelledError,
  NoFreeWorkersError,
  PoolStoppedError,
  QueueFullError,
  ResetError,
  StopRequestError,
  TooManyWorkersError,
} from '../errors.js';
import type { Spawner, WorkerRecipe } from '../spawn/spawner.js';
import { Worker, whenDone, type Cancellation, type Job, type JobDone, type ReplySink, type WorkerEvents } from '../worker/worker.js';
import { describeExit, type ExitInfo } from '../worker/process.js';
import { stateName, WorkerState } from '../worker/state.js';
import { settlesWithin } from '../time.js';
import { MAX_WORKERS } from '../config/sections/pool.js';
import { CrashLoop, EARLY_DEATH_MS } from './crash-loop.js';

interface Waiter {
  resolve(w: Worker): void;
  reject(err: Error): void;
  deadline: Deadline;
  /** dynamic_allocator.scale_on_wait: when this request has waited long enough to add workers */
  scaleDeadline: Deadline | null;
  /** RoadRunner's rule added workers for it at allocate_timeout: it waits once more for them */
  extended: boolean;
}

interface Deadline {
  /** performance.now() time at which it expires. */
  readonly at: number;
  readonly onExpire: () => void;
  prev: Deadline | null;
  next: Deadline | null;
}

/**
 * Many deadlines on one timer. Every waiting request (allocate_timeout) and every running job (exec_ttl) has a
 * deadline, and nearly all of them are met; a setTimeout + clearTimeout each costs more than the rest of the
 * pool's bookkeeping for the job. The deadlines form a linked list (O(1) to add and delete, and nothing is held
 * after a delete); the timer is set for the earliest one, and when it fires it expires what is due and sets
 * itself for the next. It is cleared when no deadline is left.
 */
class Deadlines {
  private head: Deadline | null = null;
  private tail: Deadline | null = null;
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;

  add(ms: number, onExpire: () => void): Deadline {
    const deadline: Deadline = { at: performance.now() + ms, onExpire, prev: this.tail, next: null };
    if (this.tail) this.tail.next = deadline;
    else this.head = deadline;
    this.tail = deadline;
    if (deadline.at < this.timerAt) this.setTimer(deadline.at);
    return deadline;
  }

  /** Forget a deadline that was met; false when it was not pending (deleted or expired already). */
  delete(deadline: Deadline): boolean {
    if (deadline.prev) deadline.prev.next = deadline.next;
    else if (this.head === deadline) this.head = deadline.next;
    else return false;
    if (deadline.next) deadline.next.prev = deadline.prev;
    else this.tail = deadline.prev;
    deadline.prev = deadline.next = null;
    if (this.head === null) this.clearTimer();
    return true;
  }

  private setTimer(at: number): void {
    this.clearTimer();
    this.timerAt = at;
    this.timer = setTimeout(() => this.expire(), Math.max(0, at - performance.now()));
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = Infinity;
  }

  private expire(): void {
    this.timer = null;
    this.timerAt = Infinity;
    const now = performance.now();
    const due: Deadline[] = [];
    for (let d = this.head; d; d = d.next) if (d.at <= now) due.push(d);
    for (const d of due) if (this.delete(d)) d.onExpire(); // an earlier callback may have deleted it
    // The expired callbacks may have added deadlines (and set the timer) already.
    let next = Infinity;
    for (let d = this.head; d; d = d.next) if (d.at < next) next = d.at;
    if (next < this.timerAt) this.setTimer(next);
  }
}

/** How often one job may be re-dispatched because workers asked to stop instead of answering it. */
const MAX_REDISPATCH = 10;
/** How long a reset waits for the old workers it killed at reset_timeout to exit. */
const KILLED_EXIT_WAIT_MS = 5_000;
/**
 * fork mode's dynamic_allocator.scale_on_wait when the key is not written: a request that waited this long gets
 * workers added (a fork is ready in ~3 ms; docs/pool.md has the measurements behind the value).
 */
export const FORK_SCALE_ON_WAIT_MS = 5;
/** RoadRunner starts at most one allocation at allocate_timeout per second (its pool/ratelimiter). */
const ALLOCATION_COOLDOWN_MS = 1_000;
/**
 * RoadRunner's jitter: a worker's limit is max_jobs plus 0-14 %. A worker whose replacement is late serves on past its
 * own limit up to max_jobs + 14 % in all, no more than RoadRunner ever lets a worker run; max_jobs under 8 stays exact.
 */
const MAX_JOBS_JITTER_PERCENT = 14;
/**
 * The replacement of a worker nearing max_jobs starts once the jobs it has left would take (at its rate so far) less
 * than this many times the pool's recent start time: a start slowed by the load it adds is still ready in time.
 */
const REPLACEMENT_LEAD = 2;
/** Weight of the newest start in the pool's start-time estimate (an exponential moving average). */
const START_ESTIMATE_WEIGHT = 0.3;

export interface ResetOptions {
  /** false: keep the spawner as it is (fork mode: the master was just restarted) */
  renewSpawner?: boolean;
  /** a reload: the fresh workers, and every worker started after them, use this recipe; kept only if they start */
  recipe?: WorkerRecipe;
}

/** What the pool reports as it happens (the metrics plugin counts it), given to its constructor. */
export interface PoolObserver {
  /** a worker took `seconds` from the spawn (or fork request) to its handshake */
  workerStarted?(seconds: number): void;
  /** the spawner started over after its fork master died */
  masterRestarted?(): void;
  /** the dynamic allocator added (`up`) or stopped (`down`) `count` extra workers */
  scaled?(direction: 'up' | 'down', count: number): void;
}

export class WorkerPool {
  /** Workers that count towards num_workers (not retiring). */
  private readonly workers = new Set<Worker>();
  /** Workers being stopped (kept so destroy() can wait for them). */
  private readonly retiring = new Set<Worker>();
  /** Idle workers counted in num_workers, taken oldest first so all of them stay warm. */
  private idle: Worker[] = [];
  /** Idle extra workers, taken newest first, so the ones not needed stay idle and reach idle_timeout. */
  private idleExtras: Worker[] = [];
  private waiters: Waiter[] = [];
  private generation = 0;
  /** Workers starting, of every kind; `spawningExtra` of them are extra workers. */
  private spawning = 0;
  private spawningExtra = 0;
  /**
   * Workers the dynamic allocator added beyond num_workers (and the replacements of such workers), with when they
   * joined the pool: their idle time counts from then, not from their spawn (an exec boot can outlast idle_timeout).
   */
  private readonly extras = new WeakMap<Worker, number>();
  /** Workers past a limit (max_jobs, ttl, memory) that serve on until their replacement is ready: the reason. */
  private readonly departing = new Map<Worker, WorkerState>();
  /**
   * Workers near max_jobs whose replacement, started ahead, is ready and serving: they serve on until their own
   * limit and then leave without asking for another.
   */
  private readonly succeeded = new WeakSet<Worker>();
  /** The same workers in order, so takeIdle() gives them their last jobs before their replacements get any. */
  private finishing: Worker[] = [];
  /** A replacement started ahead of max_jobs -> the worker it replaces, while both serve. */
  private readonly predecessors = new WeakMap<Worker, Worker>();
  /** How long a worker start takes here lately (ms; moving average; 0 before the first): when to start replacements. */
  private startEstimateMs = 0;
  /**
   * Extra workers that died and are still to be replaced: RoadRunner replaces every worker that exits (its
   * worker_watcher does not tell extra workers apart), and the replacement is an extra worker again.
   */
  private lostExtras = 0;
  /** 0 = RoadRunner's rule: workers are added only for a request that waited the whole allocate_timeout. */
  private readonly scaleOnWait: number;
  /** performance.now() of RoadRunner's last allocation, for its one-per-second limit. */
  private lastAllocation = -Infinity;
  private scaleDownTimer: NodeJS.Timeout | null = null;
  private maxWorkersWarned = false;
  private queued = 0;
  private destroyed = false;
  /** Failed starts in a row (docs/pool.md, "Crash loops"). */
  private readonly crashLoop: CrashLoop;
  /** Workers started during a crash loop that must stay up EARLY_DEATH_MS (or serve a job) to end it. */
  private readonly probation = new Map<Worker, NodeJS.Timeout>();
  private respawnTimer: NodeJS.Timeout | null = null;
  /** allocate_timeout of waiting requests and exec_ttl of running jobs. */
  private readonly deadlines = new Deadlines();
  private readonly events: WorkerEvents;
  /** The last reset asked for, settled when it ends (never rejects): the next one starts after it. */
  private resets: Promise<void> = Promise.resolve();
  /** How many workers the pool keeps: num_workers, changed at run time by addWorker/removeWorker. */
  private target: number;

  constructor(
    readonly name: string,
    readonly config: PoolConfig,
    private readonly spawner: Spawner,
    private readonly log: Logger,
    private readonly observer: PoolObserver | null = null,
  ) {
    this.target = config.numWorkers;
    this.crashLoop = new CrashLoop(`${name}: workers`, log);
    const dynamic = config.debug ? null : config.dynamicAllocator;
    this.scaleOnWait = dynamic ? (dynamic.scaleOnWait ?? (spawner.mode === 'fork' ? FORK_SCALE_ON_WAIT_MS : 0)) : 0;
    this.events = {
      onFailure: (w, reason) => this.onWorkerFailure(w, reason),
      onExit: (w, exit) => this.onWorkerExit(w, exit),
    };
    spawner.on('masterRestart', () => {
      this.observer?.masterRestarted?.();
      this.log.info('replacing the workers of the dead fork master');
      this.reset({ renewSpawner: false }).catch((err: Error) => this.log.error(`cannot replace the workers: ${err.message}`));
    });
  }

  /** Spawn num_workers in parallel; if any fails, stop them all and throw that worker's error. */
  async start(): Promise<void> {
    await this.spawner.start();
    if (this.config.debug) return;
    const results = await Promise.allSettled(Array.from({ length: this.target }, () => this.spawnWorker(this.generation)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      const started = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      await Promise.all(started.map((w) => w.stop()));
      await this.spawner.close();
      throw failed.reason;
    }
    for (const r of results) if (r.status === 'fulfilled') this.admit(r.value);
  }

  /** Live workers, for the informer and the supervisor. */
  list(): Worker[] {
    return [...this.workers];
  }

  /** Whether the dynamic allocator added this worker beyond num_workers (`rrts workers` and /metrics show it). */
  isExtra(w: Worker): boolean {
    return this.extras.has(w);
  }

  /** Run a job on a free worker. Rejects with NoFreeWorkersError, QueueFullError, SoftJobError or WorkerError. */
  exec(job: Job, sink: ReplySink, cancel?: Cancellation): Promise<void> {
    return whenDone((done) => this.run(job, sink, cancel, done));
  }

  /**
   * exec() with a callback, for the hot path: `done` is called once, with what exec() would reject with or null. An
   * idle worker is taken and sent the job at once, with no promise and no microtask turn; without one the request
   * waits (allocate_timeout) as exec()'s do. `done` may be called before run() returns (a stopped pool, a full
   * queue) and from a worker's frame handler, so it must not throw.
   */
  run(job: Job, sink: ReplySink, cancel: Cancellation | undefined, done: JobDone): void {
    if (this.destroyed) return done(new PoolStoppedError());
    if (this.config.maxQueueSize > 0 && this.queued >= this.config.maxQueueSize) return done(new QueueFullError());
    this.queued++;
    this.dispatch(job, sink, cancel, done, 0);
  }

  /** One attempt of a job: on an idle worker at once, else on the next one released (or started, in debug mode). */
  private dispatch(job: Job, sink: ReplySink, cancel: Cancellation | undefined, done: JobDone, attempt: number): void {
    const idle = this.config.debug ? null : this.takeIdle();
    if (idle) return this.runOn(idle, job, sink, cancel, done, attempt);
    const next = this.config.debug ? this.spawnWorker(this.generation) : this.waitForWorker(cancel);
    next.then(
      (worker) => this.runOn(worker, job, sink, cancel, done, attempt),
      (err: Error) => {
        this.queued--;
        done(err);
      },
    );
  }

  /** The attempt on `worker`: when the job ends the worker is released first, then the job re-dispatched or done. */
  private runOn(worker: Worker, job: Job, sink: ReplySink, cancel: Cancellation | undefined, done: JobDone, attempt: number): void {
    worker.moveTo(WorkerState.Working);
    const execTtl = this.watchExecTtl(worker);
    worker.run(job, sink, cancel, (err) => {
      if (execTtl) this.deadlines.delete(execTtl.deadline);
      this.release(worker);
      if (err) {
        if (execTtl?.hit) err = new ExecTtlError(`worker ${worker.pid} was killed: the job ran longer than exec_ttl`, { cause: err });
        else if (err instanceof StopRequestError && attempt < MAX_REDISPATCH) return this.dispatch(job, sink, cancel, done, attempt + 1);
      }
      this.queued--;
      done(err);
    });
  }

  /**
   * Rolling reset: start a full set of fresh workers; once all are ready they take new jobs and the old ones are
   * stopped as soon as they are idle. No request waits for a stop-the-world pause. If a fresh worker cannot start,
   * the old ones keep serving (and the spawner keeps its previous recipe) and the error is thrown.
   *
   * Resets of one pool never overlap, whoever asks (RPC, SIGHUP, a fork master's restart): like RoadRunner's
   * plugin mutex, a reset asked for while one runs waits for it and then runs its own (new code may have landed
   * since). A reset resolves once every old worker is gone, so no old code runs after it; old workers still busy
   * `reset_timeout` after the fresh ones took over are killed (SIGKILL; their requests fail), as RoadRunner does.
   */
  reset(options: ResetOptions = {}): Promise<void> {
    if (this.destroyed) return Promise.reject(new PoolStoppedError());
    const run = this.resets.then(() => this.resetNow(options));
    this.resets = run.catch(() => undefined);
    return run;
  }

  private async resetNow(options: ResetOptions): Promise<void> {
    if (this.destroyed) throw new PoolStoppedError();
    const started = performance.now();
    const next = this.generation + 1;
    if (options.recipe && !this.spawner.renew) throw new ResetError('this pool cannot change its workers');
    if (this.config.debug) {
      // each request starts its own worker: there is nothing to try the recipe on before it is used
      if (options.recipe) await this.spawner.renew!(options.recipe);
      this.generation = next;
      return;
    }
    const rollback = options.renewSpawner !== false && this.spawner.renew ? await this.spawner.renew(options.recipe) : null;
    const results = await Promise.allSettled(Array.from({ length: this.target }, () => this.spawnWorker(next)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    const fresh = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    if (failed || this.destroyed) {
      await Promise.all(fresh.map((w) => w.stop()));
      await rollback?.();
      if (!failed) throw new PoolStoppedError();
      const reason = failed.reason as Error;
      this.log.error(
        { plugin: this.name, ready: fresh.length, wanted: this.target },
        `${this.name}: reset failed, ${fresh.length} of ${this.target} new workers became ready; the old workers keep serving: ${reason.message}`,
      );
      throw reason;
    }
    this.generation = next;
    this.lostExtras = 0; // extra workers go with the old generation and come back on demand
    const old = [...this.workers];
    for (const w of fresh) this.admit(w); // first, so retiring the old ones does not ask for replacements
    // New requests go to new code from here; the bench reads this moment as the reset's latency.
    const tookOverMs = Math.round(performance.now() - started);
    this.log.info({ plugin: this.name, took_over_ms: tookOverMs, old: old.length }, `${this.name}: fresh workers serve after ${tookOverMs} ms`);
    for (const w of old) {
      if (w.state === WorkerState.Ready) this.retire(w, WorkerState.Invalid);
      else {
        this.workers.delete(w); // busy: retired when released (its generation is old)
        this.retiring.add(w);
      }
    }
    await this.awaitGone(old);
  }

  /** The old workers of a reset leave: busy ones finish their job, until reset_timeout; then they are killed. */
  private async awaitGone(old: Worker[]): Promise<void> {
    const left = new Set(old);
    const exits = Promise.all(old.map((w) => w.process.exited.then(() => void left.delete(w))));
    if (await settlesWithin(exits, this.config.resetTimeout)) return;
    for (const w of left) {
      const doing = w.busy ? 'busy with a request' : 'stopping';
      this.log.warn(
        { pid: w.pid },
        `worker ${w.pid} killed: it was still ${doing} when the reset's pool.reset_timeout (${this.config.resetTimeout} ms) ran out`,
      );
      w.kill(WorkerState.Stopping);
    }
    // SIGKILL cannot be refused; the bound is for a process stuck in the kernel, which must not hold every later reset
    if (!(await settlesWithin(exits, KILLED_EXIT_WAIT_MS))) {
      this.log.error(`old worker(s) ${[...left].map((w) => w.pid).join(', ')} killed by the reset have not exited yet; the reset ends without them`);
    }
  }

  /** Stop everything: no new jobs; wait for busy workers until the deadline; soft-stop all (then SIGKILL). */
  async destroy(timeoutMs = this.config.destroyTimeout): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    if (this.respawnTimer) clearTimeout(this.respawnTimer);
    if (this.scaleDownTimer) clearInterval(this.scaleDownTimer);
    for (const timer of this.probation.values()) clearTimeout(timer);
    this.probation.clear();
    for (const waiter of this.waiters.splice(0)) {
      this.forgetDeadlines(waiter);
      waiter.reject(new PoolStoppedError());
    }
    const deadline = Date.now() + timeoutMs;
    // no new job starts once destroyed: the busy ones' current jobs are all there is to wait for
    await settlesWithin(Promise.all([...this.workers, ...this.retiring].map((w) => w.whenIdle())), timeoutMs);
    const all = [...this.workers, ...this.retiring];
    this.workers.clear();
    this.idle = [];
    this.idleExtras = [];
    const stopTimeout = Math.max(100, Math.min(10_000, deadline - Date.now()));
    await Promise.all(all.map((w) => w.stop(stopTimeout)));
    this.retiring.clear();
    await this.spawner.close();
  }

  /** How the pool is made: the spawner's mode ('exec' or 'fork'). */
  get mode(): 'exec' | 'fork' {
    return this.spawner.mode;
  }

  /** fork mode: the current master's pid; null in exec mode. */
  get masterPid(): number | null {
    return this.spawner.masterPid ?? null;
  }

  /** informer.AddWorker: one more worker, started now (at most MAX_WORKERS). No-op in debug mode. */
  async addWorker(): Promise<void> {
    if (this.destroyed) throw new PoolStoppedError();
    if (this.config.debug) return;
    if (this.target >= MAX_WORKERS) throw new TooManyWorkersError(MAX_WORKERS);
    this.target++;
    try {
      this.admit(await this.spawnWorker(this.generation));
    } catch (err) {
      this.target--;
      throw err;
    }
  }

  /** informer.RemoveWorker: stop one idle worker (waiting up to destroy_timeout); never the last one. */
  async removeWorker(): Promise<void> {
    if (this.destroyed) throw new PoolStoppedError();
    if (this.config.debug) return;
    if (this.target <= 1) {
      this.log.warn('not removing the last worker of the pool');
      return;
    }
    this.target--;
    const w = await this.allocate(undefined, this.config.destroyTimeout).catch((err: Error) => {
      this.target++;
      throw err;
    });
    if (this.extras.has(w)) {
      // num_workers went down by one, not the extra workers: another worker takes the extra label
      const other = [...this.workers].find((x) => x !== w && !this.extras.has(x));
      if (other) this.extras.set(other, Date.now());
    }
    this.retire(w, WorkerState.Stopping);
  }

  /**
   * The supervisor's verdict. ttl and max_worker_memory: the replacement starts first and the worker serves until
   * it is ready. idle_ttl: an idle worker is retired, then replaced. Busy workers are flagged and leave after their job.
   */
  markForRetirement(w: Worker, reason: WorkerState): void {
    if (!this.workers.has(w)) return;
    if (reason === WorkerState.TTLReached || reason === WorkerState.MaxMemoryReached) {
      this.depart(w, reason);
    } else if (w.state === WorkerState.Ready) {
      this.retire(w, reason);
    } else if (w.state === WorkerState.Working) {
      w.moveTo(WorkerState.Invalid);
    }
  }

  /**
   * Replacement before departure (RoadRunner #614): start the worker's replacement and keep it serving until the
   * replacement is ready; then it leaves (idle: at once; busy: after its job), unless it was started ahead of
   * max_jobs: then the worker serves on until its limit (release()). If the replacement cannot start, the worker
   * leaves anyway and the usual replacement with back-off follows.
   */
  private depart(w: Worker, reason: WorkerState): void {
    if (this.departing.has(w) || this.destroyed) return;
    if (this.succeeded.has(w)) {
      this.leave(w, reason); // its replacement, started ahead of max_jobs, serves already
      this.replenish();
      return;
    }
    this.departing.set(w, reason);
    this.log.debug({ pid: w.pid, reason: stateName(reason) }, `worker ${w.pid} reached ${stateName(reason)}: starting its replacement first`);
    const extra = this.extras.has(w);
    if (extra) this.spawningExtra++;
    const generation = this.generation;
    this.spawnWorker(generation)
      .then(
        (successor) => {
          if (extra) this.spawningExtra--;
          this.departing.delete(w);
          if (generation !== this.generation || this.destroyed) {
            void successor.stop(); // a reset replaced everything meanwhile
            return;
          }
          if (extra) this.extras.set(successor, Date.now());
          this.admit(successor); // first, so the departure below does not ask for another replacement
          if (!this.workers.has(w)) return;
          if (reason === WorkerState.MaxJobsReached && w.numExecs < w.maxExecs && w.state !== WorkerState.Invalid) {
            // started ahead of max_jobs: both serve until the old one reaches its limit, so none of its jobs is lost
            this.succeeded.add(w);
            this.finishing.push(w);
            this.predecessors.set(successor, w);
            this.log.debug({ pid: w.pid, successor: successor.pid }, `worker ${w.pid} serves until max_jobs: its replacement ${successor.pid} is ready`);
            return;
          }
          this.log.debug({ pid: w.pid, successor: successor.pid }, `worker ${w.pid} leaves: its replacement ${successor.pid} is ready`);
          this.leave(w, reason);
        },
        (err: Error) => {
          if (extra) this.spawningExtra--;
          this.departing.delete(w);
          this.countFailedStart(err);
          if (this.workers.has(w)) {
            if (extra && generation === this.generation) this.lostExtras++;
            this.leave(w, reason);
          }
          this.replenish();
        },
      )
      .catch((err: Error) => this.log.error(`${this.name}: replacing worker ${w.pid} failed: ${err.message}`));
  }

  /**
   * A worker leaves without a replacement being asked for: idle ones stop now, busy ones after their job. `done`: its
   * job just ended (release()), so it stops now too.
   */
  private leave(w: Worker, reason: WorkerState, done = false): void {
    if (w.state === WorkerState.Ready || done) {
      this.forgetIdle(w);
      this.workers.delete(w);
      this.retiring.add(w);
      w.moveTo(reason);
      void w.stop().finally(() => this.retiring.delete(w));
    } else {
      this.workers.delete(w); // busy: stopped when released (release() sees it retiring)
      this.retiring.add(w);
    }
  }

  /**
   * Take a worker out of service; a replacement is spawned. An extra worker is replaced by another extra worker,
   * unless it goes because of a reset, idle time or informer.RemoveWorker.
   */
  private retire(w: Worker, state: WorkerState): void {
    const replaceExtra = state !== WorkerState.IdleTTLReached && state !== WorkerState.Stopping && w.generation === this.generation;
    if (this.extras.has(w) && this.workers.has(w) && replaceExtra) this.lostExtras++;
    this.forgetIdle(w);
    this.workers.delete(w);
    this.retiring.add(w);
    w.moveTo(state);
    void w.stop().finally(() => this.retiring.delete(w));
    this.replenish();
  }

  /** supervisor.exec_ttl: kill the worker if the job it starts now runs too long. Null when exec_ttl is off. */
  private watchExecTtl(worker: Worker): { deadline: Deadline; hit: boolean } | null {
    const execTtl = this.config.supervisor?.execTtl ?? 0;
    if (execTtl <= 0) return null;
    const watch = {
      hit: false,
      deadline: this.deadlines.add(execTtl, () => {
        watch.hit = true;
        this.log.warn({ pid: worker.pid }, `worker ${worker.pid} killed: the job ran longer than exec_ttl (${execTtl} ms)`);
        worker.kill(WorkerState.ExecTTLReached);
      }),
    };
    return watch;
  }

  /** A job is done: give the worker back, or recycle it. */
  private release(w: Worker): void {
    if (this.config.debug) {
      void w.stop();
      return;
    }
    if (!w.alive) return; // the exit/failure handler replaces it
    if (this.retiring.has(w)) {
      if (w.state !== WorkerState.Stopping) void w.stop().finally(() => this.retiring.delete(w));
      return;
    }
    if (w.state === WorkerState.Working) {
      if (w.generation !== this.generation) {
        this.retire(w, WorkerState.Invalid);
        return;
      }
      if (w.maxExecs > 0 && w.numExecs >= w.maxExecs) {
        if (this.succeeded.has(w)) {
          this.leave(w, WorkerState.MaxJobsReached, true); // its replacement serves already
          this.replenish(); // unless that one died meanwhile
          return;
        }
        if (w.numExecs >= Math.max(w.maxExecs, maxJobsCap(this.config.maxJobs))) {
          // out of RoadRunner's range: leave now; a replacement already starting takes its place, else one is started
          if (this.departing.has(w)) this.leave(w, WorkerState.MaxJobsReached, true);
          else this.retire(w, WorkerState.MaxJobsReached);
          return;
        }
        this.depart(w, WorkerState.MaxJobsReached);
      } else if (w.maxExecs > 0 && this.replacementDue(w)) {
        this.depart(w, WorkerState.MaxJobsReached);
      }
      if (this.probation.has(w)) this.passProbation(w); // started after failed starts, it served a job
      w.moveTo(WorkerState.Ready);
      this.handOut(w);
      return;
    }
    this.retire(w, w.state); // marked by the supervisor or a stop request while it ran
  }

  /**
   * Whether a worker nearing max_jobs should have its replacement started now, so that it is ready by the time the
   * worker reaches its limit: the jobs left, at the worker's rate so far, take less than REPLACEMENT_LEAD starts.
   */
  private replacementDue(w: Worker): boolean {
    if (this.departing.has(w) || this.succeeded.has(w) || this.startEstimateMs <= 0 || w.numExecs === 0) return false;
    const predecessor = this.predecessors.get(w);
    if (predecessor && this.workers.has(predecessor)) return false; // one replacement per place at a time
    const msPerJob = (Date.now() - w.created) / w.numExecs;
    return (w.maxExecs - w.numExecs) * msPerJob <= REPLACEMENT_LEAD * this.startEstimateMs;
  }

  private allocate(cancel?: Cancellation, timeoutMs = this.config.allocateTimeout): Promise<Worker> {
    const w = this.takeIdle();
    return w ? Promise.resolve(w) : this.waitForWorker(cancel, timeoutMs);
  }

  /** A ready worker, if one is idle: num_workers' first (oldest idle), then the extra one idle the shortest. */
  private takeIdle(): Worker | null {
    const usable = (w: Worker): boolean => w.alive && w.state === WorkerState.Ready && this.workers.has(w);
    if (this.finishing.length > 0) {
      // a worker whose replacement already serves goes first: else it lingers beside it, short of max_jobs
      this.finishing = this.finishing.filter((w) => this.workers.has(w));
      for (const w of this.finishing) {
        if (!usable(w)) continue;
        for (const list of [this.idle, this.idleExtras]) {
          const at = list.indexOf(w);
          if (at === -1) continue;
          list.splice(at, 1);
          return w;
        }
      }
    }
    while (this.idle.length > 0) {
      const w = this.idle.shift()!;
      if (usable(w)) return w;
    }
    while (this.idleExtras.length > 0) {
      const w = this.idleExtras.pop()!;
      if (usable(w)) return w;
    }
    return null;
  }

  private forgetIdle(w: Worker): void {
    this.idle = this.idle.filter((x) => x !== w);
    this.idleExtras = this.idleExtras.filter((x) => x !== w);
  }

  private forgetDeadlines(waiter: Waiter): void {
    this.deadlines.delete(waiter.deadline);
    if (waiter.scaleDeadline) this.deadlines.delete(waiter.scaleDeadline);
  }

  /** Queue for the next worker to be released (FIFO), for up to `timeoutMs`. */
  private waitForWorker(cancel?: Cancellation, timeoutMs = this.config.allocateTimeout): Promise<Worker> {
    return new Promise<Worker>((resolve, reject) => {
      if (cancel?.aborted) return reject(new JobCancelledError());
      const expire = (): void => {
        if (this.allocateAtTimeout(waiter)) {
          waiter.extended = true;
          waiter.deadline = this.deadlines.add(timeoutMs, expire); // RoadRunner's rule added workers: wait for them
          return;
        }
        this.waiters = this.waiters.filter((x) => x !== waiter);
        if (waiter.scaleDeadline) this.deadlines.delete(waiter.scaleDeadline);
        reject(new NoFreeWorkersError());
      };
      const waiter: Waiter = { resolve, reject, deadline: this.deadlines.add(timeoutMs, expire), scaleDeadline: null, extended: false };
      if (this.scaleOnWait > 0) {
        waiter.scaleDeadline = this.deadlines.add(this.scaleOnWait, () => {
          waiter.scaleDeadline = null;
          this.scaleUp();
        });
      }
      cancel?.onCancel(() => {
        if (!this.waiters.includes(waiter)) return; // already has a worker
        this.waiters = this.waiters.filter((x) => x !== waiter);
        this.forgetDeadlines(waiter);
        reject(new JobCancelledError());
      });
      this.waiters.push(waiter);
    });
  }

  private handOut(w: Worker): void {
    const waiter = this.waiters.shift();
    if (waiter) {
      this.forgetDeadlines(waiter);
      waiter.resolve(w);
    } else if (this.extras.has(w)) {
      this.idleExtras.push(w);
    } else {
      this.idle.push(w);
    }
  }

  /** Extra workers alive now. */
  private extraCount(): number {
    let n = 0;
    for (const w of this.workers) if (this.extras.has(w)) n++;
    return n;
  }

  /** How many extra workers may still be added (max_workers minus the live and starting ones). */
  private extraRoom(): number {
    const dynamic = this.config.dynamicAllocator;
    return dynamic ? dynamic.maxWorkers - this.extraCount() - this.spawningExtra : 0;
  }

  /**
   * scale_on_wait: a request waited that long. Adds up to spawn_rate workers for the requests that no starting
   * worker will serve, within max_workers.
   */
  private scaleUp(): void {
    const dynamic = this.config.dynamicAllocator;
    if (!dynamic || this.destroyed) return;
    const unserved = this.waiters.length - this.spawning;
    const room = this.extraRoom();
    if (unserved > 0 && room <= 0) this.warnMaxWorkers(dynamic.maxWorkers);
    const count = Math.min(dynamic.spawnRate, unserved, room);
    if (count > 0) this.addExtras(count, `requests waited ${this.scaleOnWait} ms for a worker`);
  }

  /**
   * RoadRunner's rule, at a request's allocate_timeout: add spawn_rate workers (within max_workers, one allocation a
   * second) and let the request wait once more for them. False when the request fails now.
   */
  private allocateAtTimeout(waiter: Waiter): boolean {
    const dynamic = this.config.dynamicAllocator;
    if (!dynamic || this.config.debug || this.scaleOnWait > 0 || waiter.extended || this.destroyed) return false;
    if (performance.now() - this.lastAllocation < ALLOCATION_COOLDOWN_MS) {
      if (this.spawningExtra > 0) return true; // the last allocation's workers are still starting: wait for them
      this.log.warn(`${this.name}: rate limit exceeded for dynamic allocation, skipping`);
      return false;
    }
    const count = Math.min(dynamic.spawnRate, this.extraRoom());
    if (count <= 0) {
      this.warnMaxWorkers(dynamic.maxWorkers);
      return false;
    }
    this.lastAllocation = performance.now();
    this.addExtras(count, 'no free workers in the pool, wait timeout exceed');
    return true;
  }

  private warnMaxWorkers(maxWorkers: number): void {
    if (this.maxWorkersWarned) return;
    this.maxWorkersWarned = true; // once per scale-up episode: reset when extra workers are stopped
    this.log.warn(
      { plugin: this.name, max_workers: maxWorkers },
      `${this.name}: can't allocate more workers, already allocated max workers (pool.dynamic_allocator.max_workers: ${maxWorkers})`,
    );
  }

  private addExtras(count: number, why: string): void {
    const generation = this.generation;
    this.observer?.scaled?.('up', count);
    this.log.info({ plugin: this.name, adding: count, extra: this.extraCount() + this.spawningExtra }, `${this.name}: ${why}; adding ${count} extra worker(s)`);
    for (let i = 0; i < count; i++) this.spawnExtra(generation, false);
  }

  /** Start one extra worker; a replacement (of an extra worker that died) is tried again, with the back-off, if it fails. */
  private spawnExtra(generation: number, replacement: boolean): void {
    this.spawningExtra++;
    this.spawnWorker(generation).then(
      (w) => {
        this.spawningExtra--;
        if (generation !== this.generation || this.destroyed) {
          void w.stop();
          return;
        }
        this.extras.set(w, Date.now());
        this.admit(w);
        this.startScaleDown();
      },
      (err: Error) => {
        this.spawningExtra--;
        this.countFailedStart(err);
        if (!replacement || generation !== this.generation) return;
        this.lostExtras++;
        this.replenish();
      },
    );
  }

  /** Every tick, extra workers idle for idle_timeout are stopped; the timer runs while extra workers exist. */
  private startScaleDown(): void {
    const dynamic = this.config.dynamicAllocator;
    if (this.scaleDownTimer || !dynamic) return;
    this.scaleDownTimer = setInterval(() => this.scaleDown(), scaleDownTick(dynamic.idleTimeout));
    this.scaleDownTimer.unref();
  }

  private scaleDown(): void {
    const idleTimeout = this.config.dynamicAllocator!.idleTimeout;
    const now = Date.now();
    const stale = this.idleExtras.filter(
      (w) => w.state === WorkerState.Ready && this.workers.has(w) && now - Math.max(w.lastUsed, this.extras.get(w) ?? w.created) >= idleTimeout,
    );
    for (const w of stale) this.leave(w, WorkerState.Stopping);
    const left = this.extraCount() + this.spawningExtra;
    if (stale.length > 0) {
      this.observer?.scaled?.('down', stale.length);
      this.maxWorkersWarned = false;
      this.log.info(
        { plugin: this.name, removed: stale.length, extra: left },
        `${this.name}: stopped ${stale.length} extra worker(s) idle for idle_timeout (${idleTimeout} ms); ${left} extra left`,
      );
    }
    if (left === 0 && this.scaleDownTimer) {
      clearInterval(this.scaleDownTimer);
      this.scaleDownTimer = null;
    }
  }

  private admit(w: Worker): void {
    if (this.destroyed) {
      void w.stop();
      return;
    }
    this.workers.add(w);
    w.moveTo(WorkerState.Ready);
    this.watchProbation(w);
    this.handOut(w);
  }

  private async spawnWorker(generation: number): Promise<Worker> {
    this.spawning++;
    const started = process.hrtime.bigint();
    try {
      const w = await this.spawner.spawnWorker(this.events);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      this.observer?.workerStarted?.(seconds);
      this.startEstimateMs =
        this.startEstimateMs === 0 ? seconds * 1000 : (1 - START_ESTIMATE_WEIGHT) * this.startEstimateMs + START_ESTIMATE_WEIGHT * seconds * 1000;
      w.generation = generation;
      const maxJobs = this.config.maxJobs;
      // RoadRunner adds 0-14 % jitter so workers do not all recycle together.
      w.maxExecs = maxJobs > 0 ? maxJobs + Math.floor((Math.random() * maxJobs * MAX_JOBS_JITTER_PERCENT) / 100) : 0;
      this.log.debug({ pid: w.pid }, 'worker is ready');
      return w;
    } finally {
      this.spawning--;
    }
  }

  /**
   * Spawn replacements until num_workers are alive again, and one for each extra worker that died (within
   * max_workers), with a growing back-off after failures.
   */
  private replenish(): void {
    if (this.destroyed || this.config.debug || this.respawnTimer) return;
    if (this.missingStatic() <= 0 && this.lostExtras <= 0) return;
    const wait = this.crashLoop.delay();
    const go = (): void => {
      this.respawnTimer = null;
      const extras = Math.min(this.lostExtras, this.extraRoom());
      this.lostExtras = 0;
      for (let i = 0; i < extras; i++) this.spawnExtra(this.generation, true);
      const count = this.missingStatic();
      for (let i = 0; i < count; i++) {
        const generation = this.generation;
        this.spawnWorker(generation)
          .then((w) => {
            if (generation !== this.generation) {
              void w.stop();
              this.replenish();
              return;
            }
            this.admit(w);
          })
          .catch((err: Error) => {
            this.countFailedStart(err);
            this.replenish();
          });
      }
    };
    if (wait === 0) go();
    else this.respawnTimer = setTimeout(go, wait); // crashLoop.failed() logged the wait
  }

  /** Workers num_workers still lacks: the target minus the static workers alive and starting. */
  private missingStatic(): number {
    return this.target - (this.workers.size - this.extraCount()) - (this.spawning - this.spawningExtra);
  }

  private countFailedStart(err: Error): void {
    this.crashLoop.failed(`cannot start a worker: ${err.message}`);
  }

  /** True while workers keep failing to start (/ready answers 503). */
  get crashLooping(): boolean {
    return this.crashLoop.looping;
  }

  private onWorkerFailure(w: Worker, reason: Error): void {
    if (!this.workers.has(w)) return;
    if (w.state !== WorkerState.Stopping) this.log.error({ pid: w.pid }, reason.message);
    this.workers.delete(w);
    this.forgetIdle(w);
    this.retiring.add(w);
    void w.process.exited.then(() => this.retiring.delete(w));
    if (this.extras.has(w)) this.lostExtras++;
    this.countEarlyDeath(w);
    this.replenish();
  }

  private onWorkerExit(w: Worker, exit: ExitInfo): void {
    this.retiring.delete(w);
    if (!this.workers.has(w)) return;
    this.log.warn({ pid: w.pid }, `worker ${w.pid} exited unexpectedly (${describeExit(exit)})`);
    this.workers.delete(w);
    this.forgetIdle(w);
    if (this.extras.has(w)) this.lostExtras++;
    this.countEarlyDeath(w);
    this.replenish();
  }

  private countEarlyDeath(w: Worker): void {
    const timer = this.probation.get(w);
    if (timer) clearTimeout(timer);
    this.probation.delete(w);
    if (Date.now() - w.created < EARLY_DEATH_MS && w.numExecs === 0) this.crashLoop.failed(`worker ${w.pid} died ${Date.now() - w.created} ms after its start`);
  }

  /**
   * After failed starts, a worker started since then ends the count once it has stayed up EARLY_DEATH_MS or served a
   * job; the older workers that still serve do not (they say nothing about whether a start works now).
   */
  private watchProbation(w: Worker): void {
    if (this.crashLoop.count === 0 || this.probation.has(w)) return;
    const timer = setTimeout(() => {
      if (w.alive && this.workers.has(w)) this.passProbation(w);
      else this.probation.delete(w);
    }, EARLY_DEATH_MS);
    timer.unref();
    this.probation.set(w, timer);
  }

  private passProbation(w: Worker): void {
    clearTimeout(this.probation.get(w));
    this.probation.delete(w);
    this.crashLoop.succeeded();
  }
}

/** The most jobs any worker may run: max_jobs plus RoadRunner's largest jitter (integers: 50 -> 57, 7 -> 7). */
export function maxJobsCap(maxJobs: number): number {
  return maxJobs + Math.floor((maxJobs * MAX_JOBS_JITTER_PERCENT) / 100);
}

/** How often idle extra workers are looked for: a tenth of idle_timeout, between 100 ms and 1 s. */
export function scaleDownTick(idleTimeoutMs: number): number {
  return Math.min(1_000, Math.max(100, Math.round(idleTimeoutMs / 10)));
}
