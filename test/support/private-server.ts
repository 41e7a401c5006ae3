// A private server for tests (beanstalkd, nats-server): a Debian package's binary run as a plain process on a free
// loopback port with its own data directory, stopped (and restarted on the same port and data, for redial tests) by
// pid. Each server says how it is started (ServerKind); the rest is the same for all.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { settlesWithin } from '../../src/time.js';
import { freePort } from './ports.js';

const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 10_000;
const POLL_MS = 50;

export interface ServerKind {
  /** the binary, also the Debian package's name */
  binary: string;
  /** arguments that print a version: the binary's presence check */
  versionArgs: string[];
  /** the tests that need it, for the "not installed" error */
  neededBy: string;
  /** the server's arguments: loopback, the port, the data directory */
  args(port: number, dir: string): string[];
}

export class PrivateServer {
  private server: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private output = '';

  protected constructor(
    private readonly kind: ServerKind,
    readonly dir: string,
    readonly port: number,
  ) {}

  get pid(): number | null {
    return this.server?.pid ?? null;
  }

  /** A started server in a fresh temp directory; throws saying how to install the binary when missing. */
  protected static async startOf<T extends PrivateServer>(kind: ServerKind, make: (dir: string, port: number) => T): Promise<T> {
    if (spawnSync(kind.binary, kind.versionArgs).error) {
      throw new Error(`${kind.binary} is not installed: run 'apt-get install -y ${kind.binary}' (${kind.neededBy} need a real server)`);
    }
    const server = make(fs.mkdtempSync(path.join(os.tmpdir(), `rrts-${kind.binary}-`)), await freePort());
    try {
      await server.startServer();
    } catch (err) {
      await server.destroy();
      throw err;
    }
    return server;
  }

  /** Starts the server (again, on the same port and data) and waits until it accepts connections. */
  async startServer(): Promise<void> {
    const name = this.kind.binary;
    if (this.server) throw new Error(`${name} is already running`);
    this.output = '';
    const server = spawn(name, this.kind.args(this.port, this.dir), { stdio: ['ignore', 'pipe', 'pipe'] });
    this.server = server;
    const keep = (chunk: Buffer): void => void (this.output = (this.output + chunk.toString()).slice(-4000));
    server.stdout.on('data', keep);
    server.stderr.on('data', keep);
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
        throw new Error(`${name} exited while starting:\n${this.output}`);
      }
      if (await accepts(this.port)) return;
      if (Date.now() > until) {
        await this.stopServer('SIGKILL');
        throw new Error(`${name} did not accept connections on 127.0.0.1:${this.port} within ${START_TIMEOUT_MS / 1000}s:\n${this.output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  /** Stops the server by pid, keeping its data; SIGKILL plays a crash. */
  async stopServer(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.kill(signal);
    const stopped = await settlesWithin(this.exited, STOP_TIMEOUT_MS); // clears its timer: no idle wait at exit
    if (!stopped) {
      server.kill('SIGKILL');
      await this.exited;
    }
    this.server = null;
  }

  /** Stops the server and removes its data directory. */
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
