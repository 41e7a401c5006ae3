// One HTTP front process (http.front.processes > 1): started by the primary through node:cluster, it runs the
// ordinary HttpPlugin on the shared listening sockets with a worker pool of its own share, and answers the
// primary's calls (workers, reset, status, metrics, stop) over IPC (messages.ts, docs/front.md).
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { Config } from '../config/types.js';
import { HttpPlugin } from '../http/server.js';
import { createLogs } from '../log/index.js';
import { HttpMetrics } from '../metrics/http-middleware.js';
import { WorkerPool } from '../pool/pool.js';
import { rssReader, Supervisor } from '../pool/supervisor.js';
import { ussReader } from '../pool/memory.js';
import { makeSpawner } from '../server.js';
import { resolveIdentity } from '../system/users.js';
import type { Spawner } from '../spawn/spawner.js';
import { decodeToFront, type CallMessage, type FromFront, type FrontCallResults, type ToFront } from './messages.js';
import { RemoteRoots } from './remote-roots.js';

/** The front's side of the channel; the primary's messages come through `onMessage`. */
function send(msg: FromFront, handle?: unknown): void {
  process.send?.(msg, handle as undefined);
}

class FrontProcess {
  private http: HttpPlugin | null = null;
  private pool: WorkerPool | null = null;
  private spawner: Spawner | null = null;
  private supervisor: Supervisor | null = null;
  private registry: Registry | null = null;
  private metrics: HttpMetrics | null = null;
  private stopping = false;
  private log: Logger | null = null;
  readonly roots = new RemoteRoots(send);

  get address(): AddressInfo | null {
    return this.http?.address ?? null;
  }

  get tlsAddress(): AddressInfo | null {
    return this.http?.tlsAddress ?? null;
  }

  async start(config: Config, index: number): Promise<void> {
    const logs = createLogs(config.logs);
    const log = logs.channel('server').child({ front: index });
    this.log = log;
    const http = config.http!;
    const identity = resolveIdentity({
      user: config.server.user,
      group: config.server.group,
      userKey: 'server.user',
      groupKey: 'server.group',
      file: config.file,
    });
    const spawner = makeSpawner(config, 'http', http.pool, log, identity, this.roots);
    this.spawner = spawner;
    const pool = new WorkerPool('http', http.pool, spawner, log, {
      workerStarted: (seconds) => send({ t: 'poolEvent', kind: 'workerStarted', seconds }),
      masterRestarted: () => send({ t: 'poolEvent', kind: 'masterRestarted' }),
    });
    this.pool = pool;
    if (http.pool.supervisor) {
      this.supervisor = new Supervisor(pool, http.pool.supervisor, log, spawner.mode === 'fork' ? ussReader : rssReader);
      this.supervisor.start();
    }
    await pool.start();
    const plugin = new HttpPlugin(http, pool, logs.channel('http').child({ front: index }), identity);
    if (config.metrics && http.middleware.includes('http_metrics')) {
      // its own registry: the primary's /metrics sums every front's (metrics/plugin.ts, HasMetrics)
      this.registry = new Registry();
      this.metrics = new HttpMetrics(this.registry);
      plugin.metrics = this.metrics;
    }
    this.http = plugin;
    try {
      await plugin.serve();
    } catch (err) {
      throw new Error(`cannot listen on '${http.address || http.ssl?.address}' (http.address): ${(err as Error).message}`, { cause: err });
    }
  }

  async call(msg: CallMessage): Promise<FrontCallResults[CallMessage['op']]> {
    const pool = this.pool;
    const http = this.http;
    if (!pool || !http) throw new Error('the front process is not serving yet');
    switch (msg.op) {
      case 'workers':
        return http.workers();
      case 'addWorker':
        await pool.addWorker();
        return null;
      case 'removeWorker':
        await pool.removeWorker();
        return null;
      case 'reset':
        await pool.reset(msg.recipe ? { recipe: msg.recipe } : {});
        return null;
      case 'status':
        return http.status();
      case 'ready':
        return http.ready();
      case 'metrics':
        return this.registry ? this.registry.getMetricsAsJSON() : [];
    }
  }

  /** Graceful: stop accepting, let requests in flight finish, stop the workers; all within graceMs. */
  async stop(graceMs: number): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const deadline = Date.now() + graceMs;
    this.supervisor?.stop();
    await this.http?.stop(graceMs);
    await this.pool?.destroy(Math.max(0, deadline - Date.now()));
    this.metrics?.stop();
  }

  /** The primary is gone (the IPC channel closed): nothing may outlive rrts. */
  killAll(): void {
    this.spawner?.killAll?.();
  }

  logError(message: string): void {
    if (this.log) this.log.error(message);
    else process.stderr.write(`rrts front ${process.pid}: ${message}\n`);
  }
}

/** The front process's main: wait for the primary's start message, then serve until told to stop. */
export function runFront(): void {
  const front = new FrontProcess();
  // The primary decides when to stop and reload: the signals a terminal sends to the whole group are its to handle.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGQUIT', 'SIGHUP', 'SIGUSR2', 'SIGABRT'] as const) process.on(sig, () => {});
  process.on('uncaughtException', (err) => front.logError(`internal error: ${err.stack ?? err.message}`));
  process.on('unhandledRejection', (err) => front.logError(`internal error: ${(err as Error)?.stack ?? String(err)}`));
  process.on('disconnect', () => {
    front.killAll();
    process.exit(1);
  });
  process.on('message', (raw: unknown, handle: unknown) => {
    let msg: ToFront;
    try {
      msg = decodeToFront(raw);
    } catch (err) {
      front.logError((err as Error).message);
      return;
    }
    switch (msg.t) {
      case 'start':
        front.start(msg.config, msg.index).then(
          () => send({ t: 'started', address: front.address, tlsAddress: front.tlsAddress }),
          // its workers stop before the primary hears of it: no worker is left to be restarted by a pool that failed
          (err: Error) =>
            void front.stop(1000).finally(() => {
              front.killAll(); // a worker whose start was under way when the pool stopped
              send({ t: 'failed', error: err.message });
            }),
        );
        break;
      case 'call':
        front.call(msg).then(
          (value) => send({ t: 'reply', id: msg.id, value }),
          (err: Error) => send({ t: 'reply', id: msg.id, value: null, error: err.message }),
        );
        break;
      case 'stop':
        front.stop(msg.graceMs).then(
          () => {
            front.killAll(); // nothing outlives the front: a worker whose start was under way when its pool stopped
            process.send?.({ t: 'stopped' } satisfies FromFront, undefined, undefined, () => process.exit(0));
          },
          (err: Error) => {
            front.logError(`error while stopping: ${err.message}`);
            front.killAll();
            process.exit(1);
          },
        );
        break;
      case 'rootReply':
      case 'rootEvent':
        front.roots.onMessage(msg, handle);
        break;
    }
  });
  send({ t: 'hello' });
}
