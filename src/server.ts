// Wiring: builds the plugins from the Config in order (on_init, the http pool, http), starts them, and stops them
// in reverse order. Explicit, no container: the registry collects the plugins' capabilities for informer, resetter,
// status and metrics (docs/architecture.md).
import type { ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import type { Config, HttpConfig, JobsConfig, PoolConfig } from './config/types.js';
import { MetricsPlugin } from './metrics/plugin.js';
import { StatusPlugin } from './status/plugin.js';
import { HttpPlugin } from './http/server.js';
import type { LogRoot } from './log/index.js';
import { logOutputLines } from './log/index.js';
import { WorkerPool } from './pool/pool.js';
import { rssReader, Supervisor } from './pool/supervisor.js';
import { ussReader } from './pool/memory.js';
import { ForkSpawner, type ForkRootProvider } from './spawn/fork/spawner.js';
import { parsePhpCommand } from './config/php-command.js';
import { poolForkSpares } from './config/sections/server.js';
import { ExecSpawner, formatMs } from './spawn/exec.js';
import type { Spawner } from './spawn/spawner.js';
import { RR_COMPAT_VERSION } from './version.js';
import { PoolStoppedError, ReloadError, StartError } from './errors.js';
import { RpcPlugin } from './rpc/server.js';
import { resolveIdentity, type Identity } from './system/users.js';
import { registerCoreServices } from './rpc/services.js';
import { killSpawnedChildren, spawnChild } from './system/children.js';
import { PluginRegistry, type Plugin } from './plugin.js';
import { FrontProcesses } from './front/primary.js';
import { RootHost } from './front/root-host.js';
import { JobsPlugin } from './jobs/plugin.js';
import { jobsRpcService } from './jobs/rpc.js';
import { JobsMetrics } from './jobs/metrics.js';

/** The environment of a worker, in RoadRunner's order (docs/compatibility.md §3.9): later entries win. */
export function workerEnv(config: Config, mode: string, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, RR_RELAY: config.server.relay || 'pipes' };
  if (config.rpc?.listen) env.RR_RPC = config.rpc.listen;
  Object.assign(env, config.server.env);
  env.RR_VERSION = RR_COMPAT_VERSION;
  env.RR_MODE = mode;
  return env;
}

export class RrtsServer {
  http: HttpPlugin | null = null;
  /** http.front.processes > 1: the front processes, standing in as the `http` plugin (src/front/) */
  front: FrontProcesses | null = null;
  /** The jobs plugin when the config has a `jobs` section. */
  jobs: JobsPlugin | null = null;
  /** The RPC plugin when the config has an `rpc` section; other plugins add their services with `rpc.register`. */
  rpc: RpcPlugin | null = null;
  metrics: MetricsPlugin | null = null;
  status: StatusPlugin | null = null;
  /** Every plugin that serves, in start order; the informer, resetter, status and metrics plugins ask it. */
  readonly plugins = new PluginRegistry();
  /** Plugins given to use(): served after http, stopped after it. */
  private readonly added: Plugin[] = [];
  private supervisors: Supervisor[] = [];
  /** every pool's spawner, from the moment it is made (the forced exit kills what they started) */
  private readonly spawners: Spawner[] = [];
  /** server.on_init's process while it runs */
  private onInitChild: ChildProcess | null = null;
  private stopped = false;
  /** server.user/server.group as uid/gid (null: workers run as rrts's user) */
  private workerIdentity: Identity | null = null;
  private onInitIdentity: Identity | null = null;
  /** fork mode: the fork roots every pool's masters come from (closed after the last pool stopped) */
  private roots: RootHost | null = null;
  /** The last reload asked for, settled when it ends (never rejects). */
  private reloads: Promise<unknown> = Promise.resolve();

  constructor(
    public config: Config,
    private readonly logs: LogRoot,
  ) {}

  /**
   * One more plugin (before start()): served after http, in the order added, and stopped after http. Its
   * capabilities (src/plugin.ts) make it appear in informer, resetter, /health, /ready and /metrics.
   */
  use(plugin: Plugin): void {
    this.added.push(plugin);
  }

  /**
   * Start order: metrics, rpc (PHP workers may call both while they boot), on_init, the pools and http, the plugins
   * given to use(), status. stop() goes the other way.
   */
  async start(): Promise<void> {
    const { config } = this;
    // Before anything listens: a user rrts cannot switch to is a config error.
    this.workerIdentity = resolveIdentity({
      user: config.server.user,
      group: config.server.group,
      userKey: 'server.user',
      groupKey: 'server.group',
      file: config.file,
    });
    // As in rr, on_init runs as server.on_init.user (not server.user) when that is set.
    if (config.server.onInit) {
      this.onInitIdentity = resolveIdentity({ user: config.server.onInit.user, userKey: 'server.on_init.user', file: config.file });
    }
    if (config.metrics) await this.startMetrics();
    if (config.rpc) await this.startRpc(config.rpc.listen);
    if (config.server.onInit && !this.stopped) await this.runOnInit();
    if (this.stopped) return; // a stop came during the start (on_init, say): start nothing it would not stop
    // fork mode: one root for every pool of the same command and preload (the fronts' too): one opcache segment
    if (config.server.fork.enabled) this.roots = new RootHost(this.logs.channel('server'), this.workerIdentity);
    if (config.http) await (config.http.front.processes > 1 ? this.startFront() : this.startHttp(config.http));
    if (config.jobs) this.added.unshift(this.makeJobs(config.jobs));
    for (const plugin of this.added) await this.startPlugin(plugin);
    if (config.status) await this.startStatus();
  }

  private async startPlugin(plugin: Plugin): Promise<void> {
    this.plugins.register(plugin);
    try {
      await plugin.serve();
    } catch (err) {
      throw new StartError(`${plugin.name}: cannot start: ${(err as Error).message}`, { cause: err });
    }
  }

  private async startHttp(httpConfig: HttpConfig): Promise<void> {
    const pool = this.makePool('http', httpConfig.pool);
    try {
      await pool.start();
    } catch (err) {
      throw new StartError(`http: cannot start the worker pool: ${(err as Error).message}`, { cause: err });
    }
    const http = new HttpPlugin(httpConfig, pool, this.logs.channel('http'), this.workerIdentity);
    if (this.metrics && httpConfig.middleware.includes('http_metrics')) http.metrics = this.metrics.httpMetrics();
    this.http = http;
    this.plugins.register(http);
    try {
      await http.serve();
    } catch (err) {
      await pool.destroy(1000);
      throw new StartError(`http: cannot listen on '${httpConfig.address}' (http.address): ${(err as Error).message}`, { cause: err });
    }
  }

  /** http.front.processes > 1: the fronts serve http with their own pools; this process keeps the rest. */
  private async startFront(): Promise<void> {
    const log = this.logs.channel('server');
    const roots = this.roots;
    const mode = this.config.server.fork.enabled ? 'fork' : 'exec';
    const front = new FrontProcesses(
      this.config,
      log,
      {
        workerStarted: (seconds) => {
          this.metrics?.observeWorkerStart('http', mode, seconds);
          if (mode === 'fork') this.metrics?.countFork('http');
        },
        masterRestarted: () => this.metrics?.countMasterRestart('http'),
      },
      roots,
    );
    this.front = front;
    this.plugins.register(front);
    try {
      await front.serve();
    } catch (err) {
      throw new StartError(`http: cannot start the front processes: ${(err as Error).message}`, { cause: err });
    }
  }

  /** The jobs plugin with its own pool (RR_MODE=jobs; fork mode applies) and its `jobs` RPC service. */
  private makeJobs(jobsConfig: JobsConfig): JobsPlugin {
    const jobs = new JobsPlugin(jobsConfig, this.makePool('jobs', jobsConfig.pool), this.logs.channel('jobs'), {
      globalConfig: { ...this.config.raw },
      workDir: this.config.workDir,
    });
    this.rpc?.register('jobs', jobsRpcService(jobs, this.logs.channel('jobs')));
    if (this.metrics) jobs.metrics = new JobsMetrics(this.metrics.registry, jobs.counters);
    this.jobs = jobs;
    return jobs;
  }

  private async startMetrics(): Promise<void> {
    const metricsConfig = this.config.metrics!;
    const metrics = new MetricsPlugin(metricsConfig, this.plugins, this.logs.channel('metrics'));
    try {
      await metrics.serve();
    } catch (err) {
      throw new StartError(`metrics: cannot listen on '${metricsConfig.address}' (metrics.address): ${(err as Error).message}`, { cause: err });
    }
    this.metrics = metrics;
    this.plugins.register(metrics);
  }

  private async startStatus(): Promise<void> {
    const statusConfig = this.config.status!;
    const status = new StatusPlugin(statusConfig, this.plugins, this.logs.channel('status'));
    try {
      await status.serve();
    } catch (err) {
      throw new StartError(`status: cannot listen on '${statusConfig.address}' (status.address): ${(err as Error).message}`, { cause: err });
    }
    this.status = status;
    this.plugins.register(status);
  }

  private async startRpc(listen: string): Promise<void> {
    try {
      const rpc = new RpcPlugin(listen, this.logs.channel('rpc'), this.config.workDir);
      registerCoreServices(rpc, this, this.logs.channel('rpc'));
      if (this.metrics) rpc.register('metrics', this.metrics.rpcService());
      await rpc.serve();
      this.rpc = rpc;
      this.plugins.register(rpc);
    } catch (err) {
      throw new StartError(`rpc: cannot listen on '${listen}' (rpc.listen): ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * SIGHUP with a config that loaded: the workers' command, environment and preload take effect through a rolling
   * reset. Listeners, pool sizes and plugin sections need a restart; each such change is returned as a warning.
   * When the fresh workers cannot start, the previous recipe stays in force (every replacement starts it) and the
   * configuration stays the previous one: the error says why the new one failed.
   */
  reload(next: Config): Promise<string[]> {
    // in the order the signals came: each compares with, and replaces, the config the one before left
    const run = this.reloads.then(() => this.reloadNow(next));
    this.reloads = run.catch(() => undefined);
    return run;
  }

  private async reloadNow(next: Config): Promise<string[]> {
    const warnings = restartOnlyChanges(this.config, next);
    if (this.front && next.http) {
      const started = Date.now();
      const recipe = { command: next.http.pool.command ?? next.server.command, env: workerEnv(next, 'http'), preload: next.server.fork.preload };
      try {
        await this.front.reset(recipe);
      } catch (err) {
        throw new ReloadError(`http: ${describeRecipeFailure(this.config, next, this.front.workerMode)}: ${(err as Error).message}`, { cause: err });
      }
      this.front.useConfig(next);
      this.logs.channel('server').info({ plugin: 'http', elapsed_ms: Date.now() - started }, 'http: workers reset');
    }
    const http = this.http;
    if (http && next.http) {
      const started = Date.now();
      const recipe = { command: next.http.pool.command ?? next.server.command, env: workerEnv(next, 'http'), preload: next.server.fork.preload };
      try {
        await http.pool.reset({ recipe });
      } catch (err) {
        if (err instanceof PoolStoppedError) throw err;
        const mode = http.pool.mode;
        const why = `${describeRecipeFailure(this.config, next, mode)}: ${(err as Error).message}; ${keptRecipe(this.config, mode)}`;
        throw new ReloadError(`http: ${why}`, { cause: err });
      }
      this.logs.channel('server').info({ plugin: 'http', elapsed_ms: Date.now() - started }, 'http: workers reset');
    }
    const jobs = this.jobs;
    if (jobs && next.jobs) {
      const started = Date.now();
      const command = next.jobs.pool.command ?? next.server.command;
      const recipe = { command, env: workerEnv(next, 'jobs'), preload: next.server.fork.preload };
      try {
        await jobs.pool.reset({ recipe });
      } catch (err) {
        if (err instanceof PoolStoppedError) throw err;
        const why = `the jobs workers (command '${command.join(' ')}') could not start: ${(err as Error).message}; the old ones keep consuming`;
        throw new ReloadError(`jobs: reload failed: ${why}`, { cause: err });
      }
      this.logs.channel('server').info({ plugin: 'jobs', elapsed_ms: Date.now() - started }, 'jobs: workers reset');
    }
    this.config = next;
    return warnings;
  }

  /** Rolling reset of every Resettable plugin (fork mode: a new master each). Resolves when all are done. */
  async resetAll(): Promise<void> {
    for (const plugin of this.plugins.resettable()) {
      const name = plugin.name;
      const started = Date.now();
      await plugin.reset();
      this.logs.channel('server').info({ plugin: name, elapsed_ms: Date.now() - started }, `${name}: workers reset`);
    }
  }

  /** Graceful stop, bounded by `graceMs`. */
  async stop(graceMs = this.config.endure.gracePeriod): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.status?.shuttingDown();
    this.onInitChild?.kill('SIGKILL'); // a one-shot command with no graceful stop: it must not outlive rrts
    for (const s of this.supervisors) s.stop();
    const deadline = Date.now() + graceMs;
    if (this.http) {
      await this.http.stop(graceMs);
      await this.http.pool.destroy(Math.max(0, deadline - Date.now()));
    }
    await this.front?.stop(graceMs);
    for (const plugin of [...this.added].reverse()) await plugin.stop(Math.max(0, deadline - Date.now()));
    await this.roots?.close();
    await this.rpc?.stop();
    await this.metrics?.stop();
    await this.status?.stop();
  }

  /**
   * Forced exit (a second stop signal, or a stop that failed): SIGKILL every process rrts started (workers with
   * their process groups, fork roots, masters and spares, on_init) and remove every socket file and directory it
   * made, synchronously: the process exits right after.
   */
  forceStop(): void {
    this.stopped = true;
    for (const spawner of this.spawners) spawner.killAll?.();
    this.front?.forceStop();
    this.roots?.killAll();
    this.onInitChild?.kill('SIGKILL');
    killSpawnedChildren(); // whatever a spawner does not know of yet (a fork root still starting)
    this.rpc?.removeSocketFile();
  }

  private makePool(name: string, poolConfig: PoolConfig): WorkerPool {
    const log = this.logs.channel('server');
    const spawner = this.makeSpawner(name, poolConfig, log);
    this.spawners.push(spawner);
    const pool = new WorkerPool(name, poolConfig, spawner, log, {
      workerStarted: (seconds) => {
        this.metrics?.observeWorkerStart(name, spawner.mode, seconds);
        if (spawner.mode === 'fork') this.metrics?.countFork(name);
      },
      masterRestarted: () => this.metrics?.countMasterRestart(name),
    });
    if (poolConfig.supervisor) {
      // Fork mode: RSS would count the shared opcache in every worker; the supervisor looks at USS instead.
      const supervisor = new Supervisor(pool, poolConfig.supervisor, log, spawner.mode === 'fork' ? ussReader : rssReader);
      supervisor.start();
      this.supervisors.push(supervisor);
    }
    return pool;
  }

  private makeSpawner(name: string, poolConfig: PoolConfig, log: Logger): Spawner {
    return makeSpawner(this.config, name, poolConfig, log, this.workerIdentity, this.roots?.localProvider() ?? null);
  }

  /** server.on_init: run once before the workers; its output is logged; failure stops start only with exit_on_error. */
  private async runOnInit(): Promise<void> {
    const onInit = this.config.server.onInit!;
    const log: Logger = this.logs.channel('server');
    const env = { ...onInit.env, ...process.env };
    const child = spawnChild(onInit.command[0]!, onInit.command.slice(1), {
      cwd: this.config.workDir,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(this.onInitIdentity ?? {}),
    });
    const pid = child.pid ?? 0;
    this.onInitChild = child;
    child.once('exit', () => (this.onInitChild = null));
    if (child.stdout) logOutputLines(child.stdout, log, pid);
    if (child.stderr) logOutputLines(child.stderr, log, pid);
    const result = await new Promise<string | null>((resolve) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve(`timed out after ${formatMs(onInit.execTimeout)} (server.on_init.exec_timeout)`);
      }, onInit.execTimeout);
      child.once('error', (err) => {
        clearTimeout(timer);
        resolve(`cannot start '${onInit.command.join(' ')}': ${err.message}`);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        resolve(code === 0 ? null : `exited with ${signal ?? `code ${code}`}`);
      });
    });
    if (result === null || this.stopped) return; // killed by a stop: not a failure of its own
    const message = `server.on_init command failed: ${result}`;
    if (onInit.exitOnError) throw new StartError(message);
    log.error(message);
  }
}

/**
 * The spawner of pool `name`: exec, or fork (one master forks the workers). `sharedRoots` gets fork roots from the
 * primary's RootHost (over IPC in a front process, src/front/) so that every pool's masters come from one root.
 */
export function makeSpawner(
  config: Config,
  name: string,
  poolConfig: PoolConfig,
  log: Logger,
  identity: Identity | null,
  sharedRoots: ForkRootProvider | null = null,
): Spawner {
  const command = poolConfig.command ?? config.server.command;
  const common = {
    env: workerEnv(config, name),
    cwd: config.workDir,
    allocateTimeoutMs: poolConfig.allocateTimeout,
    streamTimeoutMs: poolConfig.streamTimeout,
    log,
    identity,
  };
  const fork = config.server.fork;
  if (!fork.enabled) return new ExecSpawner({ ...common, command, relay: config.server.relay });
  // the config loader already refused a command parsePhpCommand cannot take apart
  const poolSpares = poolForkSpares(fork, poolConfig); // a pool with a dynamic_allocator parks enough for a burst
  return new ForkSpawner({ ...common, command: parsePhpCommand(command), preload: fork.preload, spares: fork.spares, poolSpares, sharedRoots });
}

/** The http pool's worker command of a config, as the log shows it. */
function httpCommand(config: Config): string {
  return (config.http?.pool.command ?? config.server.command).join(' ');
}

/** What the failed reload tried: the new command (or the same one, when only env/preload/code changed). */
function describeRecipeFailure(current: Config, next: Config, mode: 'exec' | 'fork'): string {
  const command = httpCommand(next);
  const what = command === httpCommand(current) ? `the workers (command '${command}')` : `the new worker command '${command}'`;
  return `reload failed: ${what} could not start${mode === 'fork' ? ' under a new fork master' : ''}`;
}

/** Which recipe stays: the one every worker started before the reload had. */
function keptRecipe(current: Config, mode: 'exec' | 'fork'): string {
  const parts = mode === 'fork' ? 'command, environment and preload' : 'command and environment';
  const command = httpCommand(current);
  return `the old workers keep serving, and the previous ${parts} (command '${command}') stay in force for every worker started until a reload succeeds`;
}

/** Changes a reload cannot apply without a restart, as one sentence each. */
function restartOnlyChanges(current: Config, next: Config): string[] {
  const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
  const pool = (c: Config): unknown => c.http && { ...c.http.pool, command: null };
  const jobs = (c: Config): unknown => c.jobs && { ...c.jobs, pool: { ...c.jobs.pool, command: null } };
  const checks: Array<[string, unknown, unknown]> = [
    ['http (addresses, ssl, middleware, limits)', current.http && { ...current.http, pool: null }, next.http && { ...next.http, pool: null }],
    ['http.pool (sizes and timeouts)', pool(current), pool(next)],
    ['jobs (pipelines, consume, timeouts, pool sizes)', jobs(current), jobs(next)],
    ['server.relay', current.server.relay, next.server.relay],
    ['server.fork.enabled', current.server.fork.enabled, next.server.fork.enabled],
    ['server.fork.spares', current.server.fork.spares, next.server.fork.spares],
    ['server.user/group', [current.server.user, current.server.group], [next.server.user, next.server.group]],
    ['rpc', current.rpc, next.rpc],
    ['status', current.status, next.status],
    ['metrics', current.metrics, next.metrics],
    ['logs', current.logs, next.logs],
  ];
  return checks.filter(([, a, b]) => !same(a, b)).map(([what]) => `the change to ${what} needs a restart; it is ignored until then`);
}
