// rrts's own HTTP/1.1 server side: H1Parser on each socket's reads, one H1Request/H1Response pair per request handed
// to the plugin's dispatch, requests answered one at a time in order (pipelined ones wait, as in Go's server), the
// timeouts of http.read_header_timeout / read_timeout / the idle keep-alive, and a graceful drain for stop.
// A plain connection that keeps alive is moved, when its second request starts, into a socket read with `onread`
// (adopt.ts) into one buffer all connections share.
import type net from 'node:net';
import type { Logger } from 'pino';
import { GO_REFUSAL, refuseConnection } from '../../listen.js';
import { adoptConnection } from '../../native/adopt.js';
import { H1Parser, type H1ParseError, type RequestHead } from './parser.js';
import { H1Request, type BodySource } from './request.js';
import { currentDateLine, H1Response, type ResponseSink } from './response.js';

export type H1Dispatch = (req: H1Request, res: H1Response) => void;

export interface H1FrontOptions {
  /** The connection is TLS: CONNECT's target becomes an https:// URI. */
  tls: boolean;
  /** A request head must be whole this long after its first byte (the first request: after the accept). */
  headersTimeoutMs: number;
  /** A request (head and body) must be whole this long after its first byte. */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this long. */
  keepAliveTimeoutMs: number;
  maxHeaderBytes: number;
  log: Logger;
}

/** Held pipelined bytes beyond which the socket is not read until the requests before them are answered. */
const HELD_LIMIT = 64 * 1024;

/**
 * What every plain connection of this process reads into: the parser copies what it keeps before the read returns,
 * and one read's callback ends before the next read, so one buffer serves them all (64 KiB: as much as libuv's own
 * reads ask for).
 */
let sharedReadBuffer: Buffer | null = null;

const enum Phase {
  /** Waiting for the first byte of the next request (keep-alive). */
  Idle,
  /** Reading a request: head or body. */
  Reading,
  /** The request is read; its answer is being made. */
  Answering,
}

/** Go's answer to a request its reader refuses; the server closes the connection after it. */
function refusalText(error: H1ParseError): string {
  switch (error.reason) {
    case 'HEADERS_TOO_LARGE':
    case 'TOO_MANY_HEADERS':
      return GO_REFUSAL.headerTooLarge;
    case 'UNSUPPORTED_TRANSFER_ENCODING':
      return GO_REFUSAL.unsupportedTransferEncoding;
    case 'MISSING_HOST':
      return GO_REFUSAL.missingHost;
    case 'UNSUPPORTED_VERSION':
    case 'H2_PREFACE': {
      // Go's statusError: "HTTP/1.1 505 HTTP Version Not Supported: unsupported protocol version"
      const text = '505 HTTP Version Not Supported: unsupported protocol version';
      return `HTTP/1.1 ${text}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n${text}`;
    }
    default:
      return GO_REFUSAL.badRequest;
  }
}

/** Every HTTP/1.1 connection of one listener (or of the h2c sniffer's HTTP/1.1 side). */
export class H1Front {
  private readonly connections = new Set<H1Connection>();
  private checker: NodeJS.Timeout | null = null;
  /** stop() has begun: answers say Connection: close and no connection takes another request. */
  draining = false;

  constructor(
    readonly dispatch: H1Dispatch,
    readonly options: H1FrontOptions,
  ) {}

  serve(accepted: net.Socket): void {
    if (this.draining) {
      accepted.destroy();
      return;
    }
    accepted.setNoDelay(true);
    this.connections.add(new H1Connection(this, accepted));
    if (this.checker === null) {
      const o = this.options;
      // One timer for all connections, as node:http checks its timeouts: a few checks per shortest timeout.
      const every = Math.max(50, Math.min(30_000, Math.floor(Math.min(o.headersTimeoutMs, o.requestTimeoutMs, o.keepAliveTimeoutMs) / 4)));
      this.checker = setInterval(() => this.checkTimeouts(), every).unref();
    }
  }

  /** Close the connections waiting for a request; the others close after their answer. */
  closeIdle(): void {
    this.draining = true;
    for (const connection of this.connections) connection.drain();
  }

  /** A connection's socket closed. */
  closed(connection: H1Connection): void {
    this.connections.delete(connection);
  }

  /** Close every connection now. */
  closeAll(): void {
    this.draining = true;
    for (const connection of this.connections) connection.socket.destroy();
    this.connections.clear();
    if (this.checker !== null) clearInterval(this.checker);
    this.checker = null;
  }

  private checkTimeouts(): void {
    const now = Date.now();
    for (const connection of this.connections) connection.checkTimeouts(now);
  }
}

class H1Connection implements BodySource, ResponseSink {
  private readonly parser: H1Parser;
  private req: H1Request | null = null;
  private res: H1Response | null = null;
  private requestRead = false;
  private responseDone = false;
  private phase = Phase.Reading;
  /** When the current phase began (Date.now()): the accept, the first byte of a request, the last answer. */
  private since = Date.now();
  /** No more requests on this connection: it closes once the current answer is out. */
  private closing = false;
  private resumeScheduled = false;
  /** The connection's socket: the accepted one, or (moveToOwnSocket) the one rrts made for it. */
  socket: net.Socket;
  /** This connection's socket is read with onread (moveToOwnSocket), or never will be (TLS). */
  private ownSocket: boolean;
  private readonly onDataListener = (chunk: Buffer): void => this.onData(chunk);
  private readonly onEndListener = (): void => this.onEnd();
  private readonly onDrainListener = (): void => void this.res?.emit('drain');
  private readonly onErrorListener = (): void => void this.socket.destroy();
  private readonly onCloseListener = (): void => this.onClose();

  constructor(
    private readonly front: H1Front,
    accepted: net.Socket,
  ) {
    this.parser = new H1Parser(
      {
        onRequest: (head) => this.onRequest(head),
        onBody: (chunk) => this.req?.pushBody(chunk),
        onRequestEnd: () => this.onRequestEnd(),
        onError: (error) => this.onParseError(error),
      },
      { maxHeaderBytes: front.options.maxHeaderBytes },
    );
    this.socket = accepted;
    // TLS stays on its stream: its reads are the TLS layer's, not the socket's.
    this.ownSocket = (accepted as net.Socket & { encrypted?: boolean }).encrypted === true;
    accepted.on('data', this.onDataListener);
    this.listen(accepted);
  }

  private listen(socket: net.Socket): void {
    socket.on('end', this.onEndListener);
    socket.on('drain', this.onDrainListener);
    socket.on('error', this.onErrorListener);
    socket.on('close', this.onCloseListener);
  }

  private unlisten(socket: net.Socket): void {
    socket.off('data', this.onDataListener);
    socket.off('end', this.onEndListener);
    socket.off('drain', this.onDrainListener);
    socket.off('error', this.onErrorListener);
    socket.off('close', this.onCloseListener);
  }

  /**
   * When a second request starts on a keep-alive connection, move it into a socket read with onread
   * (adoptConnection). Not at the accept: a connection used for one request (`Connection: close`, nginx's default
   * towards upstreams) would pay the second socket's set-up for nothing (h1-connection.mjs --close: ~+30 µs per
   * connection on a loaded machine). Not at the end of the first answer either: what ends it may still act on the
   * socket it holds (response.ts closes it after a short body). Waits while the accepted socket still has answer
   * bytes to write, or is ending.
   */
  private moveToOwnSocket(): void {
    const old = this.socket;
    if (this.ownSocket || this.closing || old.destroyed || old.writableEnded || old.writableLength > 0) return;
    this.ownSocket = true;
    // Its 'data' listener goes first: adoptConnection's read() of the buffered bytes would emit them to it too.
    this.unlisten(old);
    const adopted = adoptConnection(old, (sharedReadBuffer ??= Buffer.allocUnsafe(HELD_LIMIT)), (n, buffer) => this.onRead(n, buffer));
    if (adopted === null) {
      old.on('data', this.onDataListener);
      this.listen(old);
      return;
    }
    const socket = adopted.socket;
    this.socket = socket;
    this.listen(socket);
    if (adopted.early.length > 0) {
      // Bytes the accepted socket read after the chunk being handled: parsed after it, before any read of the new
      // socket (the loop's next poll); a paused parser appends them to what it holds.
      const early = adopted.early;
      queueMicrotask(() => {
        for (const chunk of early) if (!socket.destroyed) this.onData(chunk);
      });
    }
  }

  private onData(chunk: Buffer): void {
    // The first bytes of a second request: the move happens here, before they are parsed (they are Node's own
    // buffer, parsed as any 'data' chunk), once nothing of the answered request can still use the socket.
    if (this.phase === Phase.Idle && !this.ownSocket && this.req === null) this.moveToOwnSocket();
    this.parse(chunk, false);
  }

  /** A read into the shared buffer (adopted sockets): parsed before the call returns, kept parts copied. */
  private onRead(bytesRead: number, buffer: Buffer): void {
    this.parse(buffer.subarray(0, bytesRead), true);
  }

  /** `transient`: the chunk's memory is read into again once this returns (executeTransient). */
  private parse(chunk: Buffer, transient: boolean): void {
    if (this.phase === Phase.Idle) {
      this.phase = Phase.Reading;
      this.since = Date.now();
    }
    if (transient) this.parser.executeTransient(chunk);
    else this.parser.execute(chunk);
    // pause(), never a false return from onread: Readable's paused state is what bodyWanted and nextRequest look at.
    if (this.parser.isPaused && this.parser.heldBytes > HELD_LIMIT) this.socket.pause();
  }

  private onRequest(head: RequestHead): void {
    const front = this.front;
    if (head.expectUnsupported) {
      // Go's sendExpectationFailed: a 417 without calling the handler, then the connection is closed.
      this.parser.pause();
      this.closing = true;
      this.socket.end(`HTTP/1.1 417 Expectation Failed\r\nConnection: close\r\n${currentDateLine()}Content-Length: 0\r\n\r\n`, 'latin1');
      return;
    }
    // CONNECT's authority form (`host:22`) as an absolute URI, so the worker's uri names that host and port.
    const target = head.method === 'CONNECT' && head.targetForm === 'authority' ? `${front.options.tls ? 'https' : 'http'}://${head.target}` : head.target;
    if (this.phase !== Phase.Reading) {
      this.phase = Phase.Reading;
      this.since = Date.now();
    }
    const req = new H1Request(head, this.socket, this, target);
    const res = new H1Response(req, this.socket, this, head.keepAlive && !front.draining);
    this.req = req;
    this.res = res;
    this.requestRead = false;
    this.responseDone = false;
    front.dispatch(req, res);
  }

  private onRequestEnd(): void {
    const req = this.req;
    if (req === null) return; // a 417 was sent
    this.requestRead = true;
    req.endBody();
    if (this.responseDone) {
      this.nextRequest();
      return;
    }
    // Later pipelined requests wait in the parser until this one is answered.
    this.parser.pause();
    this.phase = Phase.Answering;
  }

  private onParseError(error: H1ParseError): void {
    this.closing = true;
    const req = this.req;
    if (req !== null && !this.requestRead) {
      // The body broke the protocol while its request was being handled: the handler sees an aborted body.
      this.front.options.log.debug({ request: `${req.method} ${req.url}`, err: error.message }, 'HTTP request body refused');
      req.abort();
      if (this.responseDone) this.socket.destroySoon();
      return;
    }
    this.front.options.log.debug({ err: error.message, code: error.code }, 'malformed HTTP request refused');
    refuseConnection(this.socket, refusalText(error));
  }

  responseFinished(response: H1Response, close: boolean): void {
    if (response !== this.res) return;
    this.responseDone = true;
    const req = this.req!;
    if (close || this.closing || this.front.draining) {
      this.closeAfterAnswer();
      return;
    }
    if (!this.requestRead) {
      // Answered before the body was read. Without the 100 Continue the client may never send it: close, as Go
      // does; otherwise the rest of the body is read and dropped (as node:http dumps it) and the connection kept.
      if (!req.continueSent) {
        this.closeAfterAnswer();
        return;
      }
      req.discarding = true;
      this.socket.resume();
      return;
    }
    this.nextRequest();
  }

  private closeAfterAnswer(): void {
    this.closing = true;
    this.parser.pause();
    this.socket.destroySoon();
  }

  /** The request is read and answered: on to the next one (held pipelined bytes are parsed in a microtask). */
  private nextRequest(): void {
    this.req = null;
    this.res = null;
    this.phase = Phase.Idle;
    this.since = Date.now();
    if (!this.parser.isPaused) return; // the parser is still running: it goes on by itself
    if (this.resumeScheduled) return;
    this.resumeScheduled = true;
    // Not from inside end(): a long run of pipelined requests answered at once must not nest in the stack.
    queueMicrotask(this.resumeParsing);
  }

  /** nextRequest's microtask; made once per connection rather than once per request. */
  private readonly resumeParsing = (): void => {
    this.resumeScheduled = false;
    if (this.closing || this.socket.destroyed) return;
    this.parser.resume();
    if (!this.parser.isPaused && this.socket.isPaused()) this.socket.resume();
  };

  bodyWanted(req: H1Request): void {
    if (req !== this.req || this.socket.destroyed) return;
    if (!req.continueSent) {
      // Go sends 100 Continue when the handler first reads the body; a refusal before it (413) gets no body sent.
      req.continueSent = true;
      if (this.res !== null && !this.res.headersSent) this.socket.write('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
    }
    if (!req.backedUp && this.socket.isPaused() && !(this.parser.isPaused && this.parser.heldBytes > HELD_LIMIT)) this.socket.resume();
  }

  bodyPaused(req: H1Request): void {
    if (req === this.req && req.backedUp) this.socket.pause();
  }

  /**
   * The client half-closed. In the middle of a request, or while one is answered, it has gone (Go's background read
   * cancels the request on EOF, node:http aborts it): the connection is closed and the job cancelled. Between
   * requests the connection just ends; inside a head it gets Go's 400.
   */
  private onEnd(): void {
    if (this.req !== null && !this.responseDone) {
      this.socket.destroy();
      return;
    }
    this.closing = true;
    if (this.parser.inRequest && this.req === null) refuseConnection(this.socket, GO_REFUSAL.badRequest);
    else this.socket.end();
  }

  private onClose(): void {
    this.front.closed(this);
    this.closing = true;
    const req = this.req;
    if (req !== null && !this.requestRead) req.abort();
    this.res?.closedUnder();
  }

  /** stop(): an idle connection closes now, a busy one after its answer. */
  drain(): void {
    if (this.req === null && !this.parser.inRequest) {
      this.closing = true;
      this.socket.destroy();
      return;
    }
    const res = this.res;
    if (res !== null && !res.headersSent) res.shouldKeepAlive = false;
  }

  checkTimeouts(now: number): void {
    const o = this.front.options;
    const elapsed = now - this.since;
    let expired = false;
    if (this.phase === Phase.Idle && !this.parser.inRequest) expired = elapsed > o.keepAliveTimeoutMs;
    else if (this.phase !== Phase.Answering) {
      // Closed without an answer, as Go does when a read deadline passes (docs/http.md).
      expired = elapsed > o.requestTimeoutMs || (this.req === null && elapsed > o.headersTimeoutMs);
    }
    if (!expired) return;
    o.log.debug({ phase: this.phase === Phase.Idle ? 'idle' : this.req === null ? 'headers' : 'body' }, 'HTTP connection timed out: closed');
    this.closing = true;
    this.socket.destroy();
  }
}
