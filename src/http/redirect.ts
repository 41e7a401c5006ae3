// http.ssl.redirect: the plain server answers every request with 308 to the same path and query on https,
// at the host the client asked for with the TLS port (left out when it is 443), as RoadRunner does.
import { splitAddress } from '../address.js';
import type { HttpHandler } from './middleware/types.js';

export function httpsRedirect(sslAddress: string): HttpHandler {
  const { port } = splitAddress(sslAddress);
  const portSuffix = Number(port) === 443 ? '' : `:${port}`;
  return async (req, res) => {
    const host = hostWithoutPort(String(req.headers[':authority'] ?? req.headers.host ?? ''));
    const location = `https://${host}${portSuffix}${req.url ?? '/'}`;
    res.writeHead(308, { Location: location, 'Content-Length': 0 });
    res.end();
    req.resume();
  };
}

/** `example.com:80` -> `example.com`, `[::1]:80` -> `[::1]`. */
export function hostWithoutPort(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end === -1 ? host : host.slice(0, end + 1);
  }
  const colon = host.lastIndexOf(':');
  return colon === -1 ? host : host.slice(0, colon);
}
