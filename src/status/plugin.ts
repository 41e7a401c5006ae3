// The status plugin (docs/compatibility.md §1.11, §3.6, §3.8): liveness (/health) and readiness (/ready) of every worker pool on
// status.address, for load balancers and orchestrators, answered the way RoadRunner's status plugin answers them.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { StatusConfig } from '../config/types.js';
import { closeNow, listenOnAddress, refuseMalformedRequests } from '../listen.js';
import type { WorkerPool } from '../pool/pool.js';
import { WorkerState } from '../worker/state.js';

/** One plugin's line in a /health or /ready answer; RoadRunner's `Report` JSON shape. */
export interface PluginReport {
  plugin_name: string;
  error_message: string;
  status_code: number;
}

/** What statusOf/readinessOf look at: only the pool's live workers. */
export type CheckedPool = Pick<WorkerPool, 'list'>;

/** The text RoadRunner answers with once shutdown has begun (since 2024.1.5). */
export const SHUTTING_DOWN = 'service is shutting down';

/** A pool is alive (200) while at least one worker is ready or working; otherwise 503. */
export function statusOf(pool: CheckedPool): number {
  return pool.list().some((w) => w.state === WorkerState.Ready || w.state === WorkerState.Working) ? 200 : 503;
}

/** A pool is ready (200) only while at least one worker is idle and can take a job now; otherwise 503. */
export function readinessOf(pool: CheckedPool): number {
  return pool.list().some((w) => w.state === WorkerState.Ready) ? 200 : 503;
}

type Check = (pool: CheckedPool) => number;

export class StatusPlugin {
  readonly name = 'status';
  private server: http.Server | null = null;
  private stopping = false;

  constructor(
    private readonly config: StatusConfig,
    private readonly pools: () => Map<string, WorkerPool>,
    private readonly log: Logger,
  ) {}

  /** The bound address (useful with port 0). */
  get address(): AddressInfo | null {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a : null;
  }

  async serve(): Promise<void> {
    // check_timeout bounds how long a client may take to send its request (Go's ReadTimeout/ReadHeaderTimeout).
    const timeoutMs = this.config.checkTimeout > 0 ? this.config.checkTimeout * 1000 : 0;
    const server = http.createServer(
      { requestTimeout: timeoutMs, headersTimeout: timeoutMs > 0 ? timeoutMs : 60_000, keepAliveTimeout: 60_000 },
      (req, res) => this.route(req, res),
    );
    refuseMalformedRequests(server, this.log, 'status');
    await listenOnAddress(server, this.config.address);
    this.server = server;
    this.log.debug({ address: this.config.address }, 'status server was started');
  }

  /**
   * Shutdown has begun: /health keeps answering 200 so an orchestrator does not kill the draining process, while
   * /ready and /jobs say unavailable so a load balancer stops sending traffic.
   */
  shuttingDown(): void {
    this.stopping = true;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const server = this.server;
    if (!server) return;
    this.server = null;
    await closeNow(server);
  }

  private route(req: http.IncomingMessage, res: http.ServerResponse): void {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://status');
    } catch {
      return sendText(res, 400, '400 Bad Request');
    }
    switch (url.pathname) {
      case '/health':
        if (this.stopping) return sendText(res, 200, SHUTTING_DOWN);
        return this.report(res, url, statusOf, 'health');
      case '/ready':
        if (this.stopping) return sendText(res, this.config.unavailableStatusCode, SHUTTING_DOWN);
        return this.report(res, url, readinessOf, 'readiness');
      case '/jobs':
        if (this.stopping) return sendText(res, this.config.unavailableStatusCode, SHUTTING_DOWN);
        // rrts has no jobs plugin; RoadRunner answers "jobs plugin not found" when it is absent.
        return sendJson(res, this.config.unavailableStatusCode, { error_message: 'jobs plugin not found: rrts does not support jobs' });
      default:
        return sendText(res, 404, '404 page not found');
    }
  }

  /** Check the pools named by `plugin=` (all pools without it); any unavailable pool makes the whole answer unavailable. */
  private report(res: http.ServerResponse, url: URL, check: Check, kind: string): void {
    const pools = this.pools();
    const asked = url.searchParams.getAll('plugin');
    const names = asked.length > 0 ? asked : [...pools.keys()];
    const reports: PluginReport[] = [];
    let status = 200;
    for (const name of names) {
      const pool = pools.get(name);
      if (!pool) {
        this.log.debug({ plugin: name }, `plugin does not support ${kind} checks`);
        continue;
      }
      const code = check(pool);
      if (code >= 500) {
        status = this.config.unavailableStatusCode;
        reports.push({ plugin_name: name, error_message: 'internal server error, see logs', status_code: this.config.unavailableStatusCode });
      } else {
        reports.push({ plugin_name: name, error_message: '', status_code: code });
      }
    }
    sendJson(res, status, reports);
  }
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) });
  res.end(data);
}

/** Plain text the way Go's http.Error writes it (trailing newline, nosniff). */
function sendText(res: http.ServerResponse, status: number, text: string): void {
  const data = `${text}\n`;
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'X-Content-Type-Options': 'nosniff',
    'Content-Length': Buffer.byteLength(data),
  });
  res.end(data);
}
