// What a request parser made of some bytes, in one comparable shape: rrts's H1Parser fed in memory, and llhttp as
// node:http runs it, fed over a real loopback socket (the reference oracle of the differential test).
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { DEFAULT_MAX_HEADER_BYTES, H1Parser, type H1ParseError, type RequestHead } from '../../../src/http/h1/parser.js';

export interface SeenRequest {
  method: string;
  target: string;
  version: string;
  rawHeaders: string[];
  /** latin1 of the body bytes. */
  body: string;
  trailers: string[];
  keepAlive: boolean;
}

export interface Outcome {
  requests: SeenRequest[];
  /** Why the input was refused ('' when it was not): an H1ParseError reason, or llhttp's HPE_ code. */
  error: string;
  /** The status the refusal answers with (0 when none). */
  status: number;
}

/** Feed `chunks` to a fresh H1Parser, then end the input: a request left half-read counts as refused. */
export function parseWithRrts(chunks: readonly Buffer[], limits?: ConstructorParameters<typeof H1Parser>[1]): Outcome {
  const outcome: Outcome = { requests: [], error: '', status: 0 };
  let current: SeenRequest | null = null;
  let body: Buffer[] = [];
  const parser = new H1Parser(
    {
      onRequest(head: RequestHead) {
        current = {
          method: head.method,
          target: head.target,
          version: `${head.versionMajor}.${head.versionMinor}`,
          rawHeaders: head.rawHeaders,
          body: '',
          trailers: [],
          keepAlive: head.keepAlive,
        };
        body = [];
      },
      onBody(chunk: Buffer) {
        body.push(Buffer.from(chunk));
      },
      onRequestEnd(trailers: string[] | null) {
        const done = current!;
        done.body = Buffer.concat(body).toString('latin1');
        done.trailers = trailers ?? [];
        outcome.requests.push(done);
        current = null;
      },
      onError(error: H1ParseError) {
        outcome.error = error.reason;
        outcome.status = error.status;
      },
    },
    limits,
  );
  for (const chunk of chunks) parser.execute(chunk);
  if (outcome.error === '' && parser.inRequest) {
    outcome.error = 'INCOMPLETE';
    outcome.status = 400;
  }
  return outcome;
}

/** A node:http server on loopback recording what its handlers see; each case on its own connection. */
export class LlhttpOracle {
  private server!: http.Server;
  private port = 0;
  private readonly bySocket = new Map<net.Socket, Outcome>();

  async start(): Promise<void> {
    // The same header limit as rrts (Go's), so only deliberate rules differ.
    this.server = http.createServer({ maxHeaderSize: DEFAULT_MAX_HEADER_BYTES, requestTimeout: 0 });
    const record = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      const outcome = this.outcomeOf(req.socket);
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        outcome.requests.push({
          method: req.method ?? '',
          target: req.url ?? '',
          version: req.httpVersion,
          rawHeaders: req.rawHeaders,
          body: Buffer.concat(chunks).toString('latin1'),
          trailers: req.rawTrailers,
          keepAlive: res.shouldKeepAlive,
        });
        res.end('ok');
      });
    };
    this.server.on('request', record);
    // Without these node answers 417 itself, or drops a CONNECT: rrts leaves both to the caller, so record them.
    this.server.on('checkExpectation', record);
    this.server.on('connect', (req: http.IncomingMessage, socket: net.Socket) => {
      const outcome = this.outcomeOf(socket);
      outcome.requests.push({
        method: req.method ?? '',
        target: req.url ?? '',
        version: req.httpVersion,
        rawHeaders: req.rawHeaders,
        body: '',
        trailers: [],
        keepAlive: false,
      });
      socket.destroy();
    });
    this.server.on('clientError', (error: NodeJS.ErrnoException, socket: net.Socket) => {
      const outcome = this.outcomeOf(socket);
      if (outcome.error === '') {
        outcome.error = error.code ?? 'ERROR';
        outcome.status = error.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
      }
      socket.destroy();
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  private outcomeOf(socket: net.Socket): Outcome {
    let outcome = this.bySocket.get(socket);
    if (outcome === undefined) {
      outcome = { requests: [], error: '', status: 0 };
      this.bySocket.set(socket, outcome);
    }
    return outcome;
  }

  /** Send `bytes`, half-close, and wait until the server has closed the connection. */
  async parse(bytes: Buffer): Promise<Outcome> {
    const serverSide = new Promise<net.Socket>((resolve) => this.server.once('connection', resolve));
    const client = net.connect(this.port, '127.0.0.1');
    const answers: Buffer[] = [];
    client.on('data', (chunk: Buffer) => answers.push(chunk));
    const closed = new Promise<void>((resolve, reject) => {
      // A guard against a hang, not a timing assertion: node closes every case's connection at once.
      const guard = setTimeout(() => reject(new Error('llhttp oracle: the connection was not closed')), 10_000);
      client.on('close', () => {
        clearTimeout(guard);
        resolve();
      });
      client.on('error', () => {});
    });
    const socket = await serverSide;
    client.end(bytes);
    await closed;
    // The server side may see its last events just after the client's close.
    if (!socket.destroyed) await new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const outcome = this.outcomeOf(socket);
    this.bySocket.delete(socket);
    // node answers some refusals itself (400 for a missing Host) without a clientError: the handler only says 200.
    if (outcome.error === '') {
      for (const match of Buffer.concat(answers)
        .toString('latin1')
        .matchAll(/HTTP\/1\.[01] (\d{3}) /g)) {
        const status = Number(match[1]);
        if (status !== 200 && status !== 100) {
          outcome.error = `HTTP_${status}`;
          outcome.status = status;
          break;
        }
      }
    }
    return outcome;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
