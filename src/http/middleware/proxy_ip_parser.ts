// The `proxy_ip_parser` middleware: when the peer is in http.trusted_subnets, the client IP PHP sees (remoteAddr)
// comes from Forwarded, X-Forwarded-For, X-Real-Ip, True-Client-Ip or Cf-Connecting-Ip, in that order. In chains
// (Forwarded, X-Forwarded-For) the right-most address that is not itself trusted wins, so a client cannot spoof
// its address by prepending one. Headers from untrusted peers are ignored. Without trusted_subnets it is off.
import net from 'node:net';
import type { Logger } from 'pino';
import type { AnyRequest, Middleware } from './types.js';

export function proxyIpParser(subnets: readonly string[], log: Logger): Middleware | null {
  if (subnets.length === 0) {
    log.warn('proxy_ip_parser: http.trusted_subnets is empty, the middleware is off');
    return null;
  }
  const trusted = new net.BlockList();
  for (const cidr of subnets) {
    const [address = '', bits] = cidr.trim().split('/');
    const family = net.isIP(address);
    if (family === 0) {
      log.warn({ subnet: cidr }, 'proxy_ip_parser: not a CIDR subnet, ignored');
      continue;
    }
    const type = family === 4 ? 'ipv4' : 'ipv6';
    trusted.addSubnet(address, bits === undefined ? (family === 4 ? 32 : 128) : Number(bits), type);
  }
  const isTrusted = (ip: string): boolean => {
    const family = net.isIP(ip);
    return family !== 0 && trusted.check(ip, family === 4 ? 'ipv4' : 'ipv6');
  };
  return (next) => async (req, res, state) => {
    if (isTrusted(state.remoteAddr)) {
      const client = resolveClientIp(req, isTrusted);
      if (client !== null) state.remoteAddr = client;
    }
    await next(req, res, state);
  };
}

function header(req: AnyRequest, name: string): string {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : (value ?? '');
}

export function resolveClientIp(req: AnyRequest, isTrusted: (ip: string) => boolean): string | null {
  const forwarded = header(req, 'forwarded');
  if (forwarded !== '') {
    const ip = rightmostUntrusted(forwardedFor(forwarded), isTrusted);
    if (ip !== null) return ip;
  }
  const xff = header(req, 'x-forwarded-for');
  if (xff !== '') {
    const ip = rightmostUntrusted(xff.split(','), isTrusted);
    if (ip !== null) return ip;
  }
  for (const name of ['x-real-ip', 'true-client-ip', 'cf-connecting-ip']) {
    const ip = cleanIp(header(req, name));
    if (ip !== null) return ip;
  }
  return null;
}

/** `for=` values of a Forwarded header, in order: `for=192.0.2.60;proto=http, for="[2001:db8::1]:4711"`. */
function forwardedFor(value: string): string[] {
  const out: string[] = [];
  for (const element of value.split(',')) {
    for (const pair of element.split(';')) {
      const eq = pair.indexOf('=');
      if (eq === -1 || pair.slice(0, eq).trim().toLowerCase() !== 'for') continue;
      out.push(
        pair
          .slice(eq + 1)
          .trim()
          .replace(/^"|"$/g, ''),
      );
    }
  }
  return out;
}

function rightmostUntrusted(candidates: string[], isTrusted: (ip: string) => boolean): string | null {
  let last: string | null = null;
  for (let i = candidates.length - 1; i >= 0; i--) {
    const ip = cleanIp(candidates[i]!);
    if (ip === null) return last; // a garbled entry ends the chain we can believe
    last = ip;
    if (!isTrusted(ip)) return ip;
  }
  return last;
}

/** An IP without port or brackets, or null. */
function cleanIp(raw: string): string | null {
  let ip = raw.trim();
  if (ip.startsWith('[')) ip = ip.slice(1, ip.indexOf(']') === -1 ? undefined : ip.indexOf(']'));
  else if (net.isIP(ip) === 0 && ip.indexOf(':') === ip.lastIndexOf(':')) ip = ip.split(':')[0]!; // 1.2.3.4:567
  if (ip.startsWith('::ffff:') && ip.includes('.')) ip = ip.slice(7);
  return net.isIP(ip) !== 0 ? ip : null;
}
