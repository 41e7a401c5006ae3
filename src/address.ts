// Addresses as RoadRunner writes them: `host:port` for HTTP-like listeners (`127.0.0.1:8080`, `:8080` = all
// interfaces, `[::1]:8080`), and `tcp://host:port` / `unix://path` DSNs for rpc.listen and socket relays.
import net from 'node:net';
import path from 'node:path';
import { AddressError } from './errors.js';

export function splitAddress(address: string): { host: string | undefined; port: number } {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i).replace(/^\[|\]$/g, '');
  return { host: host === '' ? undefined : host, port: Number(address.slice(i + 1)) };
}

export type ListenAddress = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

/**
 * The longest unix socket path bind() and connect() take on Linux: sun_path is 108 bytes with the terminating NUL.
 * A longer one is cut short, not refused: the socket appears under the shortened name.
 */
export const MAX_UNIX_SOCKET_PATH_BYTES = 107;

/** Why `file` (absolute) cannot be a unix socket path, or null. Counts UTF-8 bytes, as the kernel does. */
export function unixSocketPathProblem(file: string): string | null {
  const bytes = Buffer.byteLength(file, 'utf8');
  if (bytes <= MAX_UNIX_SOCKET_PATH_BYTES) return null;
  return `unix socket path ${JSON.stringify(file)} is ${bytes} bytes, over the limit of ${MAX_UNIX_SOCKET_PATH_BYTES} (sun_path is 108 bytes with the terminating NUL): use a shorter path`;
}

/** Parse a DSN (a relative unix path resolves against `cwd`); throws an AddressError whose text names what is wrong. */
export function parseListenAddress(listen: string, cwd: string): ListenAddress {
  const m = /^(tcp|unix):\/\/(.*)$/i.exec(listen.trim());
  if (!m) throw new AddressError(`invalid socket DSN (tcp://:6001, unix://file.sock), got ${JSON.stringify(listen)}`);
  const rest = m[2]!;
  if (m[1]!.toLowerCase() === 'unix') {
    if (!rest) throw new AddressError(`invalid socket DSN ${JSON.stringify(listen)}: the unix socket path is empty`);
    const file = path.resolve(cwd, rest);
    const problem = unixSocketPathProblem(file);
    if (problem) throw new AddressError(problem);
    return { kind: 'unix', path: file };
  }
  const hp = /^(.*):(\d{1,5})$/.exec(rest);
  const port = hp ? Number(hp[2]) : NaN;
  if (!hp || port > 65535) throw new AddressError(`invalid socket DSN ${JSON.stringify(listen)}: expected tcp://host:port`);
  return { kind: 'tcp', host: hp[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}

/** A tcp address only this machine can reach (an empty host listens on every interface). */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (net.isIPv4(h)) return h.startsWith('127.');
  if (net.isIPv6(h)) return h === '::1' || /^::ffff:127\./.test(h);
  return false;
}

/** `tcp://127.0.0.1:6001`, `tcp://[::1]:6001`, `unix:///run/rr.sock`. */
export function formatListenAddress(address: ListenAddress): string {
  if (address.kind === 'unix') return `unix://${address.path}`;
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  return `tcp://${host}:${address.port}`;
}
