// The RPC plugin: goridge RPC (protocol.md §5) on `rpc.listen`, what the PHP RPC client, `rrts workers` and
// `rrts reset` talk to. Services register methods by name; every connection decodes frames on its own, runs its
// calls concurrently and answers each with one write, matched by seq. A connection that breaks the protocol is
// closed; nothing a client sends can stop the server or disturb the other connections.
import fs from 'node:fs';
import net from 'node:net';
import type { Logger } from 'pino';
import { Flag } from '../goridge/flags.js';
import { FrameDecoder, type Frame } from '../goridge/frame.js';
import { decodeRpc, encodeRpc, type RpcMessage } from '../goridge/messages.js';
import { formatListenAddress, isLoopback, parseListenAddress, type ListenAddress } from '../address.js';
import { decodeArgument, encodeResult, pickCodec, unsupportedCodecMessage } from './codec.js';
import { listenOn } from '../listen.js';

export type RpcMethod = (arg: unknown) => Promise<unknown> | unknown;

/** One request frame may carry at most this much (method name and argument). */
export const MAX_RPC_PAYLOAD = 32 * 1024 * 1024;
/** Calls running at once on one connection before it stops reading (backpressure on a flooding client). */
const MAX_IN_FLIGHT = 256;

export class RpcPlugin {
  private readonly services = new Map<string, Map<string, RpcMethod>>();
  private readonly sockets = new Set<net.Socket>();
  private server: net.Server | null = null;
  private readonly listenAddress: ListenAddress;
  /** unix: the inode of the socket file we created, so stop() never removes someone else's. */
  private socketInode: number | null = null;

  constructor(
    readonly listen: string,
    private readonly log: Logger,
    cwd: string,
  ) {
    this.listenAddress = parseListenAddress(listen, cwd);
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
    const fail = (text: string): Buffer => reply(codec.flag | Flag.ERROR, Buffer.from(text, 'utf8'));
    const unsupported = unsupportedCodecMessage(codec);
    if (unsupported) return fail(unsupported);
    const method = this.lookup(msg.method);
    if (typeof method === 'string') return fail(method);
    try {
      const result = await method(decodeArgument(codec, msg.body));
      return reply(codec.flag, encodeResult(codec, result));
    } catch (err) {
      return fail(err instanceof Error ? err.message : String(err));
    }
  }

  /** The method, or net/rpc's error text. */
  private lookup(serviceMethod: string): RpcMethod | string {
    const dot = serviceMethod.lastIndexOf('.');
    if (dot < 0) return `rpc: service/method request ill-formed: ${serviceMethod}`;
    const service = this.services.get(serviceMethod.slice(0, dot));
    if (!service) return `rpc: can't find service ${serviceMethod}`;
    return service.get(serviceMethod.slice(dot + 1)) ?? `rpc: can't find method ${serviceMethod}`;
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    new RpcConnection(socket, this, this.log);
  }
}

/** One client connection: frames in, calls out, answers back in whatever order they finish. */
class RpcConnection {
  private readonly decoder = new FrameDecoder({ maxPayload: MAX_RPC_PAYLOAD });
  private inFlight = 0;
  private closed = false;

  constructor(
    private readonly socket: net.Socket,
    private readonly plugin: RpcPlugin,
    private readonly log: Logger,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.updateFlow());
    socket.on('error', () => socket.destroy());
    socket.once('close', () => (this.closed = true));
  }

  private onData(chunk: Buffer): void {
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
      this.onFrame(frame);
    }
    if (failure) this.drop(failure.message);
  }

  private onFrame(frame: Frame): void {
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
      if (this.closed || this.socket.destroyed) return;
      this.socket.write(bytes); // one write per frame (protocol.md P1)
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

  private drop(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.log.warn({ remote: this.socket.remoteAddress ?? 'unix socket' }, `rpc connection closed: ${reason}`);
    this.socket.destroy();
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
  if (!stat.isSocket()) throw new Error(`${file} exists and is not a socket`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = net.connect(file);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (live) throw new Error(`another process is listening on ${file}`);
  fs.unlinkSync(file);
}
