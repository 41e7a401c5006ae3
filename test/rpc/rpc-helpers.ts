// Test helpers for the RPC plugin: a silent logger, a plugin on 127.0.0.1:0, and a raw socket that collects frames.
import net from 'node:net';
import { readFileSync } from 'node:fs';
import pino from 'pino';
import { FrameDecoder, type Frame } from '../../src/goridge/frame.js';
import { RpcPlugin, type RpcMethod } from '../../src/rpc/server.js';
import type { Config } from '../../src/config/types.js';
import type { WorkerPool } from '../../src/pool/pool.js';
import type { CoreServicesHost } from '../../src/rpc/services.js';
import { capabilitiesOf } from '../support/pool-plugins.js';

export const silent = pino({ level: 'silent' });

// Compiled tests run from dist/test/rpc/, so the fixture is three levels up from here.
const VECTORS = JSON.parse(readFileSync(new URL('../../../test/fixtures/protocol-vectors.json', import.meta.url), 'utf8')) as Record<string, { hex: string }>;

export function vector(id: string): Buffer {
  const v = VECTORS[id];
  if (!v) throw new Error(`vector ${id} missing from protocol-vectors.json`);
  return Buffer.from(v.hex, 'hex');
}

export async function startPlugin(services: Record<string, Record<string, RpcMethod>>, listen = 'tcp://127.0.0.1:0', cwd = process.cwd()): Promise<RpcPlugin> {
  const rpc = new RpcPlugin(listen, silent, cwd);
  for (const [name, methods] of Object.entries(services)) rpc.register(name, methods);
  await rpc.serve();
  return rpc;
}

/** A client socket that decodes every frame it receives and remembers whether the server closed it. */
export class RawConnection {
  readonly frames: Frame[] = [];
  readonly raw: Buffer[] = [];
  closed = false;
  readonly closedPromise: Promise<void>;
  private readonly decoder = new FrameDecoder();
  private waiters: Array<() => void> = [];

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.raw.push(chunk);
      for (const f of this.decoder.push(chunk)) this.frames.push(f);
      this.notify();
    });
    socket.on('error', () => undefined);
    this.closedPromise = new Promise((resolve) =>
      socket.once('close', () => {
        this.closed = true;
        this.notify();
        resolve();
      }),
    );
  }

  static open(address: string): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const m = /^tcp:\/\/(.*):(\d+)$/.exec(address);
      const socket = m ? net.connect(Number(m[2]), m[1]) : net.connect(address.replace(/^unix:\/\//, ''));
      socket.once('connect', () => resolve(new RawConnection(socket)));
      socket.once('error', reject);
    });
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** All bytes received so far, as one Buffer. */
  received(): Buffer {
    return Buffer.concat(this.raw);
  }

  /** Wait until `n` frames arrived (or the socket closed, or the timeout passed). */
  async waitFrames(n: number, timeoutMs = 5000): Promise<Frame[]> {
    const until = Date.now() + timeoutMs;
    while (this.frames.length < n && !this.closed && Date.now() < until) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, until - Date.now()));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    if (this.frames.length < n) throw new Error(`expected ${n} frames, got ${this.frames.length} (closed: ${this.closed})`);
    return this.frames.slice(0, n);
  }

  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.closedPromise, new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer); // a pending timer would keep the test process alive for timeoutMs
    return this.closed;
  }

  close(): void {
    this.socket.destroy();
  }

  private notify(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

/** A host with one fake pool called `http`, for the core services. */
export function fakeHost(): CoreServicesHost {
  const pool = {
    list: () => [],
    mode: 'exec',
    masterPid: null,
    isExtra: () => false,
    reset: async () => undefined,
    addWorker: async () => undefined,
    removeWorker: async () => undefined,
  };
  return { config: { raw: { version: '3' } } as unknown as Config, plugins: capabilitiesOf(new Map([['http', pool as unknown as WorkerPool]])) };
}
