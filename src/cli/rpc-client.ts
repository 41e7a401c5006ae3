// A small goridge RPC client for the CLI (`rrts workers`, `rrts reset`): JSON codec, seq from 0 per connection like
// the Go client, calls may overlap and replies are matched by seq (docs/protocol.md §5.3).
import net from 'node:net';
import { RpcCallError } from '../errors.js';
import { Flag } from '../goridge/flags.js';
import { FrameDecoder } from '../goridge/frame.js';
import { decodeRpc, encodeRpc } from '../goridge/messages.js';
import { formatListenAddress, parseListenAddress, type ListenAddress } from '../address.js';
import { die, loadConfigOrExit, type GlobalOptions } from './options.js';

interface Pending {
  method: string;
  resolve(value: unknown): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

const CONNECT_TIMEOUT_MS = 5_000;
const CALL_TIMEOUT_MS = 30_000;

export class RpcClient {
  private seq = 0;
  private readonly pending = new Map<number, Pending>();
  private readonly decoder = new FrameDecoder({ maxPayload: 256 * 1024 * 1024 });
  private failure: Error | null = null;

  private constructor(private readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.shutdown(new RpcCallError(`rpc connection failed: ${err.message}`)));
    socket.on('close', () => this.shutdown(new RpcCallError('connection is shut down')));
  }

  /** Connect to a `tcp://host:port` or `unix://path` DSN (relative paths against cwd). Errors read like Go's dial errors. */
  static connect(listen: string, cwd: string, timeoutMs = CONNECT_TIMEOUT_MS): Promise<RpcClient> {
    const address = parseListenAddress(listen, cwd);
    return new Promise((resolve, reject) => {
      const socket = address.kind === 'unix' ? net.connect(address.path) : net.connect(address.port, address.host || '127.0.0.1');
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new RpcCallError(`${dialPrefix(address)}: i/o timeout`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new RpcClient(socket));
      });
      socket.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new RpcCallError(`${dialPrefix(address)}: ${errnoText(err)}`));
      });
    });
  }

  /** Call `Service.Method` with a JSON argument; resolves with the decoded JSON result. */
  call<T = unknown>(method: string, arg: unknown, timeoutMs = CALL_TIMEOUT_MS): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    const seq = this.seq;
    this.seq = (this.seq + 1) >>> 0;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(seq);
        reject(new RpcCallError(`${method}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(seq, { method, resolve, reject, timer });
      const body = Buffer.from(arg === undefined ? '' : JSON.stringify(arg), 'utf8');
      this.socket.write(encodeRpc({ seq, method, flags: Flag.CODEC_JSON, body }));
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    let frames;
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      this.shutdown(new RpcCallError(`bad answer from the RPC server: ${(err as Error).message}`));
      this.socket.destroy();
      return;
    }
    for (const frame of frames) {
      let msg;
      try {
        msg = decodeRpc(frame);
      } catch (err) {
        this.shutdown(new RpcCallError(`bad answer from the RPC server: ${(err as Error).message}`));
        this.socket.destroy();
        return;
      }
      const call = this.pending.get(msg.seq);
      if (!call) continue; // timed out already
      this.pending.delete(msg.seq);
      clearTimeout(call.timer);
      const text = msg.body.toString('utf8');
      if (msg.flags & Flag.ERROR) {
        call.reject(new RpcCallError(text));
        continue;
      }
      try {
        call.resolve(text === '' ? undefined : JSON.parse(text));
      } catch (err) {
        call.reject(new RpcCallError(`${call.method}: the answer is not JSON: ${(err as Error).message}`));
      }
    }
  }

  private shutdown(err: Error): void {
    this.failure ??= err;
    for (const [seq, call] of this.pending) {
      clearTimeout(call.timer);
      this.pending.delete(seq);
      call.reject(err);
    }
  }
}

/**
 * For the client commands: read rpc.listen from the config the flags name (-c, -w, -o, --dotenv) and connect,
 * or end the process with exit code 1 and RoadRunner's message.
 */
export async function connectFromConfig(opts: GlobalOptions): Promise<RpcClient> {
  const config = loadConfigOrExit(opts);
  if (!config.rpc) die('rpc service not specified in the configuration. Tip: add rpc: listen: tcp://127.0.0.1:6001');
  try {
    return await RpcClient.connect(config.rpc.listen, config.workDir);
  } catch (err) {
    die((err as Error).message);
  }
}

function dialPrefix(address: ListenAddress): string {
  return address.kind === 'unix' ? `dial unix ${address.path}` : `dial ${formatListenAddress(address).replace('://', ' ')}`;
}

const ERRNO_TEXT: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connect: connection refused',
  ENOENT: 'connect: no such file or directory',
  EACCES: 'connect: permission denied',
  ETIMEDOUT: 'i/o timeout',
  EHOSTUNREACH: 'connect: no route to host',
  ENETUNREACH: 'connect: network is unreachable',
  ENOTSOCK: 'connect: socket operation on non-socket',
  ENOTFOUND: 'no such host',
  EAI_AGAIN: 'temporary failure in name resolution',
};

function errnoText(err: NodeJS.ErrnoException): string {
  return (err.code && ERRNO_TEXT[err.code]) ?? err.message;
}
