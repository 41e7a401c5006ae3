// Reading /proc: the one place that parses /proc/<pid>/stat and /status, a process's fd table and the kernel's TCP
// socket tables (/proc/net/tcp, tcp6).
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';

export interface ProcStat {
  state: string;
  ppid: number;
  /** CPU time spent in user mode, in clock ticks */
  utime: number;
  /** CPU time spent in kernel mode, in clock ticks */
  stime: number;
  /** when the process started, in clock ticks after boot */
  startTime: number;
}

/** State, parent pid and CPU times of a process from /proc/<pid>/stat, or null once it is fully gone. */
export function procStat(pid: number): ProcStat | null {
  try {
    return parseStat(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

/** procStat without blocking the event loop, for paths that run while requests are served. */
export async function readProcStat(pid: number): Promise<ProcStat | null> {
  try {
    return parseStat(await fs.promises.readFile(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

function parseStat(text: string): ProcStat {
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' '); // the name in () may hold spaces and ')'
  return { state: rest[0]!, ppid: Number(rest[1]), utime: Number(rest[11]), stime: Number(rest[12]), startTime: Number(rest[19]) };
}

/** A process's resident set size in bytes (VmRSS of /proc/<pid>/status), or null when it is gone (or a zombie). */
export async function readRssBytes(pid: number): Promise<number | null> {
  let text: string;
  try {
    text = await fs.promises.readFile(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(text)?.[1];
  return kb === undefined ? null : Number(kb) * 1024;
}

/** Does process `pid` have an fd open on the socket with this inode (a /proc/<pid>/fd link to socket:[inode])? */
export async function holdsSocket(pid: number, inode: number): Promise<boolean> {
  const dir = `/proc/${pid}/fd`;
  let fds: string[];
  try {
    fds = await fs.promises.readdir(dir);
  } catch {
    return false; // gone, or not ours to read
  }
  const target = `socket:[${inode}]`;
  const links = await Promise.all(fds.map((fd) => fs.promises.readlink(`${dir}/${fd}`).catch(() => '')));
  return links.includes(target);
}

/** One end of a TCP connection as Node reports it (socket.localAddress/localPort, remoteAddress/remotePort). */
export interface TcpEnd {
  address: string;
  port: number;
}

/**
 * The inode of the TCP socket of this network namespace bound to `local` and connected to `remote`, from
 * /proc/net/tcp and /proc/net/tcp6, or null when there is none (the process on the other end is on another host,
 * or the connection is gone).
 */
export async function tcpSocketInode(local: TcpEnd, remote: TcpEnd): Promise<number | null> {
  const localBytes = ipBytes(local.address);
  const remoteBytes = ipBytes(remote.address);
  if (!localBytes || !remoteBytes) return null;
  // An IPv4 peer of a dual-stack listener is ::ffff:a.b.c.d on our side but may be an AF_INET socket on its own.
  const v4 = localBytes.length === 4 && remoteBytes.length === 4;
  const tables: Array<[file: string, key: string]> = [];
  if (v4) tables.push(['/proc/net/tcp', ` ${procHex(localBytes)}:${procPort(local.port)} ${procHex(remoteBytes)}:${procPort(remote.port)} `]);
  tables.push(['/proc/net/tcp6', ` ${procHex(mapped(localBytes))}:${procPort(local.port)} ${procHex(mapped(remoteBytes))}:${procPort(remote.port)} `]);
  for (const [file, key] of tables) {
    const inode = await findInTable(file, key);
    if (inode !== null) return inode;
  }
  return null;
}

const TABLE_CHUNK_BYTES = 64 * 1024;

/**
 * The inode on the first line of a /proc/net/tcp* table that holds `key` (its local and remote address), read a
 * chunk at a time and stopped there: the kernel walks its whole connection hash table to print the file, which is
 * what the check costs.
 */
async function findInTable(file: string, key: string): Promise<number | null> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(file, 'r');
  } catch {
    return null; // no tcp6 table when IPv6 is off
  }
  try {
    const buffer = Buffer.allocUnsafe(TABLE_CHUNK_BYTES);
    let carry = ''; // the unfinished last line of the previous chunk
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) return null;
      const text = carry + buffer.toString('latin1', 0, bytesRead);
      const lastNewline = text.lastIndexOf('\n');
      const whole = text.slice(0, lastNewline + 1);
      carry = text.slice(lastNewline + 1);
      for (let at = whole.indexOf(key); at >= 0; at = whole.indexOf(key, at + key.length)) {
        const fields = whole.slice(at + 1, whole.indexOf('\n', at)).split(/\s+/);
        const inode = Number(fields[8]); // local rem st tx:rx tr:when retrnsmt uid timeout inode
        if (inode > 0) return inode; // 0: a TIME_WAIT leftover, no longer anyone's
      }
    }
  } finally {
    await handle.close();
  }
}

/** An address in network order: 4 bytes for IPv4 and IPv4-mapped IPv6, else 16; null when it is no IP. */
export function ipBytes(text: string): Buffer | null {
  if (net.isIPv4(text)) return Buffer.from(text.split('.').map(Number));
  if (!net.isIPv6(text)) return null;
  let rest = text.replace(/%.*$/, ''); // a zone id (fe80::1%eth0)
  const tail = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(rest);
  if (tail) {
    const [a, b, c, d] = tail.slice(1).map(Number) as [number, number, number, number];
    rest = `${rest.slice(0, tail.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, after] = rest.split('::') as [string, string | undefined];
  const front = head ? head.split(':') : [];
  const back = after ? after.split(':') : [];
  const groups = after === undefined ? front : [...front, ...Array<string>(8 - front.length - back.length).fill('0'), ...back];
  const out = Buffer.alloc(16);
  groups.forEach((group, i) => out.writeUInt16BE(parseInt(group, 16), i * 2));
  const v4Mapped = out.subarray(0, 10).every((byte) => byte === 0) && out[10] === 0xff && out[11] === 0xff;
  return v4Mapped ? out.subarray(12) : out;
}

/** ::ffff:a.b.c.d for an IPv4 address, as an AF_INET6 socket holds it. */
function mapped(bytes: Buffer): Buffer {
  return bytes.length === 16 ? bytes : Buffer.concat([Buffer.alloc(10), Buffer.from([0xff, 0xff]), bytes]);
}

/** The kernel prints an address as 32-bit words in host byte order (%08X each). */
function procHex(bytes: Buffer): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 4) {
    const word = Buffer.from(bytes.subarray(i, i + 4));
    if (os.endianness() === 'LE') word.reverse();
    out += word.toString('hex').toUpperCase();
  }
  return out;
}

function procPort(port: number): string {
  return port.toString(16).toUpperCase().padStart(4, '0');
}
