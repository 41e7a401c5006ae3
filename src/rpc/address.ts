// `rpc.listen` DSNs (compat.md §1.6): `tcp://host:port` or `unix://path` (relative paths against the work dir).
// Shared by the RPC server and the CLI client, which must read the address the same way.
import net from 'node:net';
import path from 'node:path';

export type ListenAddress = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

/** Parse a DSN; throws an Error whose text names what is wrong. */
export function parseListenAddress(listen: string, cwd: string): ListenAddress {
  const m = /^(tcp|unix):\/\/(.*)$/i.exec(listen.trim());
  if (!m) throw new Error(`invalid socket DSN (tcp://:6001, unix://file.sock), got ${JSON.stringify(listen)}`);
  const rest = m[2]!;
  if (m[1]!.toLowerCase() === 'unix') {
    if (!rest) throw new Error(`invalid socket DSN ${JSON.stringify(listen)}: the unix socket path is empty`);
    return { kind: 'unix', path: path.resolve(cwd, rest) };
  }
  const hp = /^(.*):(\d{1,5})$/.exec(rest);
  const port = hp ? Number(hp[2]) : NaN;
  if (!hp || port > 65535) throw new Error(`invalid socket DSN ${JSON.stringify(listen)}: expected tcp://host:port`);
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
