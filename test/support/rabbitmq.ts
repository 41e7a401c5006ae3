// A private RabbitMQ broker for tests: Debian's rabbitmq-server run as a plain process with its own temp data
// directory, node name, ports and epmd, stopped (and restarted, for redial tests) by pid.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import amqp from 'amqplib';
import { settlesWithin } from '../../src/time.js';
import { freePort } from './ports.js';

/** Where Debian's package puts the real start script (/usr/sbin/rabbitmq-server only wraps it with su and a cd). */
const SERVER_SCRIPT = '/usr/lib/rabbitmq/bin/rabbitmq-server';
const START_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 30_000;
const POLL_MS = 100;

export class RabbitMq {
  private server: ChildProcess | null = null;
  private serverExit: Promise<void> = Promise.resolve();
  private output = '';

  private constructor(
    readonly dir: string,
    readonly nodeName: string,
    readonly port: number,
    private readonly distPort: number,
    private readonly epmdPort: number,
    private readonly epmd: ChildProcess,
  ) {}

  /** amqp://guest:guest@127.0.0.1:<port>/ */
  get url(): string {
    return `amqp://guest:guest@127.0.0.1:${this.port}/`;
  }

  /** The TLS listener's port, when started with `tls`. */
  tlsPort: number | null = null;

  /**
   * Starts a private epmd and a broker; throws saying how to install rabbitmq-server when it is missing. With `tls`
   * (PEM files) it also listens for AMQPS on `tlsPort` and requires a client certificate signed by `ca`.
   */
  static async start(options: { tls?: { ca: string; cert: string; key: string } } = {}): Promise<RabbitMq> {
    if (!fs.existsSync(SERVER_SCRIPT)) {
      throw new Error(`rabbitmq-server is not installed (no ${SERVER_SCRIPT}): run 'apt-get install -y rabbitmq-server' (the amqp tests need a real broker)`);
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-rabbitmq-'));
    const [port, distPort, epmdPort] = [await freePort(), await freePort(), await freePort()];
    const epmd = spawn('epmd', ['-port', String(epmdPort), '-address', '127.0.0.1'], { stdio: 'ignore' });
    const broker = new RabbitMq(dir, `rrts-${randomBytes(4).toString('hex')}@localhost`, port, distPort, epmdPort, epmd);
    try {
      fs.writeFileSync(
        path.join(dir, 'rabbitmq.conf'),
        [
          `listeners.tcp.default = 127.0.0.1:${port}`,
          // test machines have little free disk; the default 50 MB alarm would block publishers
          'disk_free_limit.absolute = 1MB',
          'log.console = false',
          'log.file.level = info',
          ...(options.tls ? await tlsConfig(broker, options.tls) : []),
        ].join('\n') + '\n',
      );
      fs.writeFileSync(path.join(dir, 'enabled_plugins'), '[].\n');
      await broker.startServer();
    } catch (err) {
      await broker.destroy();
      throw err;
    }
    return broker;
  }

  private env(): NodeJS.ProcessEnv {
    const dir = this.dir;
    return {
      PATH: process.env.PATH,
      LANG: 'C.UTF-8',
      // the Erlang cookie goes to $HOME
      HOME: dir,
      RABBITMQ_NODENAME: this.nodeName,
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODE_PORT: String(this.port),
      RABBITMQ_DIST_PORT: String(this.distPort),
      ERL_EPMD_PORT: String(this.epmdPort),
      ERL_EPMD_ADDRESS: '127.0.0.1',
      RABBITMQ_LOG_BASE: path.join(dir, 'log'),
      RABBITMQ_MNESIA_BASE: path.join(dir, 'mnesia'),
      RABBITMQ_CONFIG_FILE: path.join(dir, 'rabbitmq'),
      RABBITMQ_ADVANCED_CONFIG_FILE: path.join(dir, 'advanced.config'),
      RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dir, 'enabled_plugins'),
      RABBITMQ_CONF_ENV_FILE: path.join(dir, 'rabbitmq-env.conf'),
      RABBITMQ_PID_FILE: path.join(dir, 'rabbitmq.pid'),
    };
  }

  /** Starts the broker (again, on the same data directory and port) and waits until it accepts AMQP connections. */
  async startServer(): Promise<void> {
    if (this.server) throw new Error('the broker is already running');
    this.output = '';
    const server = spawn(SERVER_SCRIPT, [], { env: this.env(), cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    this.server = server;
    server.stdout.on('data', (chunk: Buffer) => (this.output = (this.output + chunk.toString()).slice(-4000)));
    server.stderr.on('data', (chunk: Buffer) => (this.output = (this.output + chunk.toString()).slice(-4000)));
    this.serverExit = new Promise((resolve) => server.once('exit', () => resolve()));
    let exited = false;
    void this.serverExit.then(() => (exited = true));
    const until = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (exited) throw new Error(`rabbitmq-server exited while starting:\n${this.output}`);
      try {
        const connection = await amqp.connect(this.url);
        await connection.close();
        return;
      } catch {
        if (Date.now() > until) {
          await this.stopServer();
          throw new Error(`rabbitmq-server did not accept AMQP on 127.0.0.1:${this.port} within ${START_TIMEOUT_MS / 1000}s:\n${this.output}`);
        }
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
    }
  }

  /** Stops the broker (SIGTERM to the start script, which stops the Erlang VM), keeping its data; SIGKILL if it hangs. */
  async stopServer(): Promise<void> {
    const server = this.server;
    if (!server) return;
    const vmPid = this.vmPid();
    server.kill('SIGTERM');
    const stopped = await settlesWithin(this.serverExit, STOP_TIMEOUT_MS); // clears its timer: no idle wait at exit
    if (!stopped) server.kill('SIGKILL');
    if (vmPid !== null) await killAndWait(vmPid, stopped ? 'SIGTERM' : 'SIGKILL');
    this.server = null;
  }

  /** The Erlang VM's pid from the broker's pid file (the start script is its parent). */
  private vmPid(): number | null {
    try {
      const pid = Number(fs.readFileSync(path.join(this.dir, 'rabbitmq.pid'), 'utf8').trim());
      return Number.isInteger(pid) && pid > 0 ? pid : null;
    } catch {
      return null;
    }
  }

  /** Stops the broker and its epmd and removes the data directory. */
  async destroy(): Promise<void> {
    await this.stopServer();
    if (this.epmd.exitCode === null && this.epmd.signalCode === null) {
      const exited = new Promise((resolve) => this.epmd.once('exit', resolve));
      this.epmd.kill('SIGTERM');
      await exited;
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

async function tlsConfig(broker: RabbitMq, tls: { ca: string; cert: string; key: string }): Promise<string[]> {
  broker.tlsPort = await freePort();
  return [
    `listeners.ssl.default = 127.0.0.1:${broker.tlsPort}`,
    `ssl_options.cacertfile = ${tls.ca}`,
    `ssl_options.certfile = ${tls.cert}`,
    `ssl_options.keyfile = ${tls.key}`,
    'ssl_options.verify = verify_peer',
    'ssl_options.fail_if_no_peer_cert = true',
  ];
}

/** Waits (bounded) until `pid` is gone, sending `signal` first; SIGKILL when it outlives the bound. */
async function killAndWait(pid: number, signal: NodeJS.Signals): Promise<void> {
  const alive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (!alive()) return;
  try {
    process.kill(pid, signal);
  } catch {
    return;
  }
  const until = Date.now() + STOP_TIMEOUT_MS;
  while (alive() && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  if (alive()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone in between
    }
  }
}
