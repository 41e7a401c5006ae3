// Typed access to the native addon (build/Release/rrts_native.node): pidfds, the child-subreaper flag and
// SO_PEERCRED, which fork mode needs and Node lacks, a unix datagram send for systemd notifications, a bare
// write(2) for the HTTP hot path (direct-write.ts), a close-on-exec dup(2) (adopt.ts) and an SCM_RIGHTS send (a
// fork worker's pipes, relay/listener.ts).
// Loaded lazily, once; callers check nativeUnavailableReason().
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A running poll on a pidfd, from watchPidfd. */
export interface PidfdWatch {
  /** Stops and frees the poll. Idempotent, and safe after the callback ran. Does not close the fd: close the watch first. */
  close(): void;
  /** Lets the process exit while the poll is active (uv_unref). */
  unref(): PidfdWatch;
  /** Undoes unref(): the poll keeps the process alive again (the default). */
  ref(): PidfdWatch;
}

/** Credentials of the process at the other end of a unix socket, as the kernel recorded them at connect(). */
export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

/**
 * The addon's exports. Failures throw an Error whose `code` is the errno name (ESRCH, ENOSYS, EPERM, …), with
 * `errno` and `syscall` set as on Node's own system errors.
 */
export interface NativeAddon {
  /** pidfd_open(pid, 0): a new fd referring to the process (close-on-exec). ESRCH if there is no such process. */
  pidfdOpen(pid: number): number;
  /** pidfd_send_signal(fd, signal): never hits a recycled pid. ESRCH once the process has been reaped. */
  pidfdSendSignal(fd: number, signal: number): void;
  /**
   * Polls the pidfd on Node's loop; when it becomes readable (the process exited) the poll stops and `callback`
   * runs once. A throw from the callback is an uncaught exception. At most one watch per fd at a time.
   */
  watchPidfd(fd: number, callback: () => void): PidfdWatch;
  /** close(2). */
  closeFd(fd: number): void;
  /** prctl(PR_SET_CHILD_SUBREAPER, 1): orphaned descendants are re-parented to this process, not to init. */
  setChildSubreaper(): void;
  /** prctl(PR_GET_CHILD_SUBREAPER). */
  isChildSubreaper(): boolean;
  /** getsockopt(fd, SOL_SOCKET, SO_PEERCRED) of a connected unix socket. */
  peerCred(fd: number): PeerCredentials;
  /**
   * One datagram to a unix SOCK_DGRAM socket (socket, sendto, close), e.g. systemd's NOTIFY_SOCKET. A path that
   * starts with '@' is an abstract socket name. ENOENT/ECONNREFUSED when nobody listens there.
   */
  sendUnixDatagram(path: string, data: Buffer): void;
  /**
   * One write(2) of `bytes` on a non-blocking fd: the number of bytes written (0 when it would block), or -errno
   * when it failed (never throws for the write itself).
   */
  writeSome(fd: number, bytes: Uint8Array): number;
  /** fcntl(fd, F_DUPFD_CLOEXEC): a new close-on-exec fd for the same open file (adopt.ts). */
  dupCloexec(fd: number): number;
  /**
   * One sendmsg(2) of `data` (non-empty) with an SCM_RIGHTS message carrying `fds` (1 to 4) on a connected unix
   * socket: the peer receives its own copies; the caller's stay open. Throws when it fails or sends less than `data`.
   */
  sendFds(socketFd: number, fds: readonly number[], data: Uint8Array): void;
}

const ADDON_PATH = join('build', 'Release', 'rrts_native.node');

type LoadResult = { addon: NativeAddon; reason: null } | { addon: null; reason: string };
let loaded: LoadResult | undefined;

/** The addon, or null when it cannot be used here (see nativeUnavailableReason). Loaded and probed once. */
export function loadNative(): NativeAddon | null {
  loaded ??= loadAndProbe();
  return loaded.addon;
}

/**
 * One function of the addon, bound to it, or null where it cannot be used: no addon, or one built before the function
 * existed (an old build/Release keeps working, the caller takes its fallback).
 */
export function addonFunction<K extends 'writeSome' | 'dupCloexec' | 'sendFds'>(name: K): NativeAddon[K] | null {
  const native = loadNative();
  const fn: unknown = native?.[name];
  return typeof fn === 'function' ? (fn.bind(native) as NativeAddon[K]) : null;
}

/** Why loadNative() returns null (missing build, load error, no pidfd support), or null when it works. */
export function nativeUnavailableReason(): string | null {
  loaded ??= loadAndProbe();
  return loaded.reason;
}

/** The OS fd behind a connected net.Socket (pipe or tcp handle), or null when it has none (yet). */
export function socketFd(socket: Socket): number | null {
  // Node exposes `fd` on the stream handles of Unix sockets and pipes; it is not public API, hence the guard.
  const fd = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd;
  return typeof fd === 'number' && Number.isInteger(fd) && fd >= 0 ? fd : null;
}

/**
 * Does the process at the other end of this unix socket (SO_PEERCRED) have this pid? True when the addon or the
 * fd is not available here: then the pid the peer named and the socket's 0600 mode in a 0700 directory decide.
 */
export function peerPidIs(socket: Socket, pid: number): boolean {
  const native = loadNative();
  const fd = socketFd(socket);
  if (!native || fd === null) return true;
  try {
    return native.peerCred(fd).pid === pid;
  } catch {
    return false;
  }
}

/** Absolute path where the built addon is expected (whether or not it exists). */
export function nativeAddonPath(): string | null {
  const root = packageRoot();
  return root === null ? null : join(root, ADDON_PATH);
}

function loadAndProbe(): LoadResult {
  if (process.platform !== 'linux') {
    return { addon: null, reason: `the native addon needs Linux >= 5.3 (this is ${process.platform})` };
  }
  const path = nativeAddonPath();
  if (path === null) return { addon: null, reason: 'cannot find the rrts package root (package.json) to load the native addon from' };
  if (!existsSync(path)) return { addon: null, reason: `${ADDON_PATH} is missing: run npm ci (it builds the addon with node-gyp)` };

  let addon: NativeAddon;
  try {
    addon = createRequire(import.meta.url)(path) as NativeAddon;
  } catch (error) {
    return { addon: null, reason: `cannot load ${ADDON_PATH}: ${(error as Error).message}` };
  }

  // pidfd_open needs Linux >= 5.3, and seccomp profiles of older container runtimes refuse it with EPERM.
  try {
    addon.closeFd(addon.pidfdOpen(process.pid));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOSYS') return { addon: null, reason: 'pidfd_open is not supported by this kernel (ENOSYS); Linux >= 5.3 is needed' };
    return { addon: null, reason: `pidfd_open does not work here: ${(error as Error).message}` };
  }
  return { addon, reason: null };
}

/**
 * The directory of rrts's package.json, found by walking up from this module: dist/src/native/index.js once
 * built, src/native/index.ts when run from source.
 */
function packageRoot(): string | null {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && readPackageName(manifest) === 'rrts') return dir;
    const parent = dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

function readPackageName(manifest: string): string | null {
  try {
    const parsed = JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown };
    return typeof parsed.name === 'string' ? parsed.name : null;
  } catch {
    return null;
  }
}
