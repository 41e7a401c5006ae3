// `server` (docs/compatibility.md §1.7): the worker command, its user and environment, the relay, on_init, and the rrts
// `fork` extension.
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { MAX_UNIX_SOCKET_PATH_BYTES, parseListenAddress, unixSocketPathProblem, type ListenAddress } from '../../address.js';
import type { ForkConfig, OnInitConfig, PoolConfig, ServerConfig } from '../types.js';
import type { SectionReader } from '../reader.js';
import type { SectionContext } from './context.js';

const DEFAULT_RELAY = 'pipes';
const DEFAULT_ON_INIT_TIMEOUT_MS = 60_000;

/**
 * `required` is true when a plugin needs workers (http); then a missing server section is an error. Without
 * it, a file with no server section gets an empty command (e.g. a config read only for rpc.listen).
 */
export function readServer(root: SectionReader, ctx: SectionContext, required: boolean): ServerConfig {
  const server = root.section('server');
  if (!server) {
    if (required) root.fail('server', 'the http plugin needs a server section with a command, e.g. server: {command: "php worker.php"}');
    return emptyServer();
  }
  const command = server.command('command');
  if (command.length === 0) server.fail('command', 'command should not be empty');
  return {
    command,
    user: server.string('user'),
    group: server.string('group'),
    env: upperCaseKeys(server.stringMap('env')),
    relay: readRelay(server, ctx.workDir),
    onInit: readOnInit(server.section('on_init')),
    fork: readFork(server.section('fork'), ctx),
  };
}

function emptyServer(): ServerConfig {
  return {
    command: [],
    user: '',
    group: '',
    env: {},
    relay: DEFAULT_RELAY,
    onInit: null,
    fork: { enabled: false, preload: null, spares: DEFAULT_FORK_SPARES },
  };
}

/** Worker env names are upper-cased (the file's keys were lower-cased when read, as viper does). */
function upperCaseKeys(env: Record<string, string>): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) result[key.toUpperCase()] = value;
  return result;
}

/** `pipes`, `tcp://host:port` or `unix://path`. PHP connects to the address, so tcp needs a host. */
function readRelay(server: SectionReader, workDir: string): string {
  const relay = server.string('relay').trim() || DEFAULT_RELAY;
  const problem = relayProblem(relay, workDir);
  if (problem) server.fail('relay', problem);
  return relay;
}

/** A relative unix path is resolved against the working directory, where rrts binds it and the workers run. */
function relayProblem(relay: string, workDir: string): string | null {
  if (relay === 'pipes') return null;
  if (relay.startsWith('unix://')) {
    if (relay.length === 'unix://'.length) return `expected unix://path/to/socket, got ${JSON.stringify(relay)}`;
    return unixSocketPathProblem(resolve(workDir, relay.slice('unix://'.length)));
  }
  if (relay.startsWith('tcp://')) return tcpRelayProblem(relay, workDir);
  return `expected pipes, tcp://host:port or unix://path, got ${JSON.stringify(relay)}`;
}

/** The one tcp:// parser (address.ts) reads it; a relay also needs a port workers can dial and a host. */
function tcpRelayProblem(relay: string, workDir: string): string | null {
  let address: ListenAddress | null;
  try {
    address = parseListenAddress(relay, workDir);
  } catch {
    address = null;
  }
  if (address?.kind !== 'tcp' || address.port < 1) {
    return `expected tcp://host:port with a port from 1 to 65535, got ${JSON.stringify(relay)}`;
  }
  if (address.host === '') {
    return `PHP workers connect to this address, so it needs a host: write tcp://127.0.0.1:${address.port} instead of ${JSON.stringify(relay)}`;
  }
  return null;
}

function readOnInit(onInit: SectionReader | null): OnInitConfig | null {
  if (!onInit) return null;
  const command = onInit.command('command');
  if (command.length === 0) onInit.fail('command', 'on_init command should not be empty');
  return {
    command,
    execTimeout: onInit.duration('exec_timeout') || DEFAULT_ON_INIT_TIMEOUT_MS,
    env: upperCaseKeys(onInit.stringMap('env')),
    user: onInit.string('user'),
    exitOnError: onInit.bool('exit_on_error'),
  };
}

/** Children the fork master keeps forked and parked ahead of requests (server.fork.spares). */
export const DEFAULT_FORK_SPARES = 1;
export const MAX_FORK_SPARES = 16;

/**
 * The spares a pool's fork master keeps parked: server.fork.spares when written; for a pool with a
 * dynamic_allocator, one per extra worker up to MAX_FORK_SPARES, so a burst's first workers are woken rather than
 * forked (docs/fork-mode.md §5 has what it buys and costs); otherwise DEFAULT_FORK_SPARES.
 */
export function poolForkSpares(fork: ForkConfig, pool: PoolConfig): number {
  if (fork.sparesWritten || !pool.dynamicAllocator) return fork.spares;
  return Math.min(pool.dynamicAllocator.maxWorkers, MAX_FORK_SPARES);
}

/** rrts extension: fork workers from one PHP master. The preload path is made absolute against workDir. */
function readFork(fork: SectionReader | null, ctx: SectionContext): ForkConfig {
  if (!fork) return { enabled: false, preload: null, spares: DEFAULT_FORK_SPARES };
  const preload = fork.string('preload');
  const written = fork.has('spares');
  const spares = written ? fork.uint('spares') : DEFAULT_FORK_SPARES;
  if (spares > MAX_FORK_SPARES) fork.fail('spares', `must be from 0 to ${MAX_FORK_SPARES} (children parked ahead of fork requests), got ${spares}`);
  const enabled = fork.bool('enabled');
  if (enabled) {
    const problem = forkSocketProblem();
    if (problem) fork.fail('enabled', problem);
  }
  return { enabled, preload: preload === '' ? null : resolve(ctx.workDir, preload), spares, ...(written ? { sparesWritten: true as const } : {}) };
}

/**
 * Fork mode's sockets live in a private directory under the temp dir (src/spawn/fork/: mkdtemp `rrts-XXXXXX`
 * holding `workers.sock` and one `control-<n>.sock` per master, n counting up); a long TMPDIR would make them
 * longer than a socket path can be. n is given 10 digits: a master per second for a century stays under.
 */
const FORK_SOCKET_LONGEST = join('rrts-XXXXXX', `control-${'9'.repeat(10)}.sock`);

function forkSocketProblem(): string | null {
  const dir = tmpdir();
  const socket = join(dir, FORK_SOCKET_LONGEST);
  const bytes = Buffer.byteLength(socket, 'utf8');
  if (bytes <= MAX_UNIX_SOCKET_PATH_BYTES) return null;
  const room = MAX_UNIX_SOCKET_PATH_BYTES - Buffer.byteLength(FORK_SOCKET_LONGEST) - 1;
  return `fork mode's unix sockets go in a private directory under the temp dir ${JSON.stringify(dir)} (TMPDIR): the longest, ${JSON.stringify(socket)}, is ${bytes} bytes, over the limit of ${MAX_UNIX_SOCKET_PATH_BYTES} for a socket path; set TMPDIR to a directory of at most ${room} bytes`;
}
