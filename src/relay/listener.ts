// The socket relay (tcp:// or unix://): workers connect to rrts; each connection gets the pid request at once and is
// filed under the pid the worker answers, for the spawner that waits for that pid (docs/protocol.md §2.3).
// With checkPeers (exec mode) a connection joins only when the kernel confirms who connected (peer-check.ts).
// A connection that joins is moved into a socket read with `onread` (adopt.ts): the relay's hot path, as exec
// mode's pipes are read. With offerPipes (fork mode) a worker that takes the offer gets two real pipes over its
// connection instead (SCM_RIGHTS), and is filed once it answered the pid request again on them.
import net from 'node:net';
import fs from 'node:fs';
import { DEFAULT_MAX_PAYLOAD, FrameDecoder } from '../goridge/frame.js';
import { parsePidHandshake, parsePidReply, pidRequest } from '../goridge/messages.js';
import { FrameRelay } from './relay.js';
import { onFirstFrames } from './first-frames.js';
import { formatListenAddress, type ListenAddress } from '../address.js';
import { checkPeer } from './peer-check.js';
import type { Logger } from 'pino';
import { listenOn } from '../listen.js';
import { adoptConnection } from '../native/adopt.js';
import { addonFunction, socketFd } from '../native/index.js';
import { CopiedReads } from './copied-reads.js';
import { openWorkerPipes, workerPipesUnavailableReason, type WorkerPipes } from '../spawn/exec-pipes.js';

export interface AcceptedWorker {
  /** the pid it is filed under: the one it answered, or with checkPeers the spawned process it is or descends from */
  pid: number;
  relay: FrameRelay;
  /** what carries its relay: the connection, or the two pipes it was handed (closed together when it is dropped) */
  sockets: readonly net.Socket[];
}

interface Waiter {
  resolve(w: AcceptedWorker): void;
}

const HANDSHAKE_TIMEOUT_MS = 60_000;

/** Who may join, fixed when the listener is made. */
export interface ListenerOptions {
  /** how long a connection has to answer the pid request */
  handshakeTimeoutMs?: number;
  /** Decides whether a connection that answered with `pid` may join (fork mode checks peer credentials). */
  acceptPid?: (pid: number, socket: net.Socket) => boolean;
  /**
   * Exec mode: the process at the other end must be the pid it answered, and that pid or an ancestor must be one a
   * spawner waits for (waitFor); anything else is refused. The caller checks peerCheckUnavailableReason() first.
   */
  checkPeers?: boolean;
  /**
   * Fork mode: the pid request offers real pipes, and a worker that answers `"pipes":true` is handed them over its
   * connection (where the addon's sendFds and posix-node's pipe2 are there; else nothing is offered). Not with
   * checkPeers: its check of the spawned process runs on the connection that joins.
   */
  offerPipes?: boolean;
}

export class SocketRelayListener {
  private server: net.Server | null = null;
  private readonly waiting = new Map<number, Waiter>();
  private readonly unclaimed = new Map<number, { worker: AcceptedWorker; timer: NodeJS.Timeout }>();
  private readonly sockets = new Set<net.Socket>();
  /** unix: the inode of the socket file we created, so it is the one we remove */
  private socketInode: number | null = null;
  private readonly handshakeTimeoutMs: number;
  private readonly acceptPid: (pid: number, socket: net.Socket) => boolean;
  private readonly checkPeers: boolean;
  /** the sendmsg(SCM_RIGHTS) that hands a worker its pipes, when pipes are offered */
  private readonly sendFds: ((socketFd: number, fds: readonly number[]) => void) | null;

  constructor(
    readonly address: ListenAddress,
    private readonly log: Logger,
    options: ListenerOptions = {},
  ) {
    this.handshakeTimeoutMs = options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS;
    this.acceptPid = options.acceptPid ?? (() => true);
    this.checkPeers = options.checkPeers ?? false;
    this.sendFds = options.offerPipes && !this.checkPeers ? pipesHandOver(log) : null;
  }

  async listen(): Promise<void> {
    const server = net.createServer((socket) => this.onConnection(socket));
    this.server = server;
    if (this.address.kind === 'unix') {
      removeStaleSocket(this.address.path);
      await listenOn(server, { path: this.address.path });
      this.socketInode = fs.statSync(this.address.path).ino;
      fs.chmodSync(this.address.path, 0o600);
    } else {
      await listenOn(server, { host: this.address.host, port: this.address.port });
    }
  }

  /** Wait until a worker with this pid has connected and answered the handshake. */
  waitFor(pid: number): Promise<AcceptedWorker> {
    const early = this.unclaimed.get(pid);
    if (early) {
      clearTimeout(early.timer);
      this.unclaimed.delete(pid);
      return Promise.resolve(early.worker);
    }
    return new Promise((resolve) => this.waiting.set(pid, { resolve }));
  }

  /** Stop waiting for this pid (the process died or timed out). */
  forget(pid: number): void {
    this.waiting.delete(pid);
    const early = this.unclaimed.get(pid);
    if (early) {
      clearTimeout(early.timer);
      destroyWorker(early.worker);
      this.unclaimed.delete(pid);
    }
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const s of this.sockets) s.destroy();
    for (const { timer, worker } of this.unclaimed.values()) {
      clearTimeout(timer);
      destroyWorker(worker);
    }
    this.unclaimed.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    this.removeSocketFile();
  }

  /** unix: remove the socket file listen() created (synchronous: the forced exit calls it right before exiting). */
  removeSocketFile(): void {
    if (this.address.kind !== 'unix' || this.socketInode === null) return;
    try {
      if (fs.lstatSync(this.address.path).ino === this.socketInode) fs.unlinkSync(this.address.path);
    } catch {
      /* already gone */
    }
    this.socketInode = null;
  }

  private track(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  private onConnection(socket: net.Socket): void {
    this.track(socket);
    socket.setNoDelay(true);
    const decoder = new FrameDecoder({ maxPayload: 64 * 1024 });
    const drop = (why: string): void => {
      this.log.warn({ remote: socket.remoteAddress ?? (this.address.kind === 'unix' ? this.address.path : '') }, `worker connection dropped: ${why}`);
      socket.destroy();
    };
    onFirstFrames(
      socket,
      decoder,
      this.handshakeTimeoutMs,
      'no pid handshake in time',
      (frames) => {
        socket.pause();
        let pid: number;
        let takesPipes: boolean;
        try {
          ({ pid, pipes: takesPipes } = parsePidHandshake(frames[0]!));
        } catch (err) {
          drop(`bad pid handshake: ${(err as Error).message}`);
          return;
        }
        if (!this.acceptPid(pid, socket)) {
          drop(`pid ${pid} is not a worker rrts started`);
          return;
        }
        if (takesPipes && this.sendFds) this.handOverPipes(pid, socket, this.sendFds);
        else if (this.checkPeers) this.admitChecked(pid, socket, decoder).catch((err: Error) => drop(`cannot check who connected: ${err.message}`));
        else this.deliver(this.admit(pid, socket, decoder));
      },
      drop,
    );
    socket.on('error', () => socket.destroy());
    socket.write(pidRequest(process.pid, this.sendFds !== null));
  }

  /**
   * The worker took the offer: its two pipes go over the connection (the worker's ends: the jobs pipe's read end and
   * the answers pipe's write end), the connection closes, and the pid request is sent again on the pipes; the
   * worker's SDK answers it there, which files it. When the pipes cannot be made or sent, the connection just closes:
   * the worker then stays on the socket (its SDK connects again).
   */
  private handOverPipes(pid: number, socket: net.Socket, sendFds: (socketFd: number, fds: readonly number[]) => void): void {
    let pipes: WorkerPipes;
    try {
      pipes = openWorkerPipes();
    } catch (err) {
      this.log.warn({ pid, err: (err as Error).message }, 'cannot make the pipes of a forked worker: it stays on the socket');
      socket.destroy();
      return;
    }
    try {
      const fd = socketFd(socket);
      if (fd === null) throw new Error('the connection has no fd');
      sendFds(fd, [pipes.childStdin, pipes.childStdout]);
    } catch (err) {
      this.log.warn({ pid, err: (err as Error).message }, 'cannot hand a forked worker its pipes: it stays on the socket');
      pipes.jobs.destroy();
      pipes.answers.destroy();
      return;
    } finally {
      pipes.closeChildEnds(); // the worker has its own copies once sendmsg returned
      socket.destroy();
    }
    this.track(pipes.jobs);
    this.track(pipes.answers);
    const relay = new FrameRelay('pipes', pipes.answers, pipes.jobs, undefined, (receiver) => pipes.onAnswerBytes(receiver));
    let settled = false; // filed or dropped: what the relay reports next is the worker's business
    const fail = (why: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      this.log.warn({ pid }, `worker dropped after its relay hand-over: ${why}`);
      relay.close();
    };
    const timer = setTimeout(() => fail('no pid handshake on its pipes in time'), this.handshakeTimeoutMs);
    relay.attach({
      frame: (frame) => {
        if (settled) return;
        let answered: number;
        try {
          answered = parsePidReply(frame);
        } catch (err) {
          fail(`bad pid handshake on its pipes: ${(err as Error).message}`);
          return;
        }
        if (answered !== pid) {
          fail(`it answered pid ${answered} on its pipes`);
          return;
        }
        settled = true;
        clearTimeout(timer);
        this.deliver({ pid, relay, sockets: [pipes.jobs, pipes.answers] });
      },
      error: (err) => fail(err.message),
      close: () => fail('it closed its pipes before the pid handshake'),
    });
    relay.send(pidRequest(process.pid));
  }

  private admit(pid: number, accepted: net.Socket, decoder: FrameDecoder): AcceptedWorker {
    // Frames after the pid reply cannot come before a job is sent, so the decoder holds nothing more.
    decoder.maxPayload = DEFAULT_MAX_PAYLOAD; // the handshake limit is over: responses may be large
    // The handshake, pid and peer checks ran on the accepted socket; the jobs' answers are read into one buffer.
    const reads = new CopiedReads();
    const adopted = adoptConnection(accepted, reads.buffer, reads.callback);
    if (adopted === null) {
      const relay = new FrameRelay(this.address.kind, accepted, accepted, decoder);
      accepted.resume();
      return { pid, relay, sockets: [accepted] };
    }
    const socket = adopted.socket;
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    reads.prepend(adopted.early);
    const relay = new FrameRelay(this.address.kind, socket, socket, decoder, (receiver) => reads.onBytes(receiver));
    return { pid, relay, sockets: [socket] };
  }

  /** checkPeers: hand the connection to the spawner waiting for its process, or close it and say why. */
  private async admitChecked(claimedPid: number, socket: net.Socket, decoder: FrameDecoder): Promise<void> {
    const verdict = await checkPeer(socket, this.address.kind, claimedPid, (pid) => this.waiting.has(pid));
    if (socket.destroyed) return;
    const waiter = verdict.ok ? this.waiting.get(verdict.spawnedPid) : undefined;
    if (!verdict.ok || !waiter) {
      const why = verdict.ok ? `no start of worker ${verdict.spawnedPid} waits for it any more` : verdict.why;
      const peer = verdict.ok ? claimedPid : verdict.peerPid;
      this.log.warn({ pid: claimedPid, peer_pid: peer ?? undefined, relay: formatListenAddress(this.address) }, `worker connection refused: ${why}`);
      socket.destroy();
      return;
    }
    this.waiting.delete(verdict.spawnedPid);
    waiter.resolve(this.admit(verdict.spawnedPid, socket, decoder));
  }

  private deliver(worker: AcceptedWorker): void {
    const waiter = this.waiting.get(worker.pid);
    if (waiter) {
      this.waiting.delete(worker.pid);
      waiter.resolve(worker);
      return;
    }
    // The spawner may not have registered yet; keep it briefly.
    const timer = setTimeout(() => {
      this.unclaimed.delete(worker.pid);
      this.log.warn({ pid: worker.pid }, 'worker connection dropped: no process with this pid was started by rrts');
      destroyWorker(worker);
    }, 5_000);
    this.unclaimed.set(worker.pid, { worker, timer });
  }
}

function destroyWorker(worker: AcceptedWorker): void {
  for (const socket of worker.sockets) socket.destroy();
}

/** The addon's sendFds when workers can be handed pipes here; null (and said once) when they cannot. */
function pipesHandOver(log: Logger): ((socketFd: number, fds: readonly number[]) => void) | null {
  const sendFds = addonFunction('sendFds');
  const why = sendFds === null ? 'the native addon has no sendFds (rebuild it: npm ci)' : workerPipesUnavailableReason();
  if (why === null) return sendFds;
  log.warn(`forked workers talk over the unix socket, not pipes: ${why}`);
  return null;
}

function removeStaleSocket(file: string): void {
  try {
    if (fs.lstatSync(file).isSocket()) fs.unlinkSync(file);
  } catch {
    /* not there */
  }
}
