// The socket relay (tcp:// or unix://): workers connect to rrts; each connection gets the pid request at once and is
// filed under the pid the worker answers, for the spawner that waits for that pid (docs/protocol.md §2.3).
// With checkPeers (exec mode) a connection joins only when the kernel confirms who connected (peer-check.ts).
// A connection that joins is moved into a socket read with `onread` (adopt.ts): the relay's hot path, as exec
// mode's pipes are read. With offerPipes (fork mode) a child of ours is sent two real pipes with the pid request
// (SCM_RIGHTS) and is filed on the pipes or the connection, wherever its SDK answers.
import net from 'node:net';
import fs from 'node:fs';
import { DEFAULT_MAX_PAYLOAD, FrameDecoder, type Frame } from '../goridge/frame.js';
import { parsePidReply, pidRequest } from '../goridge/messages.js';
import { FrameRelay } from './relay.js';
import { onFirstFrames } from './first-frames.js';
import { formatListenAddress, type ListenAddress } from '../address.js';
import { checkPeer, unixPeerPid } from './peer-check.js';
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
/** A pid answer is a few dozen bytes: the decoder refuses more until the worker is admitted. */
const HANDSHAKE_MAX_PAYLOAD = 64 * 1024;

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
   * Fork mode: a connection whose peer (SO_PEERCRED) passes acceptPid gets two real pipes with its pid request
   * (where the addon's sendFds and posix-node's pipe2 are there; else nothing is offered). Not with checkPeers: its
   * check of the spawned process runs on the connection that joins.
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
  private readonly sendFds: ((socketFd: number, fds: readonly number[], data: Uint8Array) => void) | null;
  /** the next worker's pipes, made once the last hand-over settled: making them took ~0.3-0.5 ms of a start */
  private nextPipes: WorkerPipes | null = null;

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
    this.prepareNextPipes();
  }

  /** Make the next worker's pipes ahead, while listening; a failure is met again (and logged) at the hand-over. */
  private prepareNextPipes(): void {
    if (!this.sendFds || this.nextPipes || !this.server) return;
    try {
      this.nextPipes = openWorkerPipes();
    } catch {
      /* offerPipes makes them itself, and says why it cannot */
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
    this.nextPipes?.close();
    this.nextPipes = null;
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
    socket.on('error', () => socket.destroy());
    if (this.sendFds) {
      // the kernel names who connected, so the pipes go out before any answer: no round trip for the offer
      const peerPid = unixPeerPid(socket);
      if (peerPid !== null && this.acceptPid(peerPid, socket) && this.offerPipes(peerPid, socket, this.sendFds)) return;
    }
    const decoder = new FrameDecoder({ maxPayload: HANDSHAKE_MAX_PAYLOAD });
    const drop = (why: string): void => {
      this.log.warn({ remote: this.remote(socket) }, `worker connection dropped: ${why}`);
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
        try {
          pid = parsePidReply(frames[0]!);
        } catch (err) {
          drop(`bad pid handshake: ${(err as Error).message}`);
          return;
        }
        if (!this.acceptPid(pid, socket)) {
          drop(`pid ${pid} is not a worker rrts started`);
          return;
        }
        if (this.checkPeers) this.admitChecked(pid, socket, decoder).catch((err: Error) => drop(`cannot check who connected: ${err.message}`));
        else this.deliver(this.admit(pid, socket, decoder));
      },
      drop,
      (bytesSent) => this.closedBeforeAnswer(socket, bytesSent),
    );
    socket.write(pidRequest(process.pid));
  }

  /**
   * A connection closed before its pid answer. Without a byte it is a fork child's hand-over finding no pipes here
   * (php/lib/Fork/RelayPipes.php): its SDK connects again, so it is no worker's failure.
   */
  private closedBeforeAnswer(socket: net.Socket, bytesSent: number): void {
    if (bytesSent === 0) this.log.debug({ remote: this.remote(socket) }, 'relay connection closed without a pid answer');
    else this.log.warn({ remote: this.remote(socket) }, `worker connection dropped: it closed after ${bytesSent} bytes of its pid answer`);
  }

  private remote(socket: net.Socket): string {
    return socket.remoteAddress ?? (this.address.kind === 'unix' ? this.address.path : '');
  }

  /**
   * Fork mode, a child of ours connected (SO_PEERCRED): the pid request goes out in the same sendmsg as the worker's
   * ends of two new pipes (the jobs pipe's read end, the answers pipe's write end), and again on the jobs pipe. The
   * worker's SDK answers where its relay is: on the pipes (it took them: the connection closes, as it should) or on
   * the connection (it did not: its plain read of the request dropped the fds). False when the pipes cannot be made:
   * the caller then asks on the connection alone.
   */
  private offerPipes(peerPid: number, socket: net.Socket, sendFds: (socketFd: number, fds: readonly number[], data: Uint8Array) => void): boolean {
    let pipes: WorkerPipes;
    try {
      pipes = this.nextPipes ?? openWorkerPipes();
    } catch (err) {
      this.log.warn({ pid: peerPid, err: (err as Error).message }, 'cannot make the pipes of a forked worker: it stays on the socket');
      return false;
    }
    this.nextPipes = null;
    try {
      const fd = socketFd(socket);
      if (fd === null) throw new Error('the connection has no fd');
      sendFds(fd, [pipes.childStdin, pipes.childStdout], pidRequest(process.pid, true));
    } catch (err) {
      // the fds may have gone with a cut frame: the connection is no use; the worker's SDK connects again
      this.log.warn({ pid: peerPid, err: (err as Error).message }, 'cannot hand a forked worker its pipes: connection closed');
      pipes.close();
      socket.destroy();
      return true;
    } finally {
      pipes.closeChildEnds(); // the worker has its own copies once sendmsg returned
    }
    this.track(pipes.jobs);
    this.track(pipes.answers);
    const relay = new FrameRelay('pipes', pipes.answers, pipes.jobs, undefined, (receiver) => pipes.onAnswerBytes(receiver));
    let settled = false; // filed or dropped
    // the next worker's pipes once this one is settled, so their making is never on a start's path
    const settle = (): void => {
      settled = true;
      clearTimeout(timer);
      setImmediate(() => this.prepareNextPipes());
    };
    let socketClosed = false;
    let pipesClosed: string | null = null; // why, once the worker's ends are gone (it did not take them) or broke
    const fail = (why: string): void => {
      if (settled) return;
      settle();
      // close() ends every hand-over under way: no worker's failure to report then
      if (this.server) this.log.warn({ pid: peerPid }, `worker dropped at its relay hand-over: ${why}`);
      relay.close();
      socket.destroy();
    };
    const timer = setTimeout(() => fail('no pid handshake in time, on its pipes or its connection'), this.handshakeTimeoutMs);
    const pipesGone = (why: string): void => {
      pipesClosed ??= why;
      if (socketClosed) fail(`it closed its connection, and its pipes ${why}`);
    };
    relay.attach({
      frame: (frame) => {
        if (settled) return;
        const answered = pidAnswer(frame);
        if (answered !== peerPid) {
          fail(typeof answered === 'string' ? `bad pid handshake on its pipes: ${answered}` : `process ${peerPid} answered pid ${answered} on its pipes`);
          return;
        }
        settle();
        socket.destroy();
        this.deliver({ pid: peerPid, relay, sockets: [pipes.jobs, pipes.answers] });
      },
      error: (err) => pipesGone(`failed (${err.message})`),
      close: () => pipesGone('before the pid handshake'),
    });
    const decoder = new FrameDecoder({ maxPayload: HANDSHAKE_MAX_PAYLOAD });
    onFirstFrames(
      socket,
      decoder,
      this.handshakeTimeoutMs,
      'no pid handshake in time',
      (frames) => {
        if (settled) return;
        socket.pause();
        const answered = pidAnswer(frames[0]!);
        if (answered !== peerPid) {
          fail(typeof answered === 'string' ? `bad pid handshake: ${answered}` : `process ${peerPid} answered pid ${answered}`);
          return;
        }
        settle();
        relay.close(); // rrts's ends of the pipes it did not take
        this.deliver(this.admit(peerPid, socket, decoder));
      },
      fail,
      () => {
        socketClosed = true; // expected once it took the pipes: its answer comes on them
        if (pipesClosed !== null) fail(`it closed its connection, and its pipes ${pipesClosed}`);
      },
    );
    relay.send(pidRequest(process.pid));
    return true;
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

/** The pid a frame answers, or why it is no pid answer. */
function pidAnswer(frame: Frame): number | string {
  try {
    return parsePidReply(frame);
  } catch (err) {
    return (err as Error).message;
  }
}

function destroyWorker(worker: AcceptedWorker): void {
  for (const socket of worker.sockets) socket.destroy();
}

/** The addon's sendFds when workers can be handed pipes here; null (and said once) when they cannot. */
function pipesHandOver(log: Logger): ((socketFd: number, fds: readonly number[], data: Uint8Array) => void) | null {
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
