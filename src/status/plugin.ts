// The status plugin (docs/compatibility.md §1.11, §3.6, §3.8): liveness (/health) and readiness (/ready) of every plugin
// that has a status (HasStatus) on status.address, for load balancers and orchestrators, answered the way
// RoadRunner's status plugin answers them.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { StatusConfig } from '../config/types.js';
import { closeNow, listenOnAddress, refuseMalformedRequests } from '../listen.js';
import { hasPipelines, type Capabilities, type Plugin, type HasStatus } from '../plugin.js';

/** One plugin's line in a /health or /ready answer; RoadRunner's `Report` JSON shape. */
export interface PluginReport {
  plugin_name: string;
  error_message: string;
  status_code: number;
}

/** The text RoadRunner answers with once shutdown has begun (since 2024.1.5). */
export const SHUTTING_DOWN = 'service is shutting down';

type Check = (plugin: HasStatus) => Promise<number>;

export class StatusPlugin implements Plugin {
  readonly name = 'status';
  private server: http.Server | null = null;
  private stopping = false;

  constructor(
    private readonly config: StatusConfig,
    private readonly plugins: Pick<Capabilities, 'withStatus'>,
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
    const server = http.createServer({ requestTimeout: timeoutMs, headersTimeout: timeoutMs > 0 ? timeoutMs : 60_000, keepAliveTimeout: 60_000 }, (req, res) =>
      this.route(req, res),
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
        return this.report(res, url, (p) => p.status(), 'health');
      case '/ready':
        if (this.stopping) return sendText(res, this.config.unavailableStatusCode, SHUTTING_DOWN);
        return this.report(res, url, (p) => p.ready(), 'readiness');
      case '/jobs':
        if (this.stopping) return sendText(res, this.config.unavailableStatusCode, SHUTTING_DOWN);
        return this.reportJobs(res);
      default:
        return sendText(res, 404, '404 page not found');
    }
  }

  /** The jobs plugin's pipelines in RoadRunner's JobsReport shape; "jobs plugin not found" without it or on error. */
  private reportJobs(res: http.ServerResponse): void {
    const jobs = this.plugins.withStatus().find((p) => p.name === 'jobs');
    const notFound = (): void => sendJson(res, this.config.unavailableStatusCode, { error_message: 'jobs plugin not found' });
    if (!jobs || !hasPipelines(jobs)) return notFound();
    jobs.pipelineStates().then(
      (states) =>
        sendJson(
          res,
          200,
          states.map((s) => ({
            pipeline: s.pipeline,
            priority: s.priority,
            ready: s.ready,
            queue: s.queue,
            active: s.active,
            delayed: s.delayed,
            reserved: s.reserved,
            driver: s.driver,
            error_message: s.errorMessage,
          })),
        ),
      (err: unknown) => {
        this.log.error({ err: (err as Error)?.message }, 'jobs: pipeline states failed');
        notFound();
      },
    );
  }

  /**
   * Check the plugins named by `plugin=` (all with a status without it); any unavailable one makes the whole answer
   * unavailable. A check that fails counts as unavailable.
   */
  private report(res: http.ServerResponse, url: URL, check: Check, kind: string): void {
    const plugins = this.plugins.withStatus();
    const asked = url.searchParams.getAll('plugin');
    const names = asked.length > 0 ? asked : plugins.map((p) => p.name);
    const checked: Array<{ name: string; code: Promise<number> }> = [];
    for (const name of names) {
      const plugin = plugins.find((p) => p.name === name);
      if (!plugin) {
        this.log.debug({ plugin: name }, `plugin does not support ${kind} checks`);
        continue;
      }
      const code = Promise.resolve()
        .then(() => check(plugin))
        .catch((err: unknown) => {
          this.log.error({ plugin: name, err: (err as Error)?.message }, `${name}: ${kind} check failed`);
          return 503;
        });
      checked.push({ name, code });
    }
    void Promise.all(checked.map((c) => c.code)).then((codes) => {
      const reports: PluginReport[] = [];
      let status = 200;
      codes.forEach((code, i) => {
        const name = checked[i]!.name;
        if (code >= 500) {
          status = this.config.unavailableStatusCode;
          reports.push({ plugin_name: name, error_message: 'internal server error, see logs', status_code: this.config.unavailableStatusCode });
        } else {
          reports.push({ plugin_name: name, error_message: '', status_code: code });
        }
      });
      sendJson(res, status, reports);
    });
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
