// Exec mode: a process per worker spawned from server.command, in its own process group, with the RR_* environment;
// the worker is ready when it answers the pid handshake over pipes or over the socket relay.
import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { ConfigError, ProtocolError, WorkerGoneError, WorkerHandshakeTimeoutError, WorkerStartError } from '../errors.js';
import type { Frame } from '../goridge/frame.js';
import { parsePidReply, pidRequest } from '../goridge/messages.js';
import { FrameRelay } from '../relay/relay.js';
import { SocketRelayListener } from '../relay/listener.js';
import { peerCheckUnavailableReason } from '../relay/peer-check.js';
import { parseListenAddress } from '../address.js';
import { logOutputLines, type WorkerOutputLines } from '../log/index.js';
import { Worker, type WorkerEvents } from '../worker/worker.js';
import { describeExit, type ExitInfo, type WorkerProcess } from '../worker/process.js';
import type { Spawner, SpawnerEvents, WorkerRecipe } from './spawner.js';
import type { Identity } from '../system/users.js';
import { parsePhpCommand, type PhpCommand } from '../config/php-command.js';
import { spawnChild } from '../system/children.js';
import { delay, settlesWithin } from '../time.js';
import { waitForStart } from './start-race.js';
import { openWorkerPipes, workerPipesUnavailableReason, type WorkerPipes } from './exec-pipes.js';

export interface ExecSpawnerOptions {
  command: readonly string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** server.relay as written: 'pipes', 'tcp://…', 'unix://…' */
  relay: string;
  allocateTimeoutMs: number;
  streamTimeoutMs: number;
  log: Logger;
  /** server.user/group: the uid/gid workers run with (rrts is root then) */
  identity?: Identity | null;
}

const STDERR_TAIL_BYTES = 4096;
/** How long a worker that closed stdout before its handshake gets to exit, so the error can give its exit code. */
const STDOUT_CLOSED_EXIT_WAIT_MS = 1_000;

/** A spawned child with the bookkeeping a boot error message needs. */
class ChildHandle implements WorkerProcess {
  readonly exited: Promise<ExitInfo>;
  /** stderr, held while the worker starts (see started() and failedOutput()) */
  private readonly stderrLines: WorkerOutputLines | null = null;

  constructor(
    readonly child: ChildProcess,
    readonly pid: number,
    log: Logger,
  ) {
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
      else child.once('exit', (code, signal) => resolve({ code, signal }));
    });
    if (child.stderr) {
      this.stderrLines = logOutputLines(child.stderr, log, pid);
      this.stderrLines.holdUntilReady();
    }
  }

  /** What the worker wrote to stderr while starting, for the error of a start that fails (then no longer kept). */
  get stderr(): string {
    // several paths may build the boot error (the exit, a closed pipe): each gets the same lines
    this.startOutput ??= (this.stderrLines?.take() ?? []).join('\n').slice(-STDERR_TAIL_BYTES);
    return this.startOutput;
  }
  private startOutput: string | null = null;

  /** The worker answered its handshake: what it wrote while starting is logged as its other output is. */
  started(): void {
    this.stderrLines?.release();
  }

  /** SIGKILL the worker and its process group (spawned detached, it leads one; unreaped, so its pid is still its). */
  killGroup(): void {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    try {
      process.kill(-this.pid, 'SIGKILL');
    } catch {
      this.signal('SIGKILL');
    }
  }

  signal(sig: NodeJS.Signals): boolean {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return false;
    try {
      return this.child.kill(sig);
    } catch {
      return false;
    }
  }
}

export class ExecSpawner extends EventEmitter<SpawnerEvents> implements Spawner {
  readonly mode = 'exec' as const;
  private listener: SocketRelayListener | null = null;
  /** workers spawned and not yet exited (the forced exit kills them) */
  private readonly live = new Set<ChildHandle>();
  /** real pipes cannot be made here: the workers get libuv's socketpairs */
  private pipesUnavailable = false;

  constructor(private opts: ExecSpawnerOptions) {
    super();
  }

  /** A php-cli per worker: nothing to start ahead; a reload's command and environment apply to the next spawns. */
  async renew(recipe?: WorkerRecipe): Promise<() => Promise<void>> {
    const previous = this.opts;
    if (recipe) this.opts = { ...this.opts, command: recipe.command, env: recipe.env };
    return async () => {
      this.opts = previous;
    };
  }

  async start(): Promise<void> {
    if (this.opts.relay === 'pipes' || this.opts.relay === '') return;
    const address = parseListenAddress(this.opts.relay, this.opts.cwd);
    const unchecked = peerCheckUnavailableReason(address.kind);
    // Refused, not run unchecked: any local process could then take a worker's place and read its requests.
    if (unchecked) {
      throw new ConfigError(
        `rrts cannot check which process connects to the relay ${this.opts.relay} here: ${unchecked}. Use server.relay: pipes (the default) instead`,
        { key: 'server.relay' },
      );
    }
    this.listener = new SocketRelayListener(address, this.opts.log, { handshakeTimeoutMs: this.opts.allocateTimeoutMs, checkPeers: true });
    await this.listener.listen();
    // Workers running as server.user must be able to connect (connect(2) needs write permission on the socket).
    const id = this.opts.identity;
    if (id && address.kind === 'unix') fs.chownSync(address.path, id.uid, id.gid);
  }

  async close(): Promise<void> {
    await this.listener?.close();
    this.listener = null;
  }

  /**
   * Forced exit, synchronous: SIGKILL every worker with its process group (what it started in the background), and
   * remove the unix relay socket file.
   */
  killAll(): void {
    for (const handle of this.live) handle.killGroup();
    this.listener?.removeSocketFile();
  }

  async spawnWorker(events: WorkerEvents): Promise<Worker> {
    const { command, env, cwd, log } = this.opts;
    const pipes = this.listener ? null : this.workerPipes();
    let child: ChildProcess;
    try {
      child = spawnChild(command[0]!, command.slice(1), {
        cwd,
        env,
        detached: true, // own process group: a terminal's Ctrl-C reaches rrts only
        ...(this.opts.identity ?? {}),
        stdio: pipes ? [pipes.childStdin, pipes.childStdout, 'pipe'] : ['pipe', 'pipe', 'pipe'],
      });
    } catch (err) {
      pipes?.close();
      throw err;
    } finally {
      // the child has its copies once spawn returns (or there is no child)
      pipes?.closeChildEnds();
    }
    let pid: number;
    try {
      pid = await childPid(child, command);
    } catch (err) {
      pipes?.close();
      throw err;
    }
    const handle = new ChildHandle(child, pid, log);
    this.live.add(handle);
    void handle.exited.then(() => this.live.delete(handle));
    try {
      const relay = this.listener ? await this.socketHandshake(handle) : await this.pipeHandshake(handle, pipes);
      handle.started();
      return new Worker(handle, relay, events, this.opts.streamTimeoutMs);
    } catch (err) {
      handle.started(); // an error that did not quote the start's output: log it rather than lose it
      handle.signal('SIGKILL');
      await handle.exited;
      pipes?.close(); // ChildProcess closes only the stdio it made
      throw err;
    }
  }

  /**
   * Real pipes for the next worker, or null for libuv's socketpairs where they cannot be made (no pipe2 in this
   * posix-node build, or it failed): slower, the same for the worker.
   */
  private workerPipes(): WorkerPipes | null {
    if (this.pipesUnavailable) return null;
    const reason = workerPipesUnavailableReason();
    try {
      if (reason === null) return openWorkerPipes();
      // on a socket PHP's fread(STDIN) gives up after default_socket_timeout: an idle worker dies once a minute
      this.opts.log.warn(
        `exec workers talk over socketpairs (${reason}): PHP's default_socket_timeout (60 s) then ends idle workers; ` +
          'set it to -1 in their php.ini or use relay: unix://',
      );
    } catch (err) {
      // EMFILE and the like: this worker's start would fail anyway; the next ones try again
      this.opts.log.warn({ err: (err as Error).message }, 'cannot make the pipes of a worker: it gets socketpairs');
      return null;
    }
    this.pipesUnavailable = true;
    return null;
  }

  private async pipeHandshake(handle: ChildHandle, pipes: WorkerPipes | null): Promise<FrameRelay> {
    const child = handle.child;
    const relay = pipes
      ? new FrameRelay('pipes', pipes.answers, pipes.jobs, undefined, (receiver) => pipes.onAnswerBytes(receiver))
      : new FrameRelay('pipes', child.stdout!, child.stdin!);
    relay.send(pidRequest(process.pid));
    let frame: Frame;
    try {
      frame = await this.raceBoot(handle, firstFrame(relay));
    } catch (err) {
      if (err instanceof ProtocolError) throw explainBootGarbage(handle.pid, err, this.missingScript());
      // stdout closes (or the pid request meets EPIPE) as the process exits: the exit code and stderr say why, the
      // closed pipe does not
      const pipeClosed = err instanceof WorkerGoneError || (err as NodeJS.ErrnoException).code === 'EPIPE';
      if (pipeClosed && (await settlesWithin(handle.exited, STDOUT_CLOSED_EXIT_WAIT_MS))) throw await bootExitError(handle, this.missingScript());
      throw err;
    }
    parseWorkerPid(frame, handle);
    return relay;
  }

  private async socketHandshake(handle: ChildHandle): Promise<FrameRelay> {
    const listener = this.listener!;
    // With a socket relay stdout is not protocol: log it like stderr.
    logOutputLines(handle.child.stdout!, this.opts.log, handle.pid);
    handle.child.stdin!.end();
    try {
      const accepted = await this.raceBoot(handle, listener.waitFor(handle.pid));
      return accepted.relay;
    } finally {
      listener.forget(handle.pid);
    }
  }

  private missingScript(): string | null {
    return missingScriptOf(this.opts.command, this.opts.cwd);
  }

  /** Wait for `step`, unless the process exits first or allocate_timeout passes. */
  private raceBoot<T>(handle: ChildHandle, step: Promise<T>): Promise<T> {
    const ms = this.opts.allocateTimeoutMs;
    return waitForStart(step, {
      exited: handle.exited,
      timeoutMs: ms,
      exitError: () => bootExitError(handle, this.missingScript()),
      timeoutError: () =>
        new WorkerHandshakeTimeoutError(
          `worker ${handle.pid} did not answer the pid handshake within ${formatMs(ms)} (pool.allocate_timeout)${tail(handle.stderr)}`,
        ),
    });
  }
}

function childPid(child: ChildProcess, command: readonly string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    if (child.pid !== undefined) {
      resolve(child.pid);
      return;
    }
    child.once('error', (err) =>
      reject(new WorkerStartError(`cannot start worker command '${command.join(' ')}': ${(err as NodeJS.ErrnoException).code ?? err.message}`)),
    );
    child.once('spawn', () => resolve(child.pid!));
  });
}

/**
 * A worker that exited before its handshake, with its exit code and the end of its stderr; `missing` names a php
 * worker script that is not there (php says so on stdout, which is the relay, so it would not be seen).
 */
async function bootExitError(handle: ChildHandle, missing: string | null = null): Promise<WorkerStartError> {
  const exit = await handle.exited;
  await delay(20); // let the last stderr bytes arrive
  const why = missing ? `; ${missing}` : '';
  return new WorkerStartError(`worker ${handle.pid} exited before it was ready (${describeExit(exit)})${why}${tail(handle.stderr)}`);
}

/** For `php … script.php`: a sentence naming the script and the directory it was looked for in, when it is not there. */
export function missingScriptOf(command: readonly string[], cwd: string): string | null {
  let php: PhpCommand;
  try {
    php = parsePhpCommand(command);
  } catch (err) {
    if (err instanceof ConfigError) return null; // not a plain php invocation: nothing to check
    throw err;
  }
  if (fs.existsSync(path.resolve(cwd, php.script))) return null;
  return path.isAbsolute(php.script)
    ? `the worker script ${php.script} does not exist`
    : `the worker script ${php.script} is not in ${cwd} (relative paths start from the working directory: -w, or the config file's folder)`;
}

function firstFrame(relay: FrameRelay): Promise<Frame> {
  return new Promise((resolve, reject) => {
    relay.attach({
      frame: resolve,
      error: (err) => reject(err),
      close: () => reject(new WorkerGoneError('worker closed stdout before the pid handshake')),
    });
  });
}

function parseWorkerPid(frame: Frame, handle: ChildHandle): number {
  try {
    return parsePidReply(frame);
  } catch (err) {
    throw new WorkerStartError(`worker ${handle.pid} answered the pid handshake wrongly: ${(err as Error).message}`);
  }
}

/** Explains a protocol error during boot: usually PHP printed something to stdout. */
export function explainBootGarbage(pid: number, err: Error, missing: string | null = null): WorkerStartError {
  const text = err.message;
  if (text.includes('Could not open input file')) {
    const file = /Could not open input file: ([^\\\n]*)/.exec(text)?.[1] ?? '';
    const why = missing ?? `php could not open the worker script ${file}`;
    return new WorkerStartError(`worker ${pid}: ${why} (check server.command)`);
  }
  return new WorkerStartError(
    `worker ${pid} wrote to stdout before the pid handshake; stdout is the pipes relay, print to stderr instead (ini_set('display_errors', 'stderr')): ${text}`,
  );
}

function tail(stderr: string): string {
  return stderr ? `; its output: ${stderr}` : '';
}

export function formatMs(ms: number): string {
  return ms >= 1000 ? `${ms / 1000}s` : `${ms}ms`;
}
