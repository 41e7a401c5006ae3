// The forked workers' own stdout and stderr: each child connects to this unix socket right after its fork (a spare
// before it parks) and puts the connection on its fds 1 and 2 (php/lib/Fork/Output.php); what arrives is
// logged under the connecting process's pid (SO_PEERCRED), line by line, never mixed with another worker's bytes.
import fs from 'node:fs';
import net from 'node:net';
import type { Logger } from 'pino';
import { WorkerOutputLines } from '../../log/index.js';
import { listenOn } from '../../listen.js';
import { loadNative, socketFd } from '../../native/index.js';
import { procStat } from '../../system/proc.js';
import type { Identity } from '../../system/users.js';
import { settlesWithin } from '../../time.js';

/** how long close() lets the open connections finish (their workers were just stopped) */
const CLOSE_GRACE_MS = 1_000;
/** How long the lines of a worker that left while starting wait for its start's error to take them; then logged. */
const UNCLAIMED_START_OUTPUT_MS = 1_000;
/** How long a start's error waits for the rest of what its worker wrote (the connection's end). */
const START_OUTPUT_WAIT_MS = 200;

export class WorkerOutputServer {
  private server: net.Server | null = null;
  private readonly connections = new Set<net.Socket>();
  /** each worker's lines by pid: held while it starts (a spare: until it is woken and ready) */
  private readonly byPid = new Map<number, { lines: WorkerOutputLines; closed: Promise<void> }>();
  /** startFailed() calls waiting for the connection of their pid, by pid */
  private readonly awaited = new Map<number, () => void>();

  /** @param isOurs whether a pid is one of our masters or a child of one (only theirs are logged) */
  constructor(
    readonly path: string,
    private readonly log: Logger,
    private readonly isOurs: (pid: number) => boolean,
  ) {}

  /**
   * Listen (mode 0600, owned by server.user when set). False when the native addon (SO_PEERCRED) is not usable
   * here: then nobody listens, and the workers keep the master's stdout and stderr.
   */
  async listen(identity: Identity | null): Promise<boolean> {
    if (!loadNative()) return false;
    const server = net.createServer((socket) => this.onConnection(socket));
    await listenOn(server, { path: this.path });
    fs.chmodSync(this.path, 0o600);
    if (identity) fs.chownSync(this.path, identity.uid, identity.gid);
    this.server = server;
    return true;
  }

  /**
   * Stop listening. The connections of workers that are gone end by themselves once what they wrote is read (and
   * logged); any still open after CLOSE_GRACE_MS (a worker that outlived its master) are dropped.
   */
  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    if (!(await settlesWithin(closed, CLOSE_GRACE_MS))) {
      for (const socket of this.connections) socket.destroy();
      await closed;
    }
    fs.rmSync(this.path, { force: true });
  }

  private onConnection(socket: net.Socket): void {
    socket.on('error', () => socket.destroy());
    const pid = peerPid(socket);
    // A master or worker that wrote and died at once may be reaped before its connection is read: /proc cannot name
    // its parent then. Its lines are held for a start's error that names that pid, and dropped unlogged if none does.
    const unverified = pid !== null && !this.isOurs(pid) && procStat(pid) === null;
    if (pid === null || (!unverified && !this.isOurs(pid))) {
      this.log.warn(`worker output connection dropped: pid ${pid ?? 'unknown'} is not a child of a fork master of ours`);
      socket.destroy();
      return;
    }
    this.connections.add(socket);
    const lines = new WorkerOutputLines(this.log, pid);
    // held while the worker starts: a start that fails is reported once with them (startFailed)
    lines.holdUntilReady();
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    this.byPid.set(pid, { lines, closed });
    this.awaited.get(pid)?.();
    socket.on('data', (chunk: Buffer) => lines.push(chunk));
    void closed.then(() => {
      this.connections.delete(socket);
      lines.end();
      // nobody asked for them (a spare that died parked, say): log them rather than lose them, unless unverified
      setTimeout(() => {
        if (this.byPid.get(pid)?.lines !== lines) return;
        this.byPid.delete(pid);
        if (!unverified) lines.release();
        else this.log.warn(`worker output connection dropped: pid ${pid} exited and no start of ours named it`);
      }, UNCLAIMED_START_OUTPUT_MS).unref();
    });
  }

  /** The worker answered its handshake: what it wrote while starting is logged, and the rest as it comes. */
  started(pid: number): void {
    this.byPid.get(pid)?.lines.release();
    this.byPid.delete(pid);
  }

  /**
   * The worker left before it was ready: its last lines (once its connection has ended, briefly awaited), unlogged.
   * A worker that connected, wrote and exited may be seen gone before its connection is accepted: that is awaited
   * briefly too (else its lines were neither quoted nor logged, rrts exiting on the failed start meanwhile).
   */
  async startFailed(pid: number): Promise<string[]> {
    if (!this.byPid.has(pid) && this.server) {
      await settlesWithin(new Promise<void>((resolve) => this.awaited.set(pid, resolve)), START_OUTPUT_WAIT_MS);
      this.awaited.delete(pid);
    }
    const entry = this.byPid.get(pid);
    if (!entry) return [];
    this.byPid.delete(pid);
    await settlesWithin(entry.closed, START_OUTPUT_WAIT_MS);
    entry.lines.end();
    return entry.lines.take();
  }
}

/** The pid of the process that connected (SO_PEERCRED), or null when it cannot be read. */
function peerPid(socket: net.Socket): number | null {
  const fd = socketFd(socket);
  try {
    return fd === null ? null : (loadNative()?.peerCred(fd).pid ?? null);
  } catch {
    return null;
  }
}
