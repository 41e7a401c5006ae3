// The HTTP plugin: accepts requests on http.address (HTTP/1.1, or also cleartext HTTP/2 with http2.h2c) and on
// http.ssl.address (TLS, HTTP/2 by ALPN with HTTP/1.1 fallback), runs them through http.middleware, turns each into
// a job for the worker pool (request.ts), writes the worker's answer back (response.ts), and maps every failure to a
// response: no request is left hanging. HTTP/1.1 is served by rrts's own path (h1/connection.ts), HTTP/2 by node:http2.
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { HttpConfig, SslConfig } from '../config/types.js';
import type { Identity } from '../system/users.js';
import {
  AnswerCutError,
  ExecTtlError,
  JobCancelledError,
  NoFreeWorkersError,
  QueueFullError,
  RequestAbortedError,
  RequestError,
  RequestTooLargeError,
  RrtsError,
  SoftJobError,
} from '../errors.js';
import { Flag } from '../goridge/flags.js';
import type { WorkerPool } from '../pool/pool.js';
import { PoolPlugin } from '../pool/capabilities.js';
import type { Plugin } from '../plugin.js';
import { clientIp, requestPayload, type RequestPayload } from './request.js';
import { ResponseWriter } from './response.js';
import { GO_MAX_HEADER_BYTES, goRefusalOf, isRefused, listenOnAddress, refuseConnection, refuseMalformedRequests } from '../listen.js';
import type { HttpMetrics } from '../metrics/http-middleware.js';
import { Cancellation, whenDone } from '../worker/worker.js';
import { buildChain, type AnyRequest, type AnyResponse, type HttpHandler } from './middleware/index.js';
import { httpsRedirect } from './redirect.js';
import { h2cOrHttp1 } from './h2c.js';
import { H1Front } from './h1/connection.js';
import { settlesWithin } from '../time.js';

type Listener = net.Server;

/**
 * RRTS_HTTP1=node serves HTTP/1.1 with node:http instead of rrts's own path: only so that the bench can measure
 * both side by side (docs/benchmarks.md). Read once, here.
 */
const NODE_HTTP1 = process.env.RRTS_HTTP1 === 'node';

/** The http section: its listeners and middleware in front of its worker pool, whose capabilities it has (PoolPlugin). */
export class HttpPlugin extends PoolPlugin implements Plugin {
  readonly name = 'http';
  /** Listening servers: the plain one (http.address) first, then the TLS one. */
  private listeners: Listener[] = [];
  /** HTTP/1.1 servers (listening or fed by the h2c sniffer), for closeIdleConnections on stop. */
  private http1Servers: http.Server[] = [];
  /** rrts's own HTTP/1.1 fronts (plain, h2c's HTTP/1.1 side, TLS fallback), drained on stop. */
  private h1Fronts: H1Front[] = [];
  private sockets = new Set<net.Socket>();
  private sessions = new Set<http2.Http2Session>();
  private plainServer: Listener | null = null;
  private tlsServer: Listener | null = null;
  private inFlight = 0;
  /** whenNoneInFlight()'s callers, told when the last request in flight is answered */
  private drainedWaiters: Array<() => void> = [];
  /** Set when `http_metrics` is in http.middleware. */
  metrics: HttpMetrics | null = null;
  /** The innermost handler of the middleware chain: dispatch() calls handle() itself when no middleware wraps it. */
  private inner: HttpHandler | null = null;
  /** Answers whose jobs ended in this turn of the event loop, written in its check phase (writeAnswersDue). */
  private answersDue: Exchange[] = [];
  /** The list answersDue had in the last turn, kept for the next: no list is allocated a turn. */
  private spareAnswers: Exchange[] = [];

  constructor(
    private readonly config: HttpConfig,
    pool: WorkerPool,
    private readonly log: Logger,
    /** server.user's uid/gid, so the workers can read the upload temp files; null when they run as rrts's user. */
    private readonly uploadOwner: Identity | null = null,
  ) {
    super(pool);
  }

  /** The bound plain address (useful with port 0); the TLS one when only https is configured. */
  get address(): AddressInfo | null {
    return boundAddress(this.plainServer ?? this.tlsServer);
  }

  /** The bound TLS address, or null without http.ssl. */
  get tlsAddress(): AddressInfo | null {
    return boundAddress(this.tlsServer);
  }

  async serve(): Promise<void> {
    const inner: HttpHandler = (req, res, state) => whenDone((done) => this.handle(req, res, state.tls, state.remoteAddr, done));
    this.inner = inner;
    const app = buildChain(this.config, this.log, inner);
    const ssl = this.config.ssl;
    if (this.config.address !== '') {
      const plain = ssl?.redirect ? httpsRedirect(ssl.address) : app;
      const server = this.config.http2.h2c ? this.createH2cServer(plain) : this.createHttp1Listener(plain);
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
    for (const front of this.h1Fronts) front.closeIdle();
    for (const session of this.sessions) session.close(); // GOAWAY: running streams may finish
    await settlesWithin(this.whenNoneInFlight(), graceMs);
    for (const server of this.http1Servers) {
      server.closeAllConnections();
      if (!listeners.includes(server)) server.close(() => {}); // fed by the h2c sniffer: only its timers to clear
    }
    for (const front of this.h1Fronts) front.closeAll();
    for (const session of this.sessions) session.destroy();
    for (const socket of this.sockets) socket.destroy();
    await Promise.all(closed);
    this.http1Servers = [];
    this.h1Fronts = [];
    this.plainServer = null;
    this.tlsServer = null;
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
      keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
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

  /** The plain HTTP/1.1 listener. */
  private createHttp1Listener(handler: HttpHandler): net.Server {
    if (NODE_HTTP1) return this.createHttp1Server(handler, false);
    const front = this.createH1Front(handler, false);
    // allowHalfOpen: H1Connection decides what a client's half-close means (the request is cancelled or the
    // connection ends), rather than node closing our side at once.
    return net.createServer({ allowHalfOpen: true }, (socket) => front.serve(socket));
  }

  private createH1Front(handler: HttpHandler, tls: boolean): H1Front {
    const requestTimeoutMs = this.config.readTimeout;
    const front = new H1Front((req, res) => this.dispatch(handler, req, res, tls), {
      tls,
      headersTimeoutMs: Math.min(this.config.readHeaderTimeout, requestTimeoutMs),
      requestTimeoutMs,
      keepAliveTimeoutMs: KEEP_ALIVE_TIMEOUT_MS,
      maxHeaderBytes: GO_MAX_HEADER_BYTES,
      log: this.log,
    });
    this.h1Fronts.push(front);
    return front;
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
    const settings = { maxConcurrentStreams: this.config.http2.maxConcurrentStreams, maxHeaderListSize: GO_MAX_HEADER_BYTES };
    const h2 = http2.createServer({ settings }, (req, res) => this.dispatch(handler, req, res, false));
    this.trackSessions(h2);
    const firstBytesTimeout = Math.min(this.config.readHeaderTimeout, this.config.readTimeout);
    if (!NODE_HTTP1) {
      const front = this.createH1Front(handler, false);
      return h2cOrHttp1((socket) => front.serve(socket), h2, firstBytesTimeout);
    }
    const http1 = this.createHttp1Server(handler, false);
    // Node starts the headersTimeout/requestTimeout checks of an http.Server on 'listening'; this one never listens
    // (the sniffer hands it connections), so start them by hand. stop() closes it, which clears the interval.
    http1.emit('listening');
    return h2cOrHttp1((socket) => http1.emit('connection', socket), h2, firstBytesTimeout);
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
    if (!NODE_HTTP1) this.serveTlsHttp1(server, handler);
    return server;
  }

  /**
   * Connections that did not pick h2 by ALPN go to rrts's HTTP/1.1 path instead of node's fallback: node's http2
   * listener still gets the h2 ones (allowHTTP1 stays on so that ALPN offers http/1.1).
   */
  private serveTlsHttp1(server: http2.Http2SecureServer, handler: HttpHandler): void {
    const front = this.createH1Front(handler, true);
    const [http2Listener] = server.listeners('secureConnection') as Array<(this: http2.Http2SecureServer, socket: tls.TLSSocket) => void>;
    if (http2Listener === undefined) throw new Error('node:http2 secure server without its connection listener');
    server.removeListener('secureConnection', http2Listener);
    server.prependListener('secureConnection', function (this: http2.Http2SecureServer, socket: tls.TLSSocket) {
      if (socket.alpnProtocol === 'h2') http2Listener.call(this, socket);
      else front.serve(socket);
    });
  }

  private trackSessions(server: http2.Http2Server | http2.Http2SecureServer): void {
    server.on('session', (session: http2.Http2Session) => {
      this.sessions.add(session);
      session.once('close', () => this.sessions.delete(session));
    });
  }

  private dispatch(handler: HttpHandler, req: AnyRequest, res: AnyResponse, tls: boolean): void {
    // rrts's own path refuses these in its parser; node:http's requests are checked here.
    if (req instanceof http.IncomingMessage) {
      const socket = req.socket;
      if (isRefused(socket)) return; // pipelined behind a refused request
      const refusal = goRefusalOf(req);
      if (refusal !== null) {
        refuseConnection(socket, refusal);
        this.log.debug({ request: `${req.method} ${req.url}`, answer: refusal.slice(0, refusal.indexOf('\r')) }, 'HTTP request refused');
        return;
      }
    }
    if (handler === this.inner) {
      // no middleware: no promise for the chain (handle() answers every failure itself)
      try {
        this.handle(req, res, tls, clientIp(req.socket?.remoteAddress), null);
      } catch (err) {
        this.handlerFailed(req, res, err as Error);
      }
      return;
    }
    const state = { tls, remoteAddr: clientIp(req.socket?.remoteAddress) };
    handler(req, res, state).catch((err: unknown) => this.handlerFailed(req, res, err as Error));
  }

  /** The handler threw: log it, and answer internal_error_code if the head is not out yet, else cut the answer. */
  private handlerFailed(req: AnyRequest, res: AnyResponse, err: Error): void {
    this.log.error({ request: `${req.method} ${req.url}`, err: err.message }, 'middleware failed');
    if (!res.headersSent) {
      res.writeHead(this.config.internalErrorCode, { 'Content-Length': 0 });
      res.end();
    } else res.destroy();
  }

  /**
   * One request: its payload, its job on the pool, its answer, then the bookkeeping (requestOver). Callbacks, not
   * promises: a request without a body goes from here to its worker and back without a microtask turn. `settled`
   * (the middleware chain's promise) is told once the request is over, with an error only if answering it threw.
   */
  private handle(req: AnyRequest, res: AnyResponse, tls: boolean, remoteAddr: string, settled: ((err: Error | null) => void) | null): void {
    this.inFlight++;
    const accessLog = this.config.accessLogs && this.log.isLevelEnabled('info');
    const started = accessLog ? process.hrtime.bigint() : 0n;
    const measured = this.metrics?.begin();
    const writer = new ResponseWriter(res, req, this.log);
    const exchange = new Exchange(req, res, writer, remoteAddr, accessLog, started, measured, settled);
    // 'close' comes once; `on` spares the wrapper `once` makes per request.
    res.on('close', () => {
      if (!res.writableFinished) exchange.cancel();
    });
    let built: RequestPayload | Promise<RequestPayload>;
    try {
      built = requestPayload(req, {
        rawBody: this.config.rawBody,
        maxRequestSize: this.config.maxRequestSize,
        uploads: this.config.uploads,
        uploadOwner: this.uploadOwner,
        tls,
        remoteAddr,
      });
    } catch (err) {
      this.requestOver(exchange, err as Error);
      return;
    }
    if (built instanceof Promise) {
      // a body to read first; then the same way as the others
      built.then(
        (payload) => this.sendJob(exchange, payload),
        (err: Error) => this.requestOver(exchange, err),
      );
    } else this.sendJob(exchange, built);
  }

  private sendJob(exchange: Exchange, payload: RequestPayload): void {
    exchange.payload = payload;
    try {
      this.pool.run({ codec: Flag.CODEC_JSON, context: payload.context, body: payload.body }, exchange.writer, exchange, (err) => {
        if (err) this.requestOver(exchange, err);
        else if (this.answersDue.push(exchange) === 1) setImmediate(this.writeAnswersDue);
      });
    } catch (err) {
      this.requestOver(exchange, err as Error); // a bug in the pool: the request is still answered
    }
  }

  /**
   * Runs in the check phase of the turn, after its I/O callbacks: the answers whose jobs ended in the turn are
   * written there. The worker has been handed its next job by then (it goes back to work without waiting for our
   * socket write), and the answers that came in during one turn leave together, so a client thread woken by the
   * first finds the others ready, which costs the kernel much less than a wake-up for each (about 5 us of system
   * time per request with 32 connections on 4 workers). One immediate a turn, not one a request.
   */
  private readonly writeAnswersDue = (): void => {
    const due = this.answersDue;
    this.answersDue = this.spareAnswers; // answers due during the loop below leave in the next check phase
    for (const exchange of due) {
      let err: Error | null = null;
      try {
        exchange.writer.end();
      } catch (e) {
        err = e as Error;
      }
      this.requestOver(exchange, err);
    }
    due.length = 0;
    this.spareAnswers = due;
  };

  /** The request is over: a failure is answered (fail()), then what every request ends with. Never throws. */
  private requestOver(exchange: Exchange, err: Error | null): void {
    const { req, res, writer } = exchange;
    let failed: Error | null = null;
    try {
      if (err) this.fail(req, res, writer, err, exchange.aborted);
    } catch (e) {
      failed = e as Error;
    }
    try {
      if (--this.inFlight === 0 && this.drainedWaiters.length > 0) for (const drained of this.drainedWaiters.splice(0)) drained();
      exchange.measured?.(res.statusCode);
      if (exchange.payload) void exchange.payload.cleanup();
      if (exchange.accessLog) this.accessLog(req, res, writer, exchange.started, exchange.remoteAddr);
    } catch (e) {
      failed ??= e as Error;
    }
    if (exchange.settled) exchange.settled(failed);
    else if (failed) this.handlerFailed(req, res, failed);
  }

  /** Answers a failed request with the status its error's class maps to, and logs why. */
  private fail(req: AnyRequest, res: AnyResponse, writer: ResponseWriter, err: Error, clientGone: boolean): void {
    if (clientGone && err instanceof JobCancelledError) return;
    if (err instanceof AnswerCutError) return; // the writer sent what fit, ended the answer and logged why
    // RoadRunner answers every other failure with internal_error_code; rrts's two extra codes single out two of them
    const status =
      err instanceof RequestTooLargeError
        ? 413
        : err instanceof RequestAbortedError
          ? 400
          : err instanceof RequestError
            ? 500
            : err instanceof NoFreeWorkersError || err instanceof QueueFullError
              ? this.config.noFreeWorkersCode
              : err instanceof ExecTtlError
                ? this.config.execTtlCode
                : this.config.internalErrorCode;
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
        res.writeHead(status, headers);
        res.end(body);
      }
      req.resume();
      return;
    }
    const where = `${req.method} ${req.url}`;
    if (err instanceof SoftJobError) this.log.error({ request: where }, `worker error: ${err.message}`);
    else if (err instanceof NoFreeWorkersError || err instanceof QueueFullError) {
      if (err instanceof NoFreeWorkersError) this.metrics?.noFreeWorkers();
      this.log.error({ request: where }, err.message);
    } else this.log.error({ request: where, code: err instanceof RrtsError ? err.code : undefined }, `request failed: ${err.message}`);
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

/** One request on its way through the pool. It is its job's Cancellation too: the client went away. */
class Exchange extends Cancellation {
  payload: RequestPayload | null = null;

  constructor(
    readonly req: AnyRequest,
    readonly res: AnyResponse,
    readonly writer: ResponseWriter,
    readonly remoteAddr: string,
    readonly accessLog: boolean,
    readonly started: bigint,
    readonly measured: ((status: number) => void) | undefined,
    readonly settled: ((err: Error | null) => void) | null,
  ) {
    super();
  }
}

/** Idle keep-alive connections are closed after this long (node:http's keepAliveTimeout as rrts has always set it). */
const KEEP_ALIVE_TIMEOUT_MS = 60_000;

function boundAddress(server: Listener | null): AddressInfo | null {
  const a = server?.address();
  return a && typeof a === 'object' ? a : null;
}
