// Builds http.middleware into one handler in RoadRunner's order (2023-2025.1): each listed middleware wraps the
// previous result, so the LAST listed is outermost and sees the request first (docs/compatibility.md §1.9).
import type { Logger } from 'pino';
import type { HttpConfig } from '../../config/types.js';
import { corsAndHeaders } from './headers.js';
import { gzip } from './gzip.js';
import { proxyIpParser } from './proxy_ip_parser.js';
import { staticFiles } from './static.js';
import type { HttpHandler, Middleware } from './types.js';

export type { AnyRequest, AnyResponse, HttpHandler, Middleware, RequestState } from './types.js';

/** null: the name is handled elsewhere (http_metrics, by the HttpPlugin) or unknown (warned about at config time). */
function create(name: string, config: HttpConfig, log: Logger): Middleware | null {
  switch (name) {
    case 'headers':
      return corsAndHeaders(config.headers, log);
    case 'gzip':
      return gzip();
    case 'static':
      return config.static ? staticFiles(config.static) : null;
    case 'proxy_ip_parser':
      return proxyIpParser(config.trustedSubnets, log);
    default:
      return null;
  }
}

export function buildChain(config: HttpConfig, log: Logger, inner: HttpHandler): HttpHandler {
  let handler = inner;
  for (const name of config.middleware) {
    const middleware = create(name, config, log);
    if (middleware) handler = middleware(handler);
  }
  return handler;
}
