// The `headers` middleware: adds http.headers.request to every request, http.headers.response to every response,
// and answers CORS (http.headers.cors): preflights (OPTIONS with Origin and Access-Control-Request-Method) are
// answered here without a worker; other requests from an allowed origin get the CORS response headers.
import type { CorsConfig, HeadersConfig } from '../../config/types.js';
import { addRequestHeader, type AnyRequest, type AnyResponse, type Middleware } from './types.js';

export function corsAndHeaders(config: HeadersConfig): Middleware {
  const requestHeaders = Object.entries(config.request);
  const responseHeaders = Object.entries(config.response);
  const cors = config.cors ? new Cors(config.cors) : null;
  return (next) => async (req, res, state) => {
    for (const [name, value] of requestHeaders) addRequestHeader(req, name, value);
    for (const [name, value] of responseHeaders) res.setHeader(name, value);
    if (cors) {
      if (cors.isPreflight(req)) {
        cors.preflight(req, res);
        req.resume();
        return;
      }
      cors.actual(req, res);
    }
    await next(req, res, state);
  };
}

function list(value: string): string[] {
  return value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

class Cors {
  private readonly origins: string[];
  private readonly anyOrigin: boolean;
  private readonly originRegex: RegExp | null;

  constructor(private readonly config: CorsConfig) {
    this.origins = list(config.allowedOrigin).map((o) => o.toLowerCase());
    this.anyOrigin = this.origins.includes('*');
    this.originRegex = config.allowedOriginRegex ? new RegExp(config.allowedOriginRegex) : null;
  }

  isPreflight(req: AnyRequest): boolean {
    return req.method === 'OPTIONS' && req.headers.origin !== undefined && req.headers['access-control-request-method'] !== undefined;
  }

  /** The value for Access-Control-Allow-Origin, or null when the origin is not allowed. */
  private allowOrigin(origin: string): string | null {
    if (this.anyOrigin) return this.config.allowCredentials ? origin : '*';
    if (this.origins.includes(origin.toLowerCase())) return origin;
    if (this.originRegex?.test(origin)) return origin;
    return null;
  }

  preflight(req: AnyRequest, res: AnyResponse): void {
    res.setHeader('Vary', 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers');
    const allowed = this.allowOrigin(String(req.headers.origin));
    if (allowed !== null) {
      res.setHeader('Access-Control-Allow-Origin', allowed);
      if (this.config.allowedMethods) res.setHeader('Access-Control-Allow-Methods', this.config.allowedMethods);
      const requested = req.headers['access-control-request-headers'];
      const headers = this.config.allowedHeaders.trim() === '*' && requested ? String(requested) : this.config.allowedHeaders;
      if (headers) res.setHeader('Access-Control-Allow-Headers', headers);
      if (this.config.allowCredentials) res.setHeader('Access-Control-Allow-Credentials', 'true');
      if (this.config.maxAge > 0) res.setHeader('Access-Control-Max-Age', String(this.config.maxAge));
    }
    res.writeHead(200, { 'Content-Length': 0 });
    res.end();
  }

  actual(req: AnyRequest, res: AnyResponse): void {
    const origin = req.headers.origin;
    if (origin === undefined) return;
    res.setHeader('Vary', 'Origin');
    const allowed = this.allowOrigin(String(origin));
    if (allowed === null) return;
    res.setHeader('Access-Control-Allow-Origin', allowed);
    if (this.config.allowCredentials) res.setHeader('Access-Control-Allow-Credentials', 'true');
    if (this.config.exposedHeaders) res.setHeader('Access-Control-Expose-Headers', this.config.exposedHeaders);
  }
}
