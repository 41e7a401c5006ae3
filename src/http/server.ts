// The HTTP plugin: accepts requests on http.address (HTTP/1.1, or also cleartext HTTP/2 with http2.h2c) and on
// http.ssl.address (TLS, HTTP/2 by ALPN with HTTP/1.1 fallback), runs them through http.middleware, turns each into
// a job for the worker pool (request.ts), writes the worker's answer back (response.ts), and maps every failure to a
// response: no request is left hanging.
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { HttpConfig, SslConfig } from '../config/types.js';
import type { Identity } from '../system/users.js';
import { NoFreeWorkersError, QueueFullError, RrtsError, SoftJobError } from '../errors.js';
import { Flag } from '../goridge/flags.js';
import type { WorkerPool } from '../pool/pool.js';
import { readinessOf, statusOf, workerStates } from '../pool/capabilities.js';
import type { HasStatus, HasWorkers, Plugin, Resettable, WorkerState } from '../plugin.js';
import { buildRequestPayload, clientIp, RequestError, type RequestPayload } from './request.js';
import { AnswerCutError, ResponseWriter } from './response.js';
import { GO_MAX_HEADER_BYTES, goRefusalOf, isRefused, listenOnAddress, refuseConnection, refuseMalformedRequests } from '../listen.js';
import type { HttpMetrics } from '../metrics/http-middleware.js';
import { Cancellation } from '../worker/worker.js';
import { buildChain, type AnyRequest, type AnyResponse, type HttpHandler } from './middleware/index.js';
import { httpsRedirect } from './redirect.js';
import { h2cOrHttp1 } from './h2c.js';
import { settlesWithin } from '../time.js';

type Listener = net.Server;

export class HttpPlugin implements Plugin, HasWorkers, Resettable, HasStatus {
  readonly name = 'http';
  /** Listening servers: the plain one (http.address) first, then the TLS one. */
  private listeners: Listener[] = [];
  /** HTTP/1.1 servers (listening or fed by the h2c sniffer), for closeIdleConnections on stop. */
  private http1Servers: http.Server[] = [];
  private sockets = new Set<net.Socket>();
  private sessions = new Set<http2.Http2Session>();
  private plainServer: Listener | null = null;
  private tlsServer: Listener | null = null;
  private inFlight = 0;
  /** whenNoneInFlight()'s callers, told when the last request in flight is answered */
  private drainedWaiters: Array<() => void> = [];
  /** Set when `http_metrics` is in http.middleware. */
  metrics: HttpMetrics | null = null;

  constructor(
    private readonly config: HttpConfig,
    readonly pool: WorkerPool,
    private readonly log: Logger,
    /** server.user's uid/gid, so the workers can read the upload temp files; null when they run as rrts's user. */
    private readonly uploadOwner: Identity | null = null,
  ) {}

  /** The bound plain address (useful with port 0); the TLS one when only https is configured. */
  get address(): AddressInfo | null {
    return boundAddress(this.plainServer ?? this.tlsServer);
  }

  /** The bound TLS address, or null without http.ssl. */
  get tlsAddress(): AddressInfo | null {
    return boundAddress(this.tlsServer);
  }

  async serve(): Promise<void> {
    const app = buildChain(this.config, this.log, (req, res, state) => this.handle(req, res, state.tls, state.remoteAddr));
    const ssl = this.config.ssl;
    if (this.config.address !== '') {
      const plain = ssl?.redirect ? httpsRedirect(ssl.address) : app;
      const server = this.config.http2.h2c ? this.createH2cServer(plain) : this.createHttp1Server(plain, false);
      this.plainServer = server;
      await this.listen(server, this.config.address);
      this.log.debug({ address: this.config.address, h2c: this.config.http2.h2c }, 'http server was started');
    }
    if (ssl) {
      const server = this.createTlsServer(ssl, app);
      this.tlsServer = server;
      await this.listen(server, ssl.address);
      this.log.debug({ address: ssl.address }, 'https server was started');
    }
  }

  /** Resolves once no request is in flight. */
  private whenNoneInFlight(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainedWaiters.push(resolve));
  }

  /** Stop accepting, let in-flight requests finish until the deadline, then close every connection. */
  async stop(graceMs: number): Promise<void> {
    const listeners = this.listeners;
    if (listeners.length === 0) return;
    this.listeners = [];
    const closed = listeners.map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
    for (const server of this.http1Servers) server.closeIdleConnections();
    for (const session of this.sessions) session.close(); // GOAWAY: running streams may finish
    await settlesWithin(this.whenNoneInFlight(), graceMs);
    for (const server of this.http1Servers) {
      server.closeAllConnections();
      if (!listeners.includes(server)) server.close(() => {}); // fed by the h2c sniffer: only its timers to clear
    }
    for (const session of this.sessions) session.destroy();
    for (const socket of this.sockets) socket.destroy();
    await Promise.all(closed);
    this.http1Servers = [];
    this.plainServer = null;
    this.tlsServer = null;
  }

  // Capabilities (src/plugin.ts): the informer, resetter, status and metrics plugins reach the http pool through these.

  get workerMode(): 'exec' | 'fork' {
    return this.pool.mode;
  }

  workers(): Promise<WorkerState[]> {
    return workerStates(this.pool);
  }

  addWorker(): Promise<void> {
    return this.pool.addWorker();
  }

  removeWorker(): Promise<void> {
    return this.pool.removeWorker();
  }

  reset(): Promise<void> {
    return this.pool.reset();
  }

  async status(): Promise<number> {
    return statusOf(this.pool);
  }

  async ready(): Promise<number> {
    return readinessOf(this.pool);
  }

  private async listen(server: Listener, address: string): Promise<void> {
    server.on('connection', (socket: net.Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    await listenOnAddress(server, address);
    this.listeners.push(server);
  }

  private http1Options(): http.ServerOptions {
    const requestTimeout = this.config.readTimeout;
    const headersTimeout = Math.min(this.config.readHeaderTimeout, requestTimeout);
    // Node checks the two timeouts every connectionsCheckingInterval (30 s by default): short timeouts need it shorter.
    const connectionsCheckingInterval = Math.max(50, Math.min(30_000, Math.floor(headersTimeout / 4)));
    return {
      keepAliveTimeout: 60_000,
      requestTimeout,
      headersTimeout,
      connectionsCheckingInterval,
      // Go's header limit instead of Node's 16 KiB (big cookies that RoadRunner takes must pass); Node counts the
      // target, names and values but not the separators, so it takes a little more than Go.
      maxHeaderSize: GO_MAX_HEADER_BYTES,
      // Missing Host is refused in dispatch() with Go's answer.
      requireHostHeader: false,
    };
  }

  private createHttp1Server(handler: HttpHandler, tls: boolean): http.Server {
    const server = http.createServer(this.http1Options(), (req, res) => this.dispatch(handler, req, res, tls));
    refuseMalformedRequests(server, this.log, 'HTTP');
    // Go hands CONNECT to the handler like any method, so RoadRunner's worker answers it; Node would drop the socket.
    server.on('connect', (req: http.IncomingMessage, socket: net.Socket) => this.dispatchConnect(handler, req, socket, tls));
    this.http1Servers.push(server);
    return server;
  }

  /**
   * A CONNECT request as an ordinary request: its answer goes out on the socket Node handed over (its parser is
   * gone, so the connection closes after it). No tunnel is opened, whatever the worker answers.
   */
  private dispatchConnect(handler: HttpHandler, req: http.IncomingMessage, socket: net.Socket, tls: boolean): void {
    const res = new http.ServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket);
    res.once('finish', () => socket.destroySoon());
    res.once('close', () => socket.destroySoon());
    // The authority form (`host:22`) as an absolute URI, so the worker's uri names that host and port.
    if (req.url !== undefined && !req.url.startsWith('/')) req.url = `${tls ? 'https' : 'http'}://${req.url}`;
    this.dispatch(handler, req, res, tls);
  }

  /** http2.h2c: connections starting with the HTTP/2 preface get HTTP/2 (prior knowledge), the others HTTP/1.1. */
  private createH2cServer(handler: HttpHandler): net.Server {
    const http1 = this.createHttp1Server(handler, false);
    const settings = { maxConcurrentStreams: this.config.http2.maxConcurrentStreams, maxHeaderListSize: GO_MAX_HEADER_BYTES };
    const h2 = http2.createServer({ settings }, (req, res) => this.dispatch(handler, req, res, false));
    this.trackSessions(h2);
    // Node starts the headersTimeout/requestTimeout checks of an http.Server on 'listening'; this one never listens
    // (the sniffer hands it connections), so start them by hand. stop() closes it, which clears the interval.
    http1.emit('listening');
    return h2cOrHttp1(http1, h2, Math.min(this.config.readHeaderTimeout, this.config.readTimeout));
  }

  private createTlsServer(ssl: SslConfig, handler: HttpHandler): http2.Http2SecureServer {
    const requestCert = ssl.clientAuthType !== 'no_client_cert';
    const server = http2.createSecureServer(
      {
        allowHTTP1: true,
        cert: fs.readFileSync(ssl.cert),
        key: fs.readFileSync(ssl.key),
        ...(ssl.rootCa ? { ca: fs.readFileSync(ssl.rootCa) } : {}),
        requestCert,
        // Only the two "require" modes refuse a handshake; the others ask and let the request through.
        rejectUnauthorized: ssl.clientAuthType === 'require_and_verify_client_cert',
        settings: { maxConcurrentStreams: this.config.http2.maxConcurrentStreams, maxHeaderListSize: GO_MAX_HEADER_BYTES },
        ...this.http1Options(),
      },
      (req, res) => this.dispatch(handler, req, res, true),
    );
    // The HTTP/1.1 fallback reads these from the server object, not from the options.
    Object.assign(server, { maxHeaderSize: GO_MAX_HEADER_BYTES, requireHostHeader: false });
    if (ssl.clientAuthType === 'require_any_client_cert' || ssl.clientAuthType === 'verify_client_cert_if_given') {
      const mode = ssl.clientAuthType;
      server.on('secureConnection', (socket: tls.TLSSocket) => {
        const given = Object.keys(socket.getPeerCertificate() ?? {}).length > 0;
        if (mode === 'require_any_client_cert' ? !given : given && !socket.authorized) socket.destroy();
      });
    }
    server.on('tlsClientError', (err: Error) => this.log.debug({ err: err.message }, 'TLS handshake failed'));
    this.trackSessions(server);
    return server;
  }

  private trackSessions(server: http2.Http2Server | http2.Http2SecureServer): void {
    server.on('session', (session: http2.Http2Session) => {
      this.sessions.add(session);
      session.once('close', () => this.sessions.delete(session));
    });
  }

  private dispatch(handler: HttpHandler, req: AnyRequest, res: AnyResponse, tls: boolean): void {
    if (req.httpVersionMajor === 1) {
      const socket = (req as http.IncomingMessage).socket;
      if (isRefused(socket)) return; // pipelined behind a refused request
      const refusal = goRefusalOf(req as http.IncomingMessage);
      if (refusal !== null) {
        refuseConnection(socket, refusal);
        this.log.debug({ request: `${req.method} ${req.url}`, answer: refusal.slice(0, refusal.indexOf('\r')) }, 'HTTP request refused');
        return;
      }
    }
    const state = { tls, remoteAddr: clientIp(req.socket?.remoteAddress) };
    handler(req, res, state).catch((err: unknown) => {
      this.log.error({ request: `${req.method} ${req.url}`, err: (err as Error).message }, 'middleware failed');
      if (!res.headersSent) {
        res.writeHead(this.config.internalErrorCode, { 'Content-Length': 0 });
        res.end();
      } else res.destroy();
    });
  }

  private async handle(req: AnyRequest, res: AnyResponse, tls: boolean, remoteAddr: string): Promise<void> {
    this.inFlight++;
    const accessLog = this.config.accessLogs && this.log.isLevelEnabled('info');
    const started = accessLog ? process.hrtime.bigint() : 0n;
    const measured = this.metrics?.begin();
    const writer = new ResponseWriter(res, req, this.log);
    let payload: RequestPayload | null = null;
    const clientGone = new Cancellation();
    // 'close' comes once; `on` spares the wrapper `once` makes per request.
    res.on('close', () => {
      if (!res.writableFinished) clientGone.cancel();
    });
    try {
      payload = await buildRequestPayload(req, {
        rawBody: this.config.rawBody,
        maxRequestSize: this.config.maxRequestSize,
        uploads: this.config.uploads,
        uploadOwner: this.uploadOwner,
        tls,
        remoteAddr,
      });
      await this.pool.exec({ codec: Flag.CODEC_JSON, context: payload.context, body: payload.body }, writer, clientGone);
      await afterIoCallbacks();
      writer.end();
    } catch (err) {
      this.fail(req, res, writer, err as Error, clientGone.aborted);
    } finally {
      if (--this.inFlight === 0 && this.drainedWaiters.length > 0) for (const drained of this.drainedWaiters.splice(0)) drained();
      measured?.(res.statusCode);
      if (payload) void payload.cleanup();
      if (accessLog) this.accessLog(req, res, writer, started, remoteAddr);
    }
  }

  private fail(req: AnyRequest, res: AnyResponse, writer: ResponseWriter, err: Error, clientGone: boolean): void {
    if (clientGone && (err as RrtsError).code === 'ERR_ABORTED') return;
    if (err instanceof AnswerCutError) return; // the writer sent what fit, ended the answer and logged why
    if (err instanceof RequestError) {
      if (!res.headersSent) {
        // As RoadRunner answers it: Go's http.Error with the handler's op, "serve_http: <error>\n".
        const body = `serve_http: ${err.message}\n`;
        const headers: Record<string, string | number> = {
          'Content-Type': 'text/plain; charset=utf-8',
          'X-Content-Type-Options': 'nosniff',
          'Content-Length': Buffer.byteLength(body),
        };
        if (req.httpVersionMajor < 2) headers['Connection'] = 'close'; // connection headers are illegal in HTTP/2
        res.writeHead(err.status, headers);
        res.end(body);
      }
      req.resume();
      return;
    }
    const where = `${req.method} ${req.url}`;
    let status = this.config.internalErrorCode;
    if (err instanceof SoftJobError) this.log.error({ request: where }, `worker error: ${err.message}`);
    else if (err instanceof NoFreeWorkersError || err instanceof QueueFullError) {
      if (err instanceof NoFreeWorkersError) this.metrics?.noFreeWorkers();
      status = this.config.noFreeWorkersCode;
      this.log.error({ request: where }, err.message);
    } else {
      if ((err as RrtsError).code === 'ERR_EXEC_TTL') status = this.config.execTtlCode;
      this.log.error({ request: where, code: (err as RrtsError).code }, `request failed: ${err.message}`);
    }
    if (writer.headersSent || res.headersSent) {
      res.destroy(); // the head is out: the client must see a broken response, not a complete one
      return;
    }
    const body = this.pool.config.debug ? err.message : '';
    const headers: Record<string, string | number> = { 'Content-Length': Buffer.byteLength(body), 'Content-Type': 'text/plain; charset=utf-8' };
    const overloaded = err instanceof NoFreeWorkersError || err instanceof QueueFullError;
    if (overloaded && this.config.overloadRetryAfter > 0) headers['Retry-After'] = this.config.overloadRetryAfter; // a balancer can tell overload from a 500
    res.writeHead(status, headers);
    res.end(body);
  }

  private accessLog(req: AnyRequest, res: AnyResponse, writer: ResponseWriter, started: bigint, remoteAddr: string): void {
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
    this.log.info(
      {
        status: res.statusCode,
        method: req.method,
        URI: req.url,
        remote_address: remoteAddr,
        read_bytes: Number(req.headers['content-length'] ?? 0),
        write_bytes: writer.bytesWritten,
        elapsed: elapsedMs,
        user_agent: req.headers['user-agent'] ?? '',
      },
      'http access log',
    );
  }
}

/**
 * Resolves in the check phase of this turn of the event loop, after its I/O callbacks. Answers are written there:
 * the worker has been handed its next job by then (it goes back to work without waiting for our socket write),
 * and the answers that came in during one turn leave together, so a client thread woken by the first finds the
 * others ready, which costs the kernel much less than a wake-up for each (about 5 us of system time per request
 * with 32 connections on 4 workers).
 */
function afterIoCallbacks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function boundAddress(server: Listener | null): AddressInfo | null {
  const a = server?.address();
  return a && typeof a === 'object' ? a : null;
}
