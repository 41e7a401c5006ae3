// A private beanstalkd for tests: Debian's beanstalkd run as a plain process on a free loopback port with its own
// binlog directory, stopped (and restarted on the same port and binlog, for redial tests) by pid.
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

export class Beanstalkd {
  private server: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private output = '';

  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  /** tcp://127.0.0.1:<port>, the `beanstalk.addr` of a config */
  get addr(): string {
    return `tcp://127.0.0.1:${this.port}`;
  }

  get pid(): number | null {
    return this.server?.pid ?? null;
  }

  /** Starts beanstalkd with a binlog in a fresh temp directory; throws saying how to install it when missing. */
  static async start(): Promise<Beanstalkd> {
    if (spawnSync('beanstalkd', ['-v']).error) {
      throw new Error("beanstalkd is not installed: run 'apt-get install -y beanstalkd' (the beanstalk jobs tests need a real server)");
    }
    const server = new Beanstalkd(fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-beanstalkd-')), await freePort());
    try {
      await server.startServer();
    } catch (err) {
      await server.destroy();
      throw err;
    }
    return server;
  }

  /** Starts the server (again, on the same port and binlog) and waits until it accepts connections. */
  async startServer(): Promise<void> {
    if (this.server) throw new Error('beanstalkd is already running');
    this.output = '';
    // -f 0: fsync every binlog write, so a SIGKILL loses nothing the server answered
    const server = spawn('beanstalkd', ['-l', '127.0.0.1', '-p', String(this.port), '-b', this.dir, '-f', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
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
        throw new Error(`beanstalkd exited while starting:\n${this.output}`);
      }
      if (await accepts(this.port)) return;
      if (Date.now() > until) {
        await this.stopServer('SIGKILL');
        throw new Error(`beanstalkd did not accept connections on 127.0.0.1:${this.port} within ${START_TIMEOUT_MS / 1000}s:\n${this.output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  /** Stops the server by pid, keeping its binlog; SIGKILL plays a crash. */
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

  /** Stops the server and removes its binlog directory. */
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
