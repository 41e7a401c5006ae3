// The RPC plugin: goridge RPC (docs/protocol.md §5) on `rpc.listen`, what the PHP RPC client, `rrts workers` and
// `rrts reset` talk to. Services register methods by name; every connection decodes frames on its own, runs its
// calls concurrently and answers each with one write, matched by seq. A connection that breaks the protocol is
// closed; nothing a client sends can stop the server or disturb the other connections. Memory is bounded across
// connections: their number is capped and the bytes they hold come out of one budget (docs/rpc.md).
import fs from 'node:fs';
import net from 'node:net';
import type { Logger } from 'pino';
import { Flag } from '../goridge/flags.js';
import { FrameDecoder, HEADER_SIZE, type Frame } from '../goridge/frame.js';
import { decodeRpc, encodeRpc, type RpcMessage } from '../goridge/messages.js';
import { formatListenAddress, isLoopback, parseListenAddress, type ListenAddress } from '../address.js';
import { assertCodecSupported, decodeArgument, encodeResult, pickCodec, protoUnsupportedMessage, type ProtoSignature } from './codec.js';
import { AddressError, RpcCodecError, RpcMethodError, RrtsError } from '../errors.js';
import { listenOn } from '../listen.js';
import type { Plugin } from '../plugin.js';

/**
 * An RPC method; it may answer directly or with a promise (`unknown` covers both). One that takes protobuf messages
 * names their types in `proto` (see protoMethod).
 */
export type RpcMethod = ((arg: unknown) => unknown) & { proto?: ProtoSignature };

/** A method whose argument and result are protobuf messages: it accepts the protobuf codec (and JSON of the same). */
export function protoMethod(proto: ProtoSignature, fn: (arg: unknown) => unknown): RpcMethod {
  return Object.assign(fn, { proto });
}

/** One request frame may carry at most this much (method name and argument). */
export const MAX_RPC_PAYLOAD = 32 * 1024 * 1024;
/** Calls running at once on one connection before it stops reading (backpressure on a flooding client). */
const MAX_IN_FLIGHT = 256;

export interface RpcLimits {
  /**
   * Open connections at once; more are closed as they are accepted. Every PHP worker holding an RPC client keeps
   * one open, so this is well above any pool size; an idle connection costs a few KiB.
   */
  maxConnections: number;
  /**
   * Bytes all connections together may hold: each frame from its header on, at the size it announces (so a frame
   * that would not fit is refused before its payload is sent), until its call has answered. Four frames of the
   * largest size: the core calls (informer, resetter, rpc) carry a few hundred bytes, so only a client sending huge
   * payloads ever meets it.
   */
  bufferBudget: number;
  /** Frames up to this size may use the whole budget; bigger ones leave `smallFrameReserve` free. */
  smallFrame: number;
  /** Kept for small frames, so big frames filling the budget cannot lock out `rrts workers` or a metrics call. */
  smallFrameReserve: number;
}

export const DEFAULT_RPC_LIMITS: Readonly<RpcLimits> = Object.freeze({
  maxConnections: 1024,
  bufferBudget: 4 * MAX_RPC_PAYLOAD,
  smallFrame: 1024 * 1024,
  smallFrameReserve: 16 * 1024 * 1024,
});

/** How long a refused connection is still read (and the bytes dropped) so its client gets the error frame, not a reset. */
const REFUSED_LINGER_MS = 5_000;

export class RpcPlugin implements Plugin {
  readonly name = 'rpc';
  private readonly services = new Map<string, Map<string, RpcMethod>>();
  private readonly sockets = new Set<net.Socket>();
  private server: net.Server | null = null;
  private readonly listenAddress: ListenAddress;
  /** unix: the inode of the socket file we created, so stop() never removes someone else's. */
  private socketInode: number | null = null;
  private readonly limits: RpcLimits;
  private readonly budget: BufferBudget;

  constructor(
    readonly listen: string,
    private readonly log: Logger,
    cwd: string,
    limits: Partial<RpcLimits> = {},
  ) {
    this.listenAddress = parseListenAddress(listen, cwd);
    this.limits = { ...DEFAULT_RPC_LIMITS, ...limits };
    this.budget = new BufferBudget(this.limits);
  }

  /** Bytes the connections hold now, out of `limits.bufferBudget`. */
  get bufferedBytes(): number {
    return this.budget.used;
  }

  /** Connections open now (refused ones included until they are closed). */
  get connections(): number {
    return this.sockets.size;
  }

  /** Add a service's methods, called as `service.Method`. A service name can be registered once. */
  register(service: string, methods: Record<string, RpcMethod>): void {
    if (this.services.has(service)) throw new Error(`rpc: service already defined: ${service}`);
    const table = new Map<string, RpcMethod>();
    for (const [name, fn] of Object.entries(methods)) if (typeof fn === 'function') table.set(name, fn);
    this.services.set(service, table);
  }

  /** Where the plugin listens, with the real port once serving (`tcp://127.0.0.1:0` becomes the bound port). */
  get address(): string {
    const bound = this.server?.address();
    if (bound && typeof bound === 'object' && this.listenAddress.kind === 'tcp') {
      return formatListenAddress({ kind: 'tcp', host: bound.address, port: bound.port });
    }
    return formatListenAddress(this.listenAddress);
  }

  async serve(): Promise<void> {
    if (this.server) return;
    const server = net.createServer((socket) => this.accept(socket));
    server.maxConnections = this.limits.maxConnections;
    server.on('drop', (peer?: net.DropArgument) => {
      const from = peer?.remoteAddress ? `${peer.remoteAddress}:${peer.remotePort}` : 'unix socket';
      this.log.warn({ peer: from, connections: this.limits.maxConnections }, 'rpc connection refused: too many open RPC connections');
    });
    const address = this.listenAddress;
    if (address.kind === 'unix') {
      await clearStaleSocket(address.path);
      await listenOn(server, { path: address.path });
      fs.chmodSync(address.path, 0o600);
      this.socketInode = fs.statSync(address.path).ino;
    } else {
      await listenOn(server, { host: address.host || undefined, port: address.port });
      if (!isLoopback(address.host)) {
        this.log.warn(
          { address: this.address },
          'rpc.listen is reachable from other machines and RPC has no authentication: anyone who can connect can reset workers and read the config; prefer 127.0.0.1 or a unix socket',
        );
      }
    }
    server.on('error', (err) => this.log.error(`rpc listener error: ${err.message}`));
    this.server = server;
    this.log.debug({ address: this.address }, 'rpc plugin was started');
  }

  /** Stop listening and close every connection; calls still running finish but their answers are dropped. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
    this.removeSocketFile();
  }

  /** unix: remove the socket file serve() created (synchronous: the forced exit calls it right before exiting). */
  removeSocketFile(): void {
    if (this.listenAddress.kind !== 'unix' || this.socketInode === null) return;
    try {
      if (fs.statSync(this.listenAddress.path).ino === this.socketInode) fs.unlinkSync(this.listenAddress.path);
    } catch {
      /* already gone */
    }
    this.socketInode = null;
  }

  /** Run one call and build its response frame; never rejects (failures become error frames). */
  async answer(msg: RpcMessage): Promise<Buffer> {
    const codec = pickCodec(msg.flags);
    const reply = (flags: number, body: Buffer): Buffer => encodeRpc({ seq: msg.seq, method: msg.method, flags, body });
    try {
      assertCodecSupported(codec);
      const method = this.lookup(msg.method);
      if (codec.name === 'proto' && !method.proto) throw new RpcCodecError(protoUnsupportedMessage(msg.method));
      const result = await method(decodeArgument(codec, msg.body, method.proto));
      return reply(codec.flag, encodeResult(codec, result, method.proto));
    } catch (err) {
      return reply(codec.flag | Flag.ERROR, Buffer.from(this.errorText(msg.method, err), 'utf8'));
    }
  }

  /**
   * The text of an error reply, by the error's class: rrts's own errors carry what the caller should read (net/rpc's,
   * RoadRunner's or rrts's words); anything else is a bug in a method, logged with its stack, its message sent.
   */
  private errorText(method: string, err: unknown): string {
    if (err instanceof RrtsError) return err.message;
    this.log.error({ method, err: err instanceof Error ? err.stack : String(err) }, `rpc: ${method} failed unexpectedly`);
    return err instanceof Error ? err.message : String(err);
  }

  /** The method; an RpcMethodError with net/rpc's text when there is none. */
  private lookup(serviceMethod: string): RpcMethod {
    const dot = serviceMethod.lastIndexOf('.');
    if (dot < 0) throw new RpcMethodError(`rpc: service/method request ill-formed: ${serviceMethod}`);
    const service = this.services.get(serviceMethod.slice(0, dot));
    if (!service) throw new RpcMethodError(`rpc: can't find service ${serviceMethod}`);
    const method = service.get(serviceMethod.slice(dot + 1));
    if (!method) throw new RpcMethodError(`rpc: can't find method ${serviceMethod}`);
    return method;
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    new RpcConnection(socket, this, this.log, this.budget);
  }
}

/** The bytes every connection of one plugin holds, against RpcLimits.bufferBudget. */
class BufferBudget {
  used = 0;

  constructor(readonly limits: RpcLimits) {}

  /** Take the bytes of a frame of `size` bytes; false (and nothing taken) when they do not fit. */
  take(size: number): boolean {
    const ceiling = size > this.limits.smallFrame ? this.limits.bufferBudget - this.limits.smallFrameReserve : this.limits.bufferBudget;
    if (this.used + size > ceiling) return false;
    this.used += size;
    return true;
  }

  release(bytes: number): void {
    this.used -= bytes;
  }
}

/** A frame's whole size on the wire: header, options, payload. */
function frameSize(frame: Frame): number {
  return HEADER_SIZE + 4 * frame.options.length + frame.payload.length;
}

/** One client connection: frames in, calls out, answers back in whatever order they finish. */
class RpcConnection {
  private readonly decoder = new FrameDecoder({ maxPayload: MAX_RPC_PAYLOAD });
  private inFlight = 0;
  private closed = false;
  /** Taken from the budget for the frame being received, at its announced size (0 until its header is here). */
  private receiving = 0;
  /** Taken from the budget for the frames whose calls are running. */
  private running = 0;
  /** Everything taken was given back (the connection closed): late answers give back nothing. */
  private released = false;

  constructor(
    private readonly socket: net.Socket,
    private readonly plugin: RpcPlugin,
    private readonly log: Logger,
    private readonly budget: BufferBudget,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.updateFlow());
    socket.on('error', () => socket.destroy());
    socket.once('close', () => {
      this.closed = true;
      this.releaseAll();
    });
  }

  private get peer(): string {
    return this.socket.remoteAddress ? `${this.socket.remoteAddress}:${this.socket.remotePort}` : 'unix socket';
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return; // refused: what the client still sends is read and dropped
    let frames: Frame[];
    let failure: Error | null = null;
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      failure = err as Error;
      frames = (err as { frames?: Frame[] }).frames ?? [];
    }
    for (const frame of frames) {
      if (this.closed) return;
      const size = frameSize(frame);
      if (this.receiving > 0) {
        // the frame budgeted from its header: its bytes now belong to its call
        this.running += this.receiving;
        this.receiving = 0;
      } else if (this.budget.take(size)) {
        this.running += size;
      } else {
        return this.refuse(frame.options, frame.flags, size);
      }
      this.onFrame(frame, size);
    }
    if (failure) return this.drop(failure.message);
    const next = this.decoder.incoming;
    if (this.closed || !next || this.receiving > 0) return;
    if (this.budget.take(next.size)) this.receiving = next.size;
    else this.refuse(next.options, next.flags, next.size);
  }

  private onFrame(frame: Frame, size: number): void {
    const done = (): void => {
      if (this.released) return;
      this.running -= size;
      this.budget.release(size);
    };
    // net/rpc over goridge: anything but [seq, method length] is a broken stream; upstream closes without a reply.
    if (frame.options.length !== 2) return this.drop(`RPC request frames carry exactly 2 options, got ${frame.options.length}`);
    let msg: RpcMessage;
    try {
      msg = decodeRpc(frame);
    } catch (err) {
      return this.drop((err as Error).message);
    }
    this.inFlight++;
    this.updateFlow();
    void this.plugin.answer(msg).then((bytes) => {
      this.inFlight--;
      done();
      if (this.closed || this.socket.destroyed) return;
      this.socket.write(bytes); // one write per frame (docs/protocol.md §1.6)
      this.updateFlow();
    });
  }

  /** Stop reading while too many calls run or the client does not read its answers. */
  private updateFlow(): void {
    if (this.closed) return;
    const busy = this.inFlight >= MAX_IN_FLIGHT || this.socket.writableNeedDrain;
    if (busy && !this.socket.isPaused()) this.socket.pause();
    else if (!busy && this.socket.isPaused()) this.socket.resume();
  }

  /**
   * The frame does not fit the budget: answer its seq with an error frame (RoadRunner's RPC error format, with an
   * empty method name as its bytes may not be here yet), give back what the connection holds, and close. The
   * rest of the client's bytes are read and dropped for a while, so it can finish writing and read the answer.
   */
  private refuse(options: readonly number[], flags: number, size: number): void {
    const { bufferBudget } = this.budget.limits;
    const held = this.receiving + this.running;
    const inUse = this.budget.used;
    this.closed = true;
    this.releaseAll();
    this.log.warn(
      { peer: this.peer, frame: size, held, buffered: inUse, budget: bufferBudget },
      `rpc connection refused: a frame of ${size} bytes does not fit the RPC buffer budget (${inUse} of ${bufferBudget} bytes in use)`,
    );
    const text = `rpc: request of ${size} bytes refused, the server holds ${inUse} of ${bufferBudget} bytes for RPC requests; retry later or send less`;
    const error = encodeRpc({ seq: options[0] ?? 0, method: '', flags: pickCodec(flags).flag | Flag.ERROR, body: Buffer.from(text, 'utf8') });
    const linger = setTimeout(() => this.socket.destroy(), REFUSED_LINGER_MS);
    linger.unref();
    this.socket.once('close', () => clearTimeout(linger));
    this.socket.end(error);
    this.socket.resume();
  }

  private drop(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.log.warn({ remote: this.socket.remoteAddress ?? 'unix socket' }, `rpc connection closed: ${reason}`);
    this.socket.destroy();
  }

  /** Give back what this connection took from the budget; the decoder and its chunks go with the connection. */
  private releaseAll(): void {
    if (this.released) return;
    this.released = true;
    this.budget.release(this.receiving + this.running);
    this.receiving = 0;
    this.running = 0;
  }
}

/** A socket file left by a dead process is removed; a live one (someone answers) or a regular file is an error. */
async function clearStaleSocket(file: string): Promise<void> {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(file);
  } catch {
    return;
  }
  if (!stat.isSocket()) throw new AddressError(`${file} exists and is not a socket`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = net.connect(file);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (live) throw new AddressError(`another process is listening on ${file}`);
  fs.unlinkSync(file);
}
