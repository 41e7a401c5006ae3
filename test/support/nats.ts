// A private nats-server for tests: Debian's nats-server with JetStream (-js) run as a plain process on a free
// loopback port with its own store directory, stopped (and restarted on the same port and store, for redial tests) by pid.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports.js';

const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 10_000;
const POLL_MS = 50;

export class NatsServer {
  private server: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private output = '';

  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  /** nats://127.0.0.1:<port>, the `nats.addr` of a config */
  get addr(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get pid(): number | null {
    return this.server?.pid ?? null;
  }

  /** Starts nats-server with a JetStream store in a fresh temp directory; throws saying how to install it when missing. */
  static async start(): Promise<NatsServer> {
    if (spawnSync('nats-server', ['--version']).error) {
      throw new Error("nats-server is not installed: run 'apt-get install -y nats-server' (the nats jobs tests need a real server)");
    }
    const server = new NatsServer(fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-nats-')), await freePort());
    try {
      await server.startServer();
    } catch (err) {
      await server.destroy();
      throw err;
    }
    return server;
  }

  /** Starts the server (again, on the same port and store) and waits until it accepts connections. */
  async startServer(): Promise<void> {
    if (this.server) throw new Error('nats-server is already running');
    this.output = '';
    // no http monitor, no cluster: only the client port on loopback
    const server = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.server = server;
    server.stdout.on('data', (chunk: Buffer) => (this.output = (this.output + chunk.toString()).slice(-4000)));
    server.stderr.on('data', (chunk: Buffer) => (this.output = (this.output + chunk.toString()).slice(-4000)));
    let gone = false;
    this.exited = new Promise((resolve) =>
      server.once('exit', () => {
        gone = true;
        resolve();
      }),
    );
    const until = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (gone) {
        this.server = null;
        throw new Error(`nats-server exited while starting:\n${this.output}`);
      }
      if (await accepts(this.port)) return;
      if (Date.now() > until) {
        await this.stopServer('SIGKILL');
        throw new Error(`nats-server did not accept connections on 127.0.0.1:${this.port} within ${START_TIMEOUT_MS / 1000}s:\n${this.output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  /** Stops the server by pid, keeping its store; SIGKILL plays a crash. */
  async stopServer(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const stopped = await Promise.race([
      this.exited.then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), STOP_TIMEOUT_MS))),
    ]);
    // a pending timer would keep the test process alive for STOP_TIMEOUT_MS after its last test
    clearTimeout(timer);
    if (!stopped) {
      server.kill('SIGKILL');
      await this.exited;
    }
    this.server = null;
  }

  /** Stops the server and removes its store directory. */
  async destroy(): Promise<void> {
    await this.stopServer('SIGKILL');
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
