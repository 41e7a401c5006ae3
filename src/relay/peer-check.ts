// Exec mode's check of who connects to a socket relay: the process the kernel names at the other end of the
// connection (SO_PEERCRED on unix, the socket's owner in /proc on tcp) must be the pid it answered, and must be a
// process rrts spawned or a descendant of one (php under `sh -c` or a wrapper script in server.command).
import fs from 'node:fs';
import type net from 'node:net';
import { loadNative, nativeUnavailableReason, socketFd } from '../native/index.js';
import { holdsSocket, readProcStat, tcpSocketInode } from '../system/proc.js';

/** How many parents up from the connecting process the spawned one may be (php under a shell under a wrapper …). */
const MAX_WRAPPER_DEPTH = 8;

export type PeerVerdict = { ok: true; spawnedPid: number } | { ok: false; why: string; peerPid: number | null };

/** Why the check cannot run here for this kind of relay, or null when it can. */
export function peerCheckUnavailableReason(kind: 'tcp' | 'unix'): string | null {
  if (kind === 'unix' && loadNative() === null) return `reading SO_PEERCRED needs the native addon, and ${nativeUnavailableReason()}`;
  const needed = kind === 'unix' ? ['/proc/self/stat'] : ['/proc/self/stat', '/proc/self/fd', '/proc/net/tcp'];
  for (const file of needed) {
    try {
      fs.accessSync(file, fs.constants.R_OK);
    } catch (err) {
      return `${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
    }
  }
  return null;
}

/**
 * Check a connection that answered the pid handshake with `claimedPid`. `isSpawned(pid)` says whether rrts spawned
 * that pid and still waits for its connection; a passing verdict names that spawned pid.
 */
export async function checkPeer(socket: net.Socket, kind: 'tcp' | 'unix', claimedPid: number, isSpawned: (pid: number) => boolean): Promise<PeerVerdict> {
  if (kind === 'unix') {
    const peerPid = unixPeerPid(socket);
    if (peerPid === null) return { ok: false, why: 'its peer credentials (SO_PEERCRED) cannot be read', peerPid: null };
    if (peerPid !== claimedPid) return { ok: false, why: `it answered pid ${claimedPid}, but process ${peerPid} connected (SO_PEERCRED)`, peerPid };
  }
  const spawnedPid = await spawnedAncestor(claimedPid, isSpawned);
  if (spawnedPid === null) {
    return { ok: false, why: `process ${claimedPid} is no worker rrts is starting, nor a descendant of one`, peerPid: kind === 'unix' ? claimedPid : null };
  }
  if (kind === 'tcp') {
    // Last, as the dear part: reading the kernel's TCP table (see tcpSocketInode).
    const local = { address: socket.localAddress ?? '', port: socket.localPort ?? 0 };
    const remote = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
    const inode = await tcpSocketInode(remote, local); // the peer's socket: bound to our remote end, connected to ours
    if (inode === null) return { ok: false, why: 'no socket on this host is its end of the connection (/proc/net/tcp)', peerPid: null };
    if (!(await holdsSocket(claimedPid, inode))) {
      return { ok: false, why: `it answered pid ${claimedPid}, but that process does not hold the connecting socket (socket:[${inode}])`, peerPid: null };
    }
  }
  return { ok: true, spawnedPid };
}

/** `pid` itself or its nearest ancestor for which isSpawned holds, within MAX_WRAPPER_DEPTH parents; else null. */
async function spawnedAncestor(pid: number, isSpawned: (pid: number) => boolean): Promise<number | null> {
  for (let depth = 0; depth <= MAX_WRAPPER_DEPTH; depth++) {
    if (isSpawned(pid)) return pid;
    const stat = await readProcStat(pid);
    if (!stat || stat.ppid <= 1) return null;
    pid = stat.ppid;
  }
  return null;
}

/** The pid the kernel recorded at connect() for the other end of a unix socket (SO_PEERCRED); null if unreadable. */
export function unixPeerPid(socket: net.Socket): number | null {
  const native = loadNative();
  const fd = socketFd(socket);
  if (!native || fd === null) return null;
  try {
    return native.peerCred(fd).pid;
  } catch {
    return null;
  }
}
