// The HTTP plugin: accepts requests on http.address, turns each into a job for the worker pool (request.ts),
// writes the worker's answer back (response.ts), and maps every failure to a response: no request is left hanging.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { HttpConfig } from '../config/types.js';
import { NoFreeWorkersError, QueueFullError, RrtsError, SoftJobError } from '../errors.js';
import { Flag } from '../goridge/flags.js';
import type { WorkerPool } from '../pool/pool.js';
import { buildRequestPayload, RequestError, type RequestPayload } from './request.js';
import { ResponseWriter } from './response.js';
import { splitAddress } from '../address.js';
import type { HttpMetrics } from '../metrics/http-middleware.js';
import { Cancellation } from '../worker/worker.js';

export class HttpPlugin {
  readonly name = 'http';
  private server: http.Server | null = null;
  private inFlight = 0;
  /** Set when `http_metrics` is in http.middleware. */
  metrics: HttpMetrics | null = null;

  constructor(
    private readonly config: HttpConfig,
    readonly pool: WorkerPool,
    private readonly log: Logger,
  ) {}

  /** The bound address (useful with port 0). */
  get address(): AddressInfo | null {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a : null;
  }

  async serve(): Promise<void> {
    const server = http.createServer({ keepAliveTimeout: 60_000, requestTimeout: 300_000, headersTimeout: 60_000 }, (req, res) => {
      void this.handle(req, res);
    });
    server.on('clientError', (err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      else socket.destroy();
      this.log.debug({ err: err.message }, 'malformed HTTP request refused');
    });
    this.server = server;
    const { host, port } = splitAddress(this.config.address);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.log.debug({ address: this.config.address }, 'http server was started');
  }

  /** Stop accepting, let in-flight requests finish until the deadline, then close every connection. */
  async stop(graceMs: number): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const deadline = Date.now() + graceMs;
    while (this.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    server.closeAllConnections();
    await closed;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    this.inFlight++;
    const started = process.hrtime.bigint();
    const measured = this.metrics?.begin();
    const writer = new ResponseWriter(res, req.method === 'HEAD');
    let payload: RequestPayload | null = null;
    const clientGone = new Cancellation();
    res.once('close', () => {
      if (!res.writableFinished) clientGone.cancel();
    });
    try {
      payload = await buildRequestPayload(req, {
        rawBody: this.config.rawBody,
        maxRequestSize: this.config.maxRequestSize,
        uploads: this.config.uploads,
        tls: false,
      });
      await this.pool.exec({ codec: Flag.CODEC_JSON, context: payload.context, body: payload.body }, writer, clientGone);
      writer.end();
    } catch (err) {
      this.fail(req, res, writer, err as Error, clientGone.aborted);
    } finally {
      this.inFlight--;
      measured?.(res.statusCode);
      if (payload) void payload.cleanup();
      if (this.config.accessLogs) this.accessLog(req, res, writer, started);
    }
  }

  private fail(req: http.IncomingMessage, res: http.ServerResponse, writer: ResponseWriter, err: Error, clientGone: boolean): void {
    if (clientGone && (err as RrtsError).code === 'ERR_ABORTED') return;
    if (err instanceof RequestError) {
      if (!res.headersSent) {
        res.writeHead(err.status, { 'Content-Type': 'text/plain; charset=utf-8', Connection: 'close' });
        res.end(err.message);
      }
      req.resume();
      return;
    }
    const where = `${req.method} ${req.url}`;
    if (err instanceof SoftJobError) this.log.error({ request: where }, `worker error: ${err.message}`);
    else if (err instanceof NoFreeWorkersError || err instanceof QueueFullError) {
      if (err instanceof NoFreeWorkersError) this.metrics?.noFreeWorkers();
      this.log.error({ request: where }, err.message);
    }
    else this.log.error({ request: where, code: (err as RrtsError).code }, `request failed: ${err.message}`);
    if (writer.headersSent || res.headersSent) {
      res.destroy(); // the head is out: the client must see a broken response, not a complete one
      return;
    }
    const body = this.pool.config.debug ? err.message : '';
    res.writeHead(this.config.internalErrorCode, { 'Content-Length': Buffer.byteLength(body), 'Content-Type': 'text/plain; charset=utf-8' });
    res.end(body);
  }

  private accessLog(req: http.IncomingMessage, res: http.ServerResponse, writer: ResponseWriter, started: bigint): void {
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
    this.log.info(
      {
        status: res.statusCode,
        method: req.method,
        URI: req.url,
        remote_address: req.socket.remoteAddress,
        read_bytes: Number(req.headers['content-length'] ?? 0),
        write_bytes: writer.bytesWritten,
        elapsed: elapsedMs,
        user_agent: req.headers['user-agent'] ?? '',
      },
      'http access log',
    );
  }
}
