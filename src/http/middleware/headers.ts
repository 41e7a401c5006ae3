// The `headers` middleware: adds http.headers.request to every request, http.headers.response to every response,
// and answers CORS (http.headers.cors): preflights (OPTIONS with Access-Control-Request-Method) are answered here
// without a worker; other requests from an allowed origin get the CORS response headers.
import type { Logger } from 'pino';
import type { CorsConfig, HeadersConfig } from '../../config/types.js';
import { canonicalHeaderKey } from '../headers.js';
import { addRequestHeader, type AnyRequest, type AnyResponse, type Middleware } from './types.js';

export function corsAndHeaders(config: HeadersConfig, log: Logger): Middleware {
  const requestHeaders = Object.entries(config.request);
  const responseHeaders = Object.entries(config.response);
  const cors = config.cors ? new Cors(config.cors, config.cors.debug ? log : null) : null;
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

/**
 * A comma-separated config value as a list. RoadRunner 2025.1 (headers v5) trims only the whole string, so
 * `GET, POST` gives ` POST`, which never matches; rrts trims each item, as its next major does (docs/http.md).
 */
function list(value: string): string[] {
  return value.split(',').map((item) => item.trim());
}

/** One `*` in an allowed origin stands for any run of characters. */
interface WildcardOrigin {
  prefix: string;
  suffix: string;
}

const PREFLIGHT_VARY = 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers';
const DEFAULT_ALLOWED_HEADERS = ['accept', 'content-type', 'x-requested-with'];
const DEFAULT_ALLOWED_METHODS = ['GET', 'POST', 'HEAD'];

/**
 * http.headers.cors as RoadRunner's headers plugin sets up rs/cors (v1.11): answers and headers byte for byte,
 * including its choices (a preflight allows the one method asked for; `*` stays `*` with credentials).
 */
class Cors {
  private readonly anyOrigin: boolean;
  private readonly origins: string[] = [];
  private readonly wildcards: WildcardOrigin[] = [];
  /** allowed_origin_regex: when set, allowed_origin is ignored (rs/cors AllowOriginFunc). */
  private readonly originRegex: RegExp | null;
  private readonly anyHeader: boolean;
  /** Lower-case names in sorted order: a preflight's list must use them sorted and once each, as browsers send it. */
  private readonly headers: string[];
  private readonly methods: string[];
  private readonly exposed: string | null;
  private readonly maxAge: string | null;

  constructor(
    private readonly config: CorsConfig,
    /** http.headers.cors.debug: why each request got the headers it got */
    private readonly debugLog: Logger | null,
  ) {
    this.originRegex = config.allowedOriginRegex ? new RegExp(config.allowedOriginRegex) : null;
    const origins = config.allowedOrigin.trim() === '' ? [] : list(config.allowedOrigin).map((o) => o.toLowerCase());
    this.anyOrigin = this.originRegex === null && (origins.length === 0 || origins.includes('*'));
    if (!this.anyOrigin) {
      for (const origin of origins) {
        const star = origin.indexOf('*');
        if (star >= 0) this.wildcards.push({ prefix: origin.slice(0, star), suffix: origin.slice(star + 1) });
        else this.origins.push(origin);
      }
    }
    const headers = config.allowedHeaders.trim() === '' ? null : list(config.allowedHeaders);
    this.anyHeader = headers?.includes('*') ?? false;
    this.headers = [...new Set(headers ? headers.map((h) => h.toLowerCase()) : DEFAULT_ALLOWED_HEADERS)].sort();
    this.methods = config.allowedMethods.trim() === '' ? DEFAULT_ALLOWED_METHODS : list(config.allowedMethods);
    this.exposed = config.exposedHeaders.trim() === '' ? null : list(config.exposedHeaders).map(canonicalHeaderKey).join(', ');
    this.maxAge = config.maxAge > 0 ? String(config.maxAge) : config.maxAge < 0 ? '0' : null;
  }

  /** rs/cors's test: OPTIONS with Access-Control-Request-Method (Origin is checked later). */
  isPreflight(req: AnyRequest): boolean {
    return req.method === 'OPTIONS' && headerValue(req, 'access-control-request-method') !== '';
  }

  private originAllowed(origin: string): boolean {
    if (this.originRegex) return this.originRegex.test(origin);
    if (this.anyOrigin) return true;
    const lower = origin.toLowerCase();
    if (this.origins.includes(lower)) return true;
    return this.wildcards.some((w) => lower.length >= w.prefix.length + w.suffix.length && lower.startsWith(w.prefix) && lower.endsWith(w.suffix));
  }

  private methodAllowed(method: string): boolean {
    if (this.methods.length === 0) return false;
    return method === 'OPTIONS' || this.methods.includes(method);
  }

  /** rs/cors SortedSet.Accepts: every name allowed, in sorted order, each once; a few empty items tolerated. */
  private headersAllowed(values: string[]): boolean {
    let last = -1;
    let empty = 0;
    for (const value of values) {
      for (const item of value.split(',')) {
        const name = item.replace(/^[ \t]/, '').replace(/[ \t]$/, '');
        if (/^[ \t]|[ \t]$/.test(name)) return false; // more than one byte of white space around a name
        if (name === '') {
          if (++empty > 16) return false;
          continue;
        }
        const position = this.headers.indexOf(name);
        if (position <= last) return false;
        last = position;
      }
    }
    return true;
  }

  preflight(req: AnyRequest, res: AnyResponse): void {
    appendVary(res, PREFLIGHT_VARY);
    const origin = headerValue(req, 'origin');
    const requested = rawValues(req, 'access-control-request-headers');
    const method = headerValue(req, 'access-control-request-method');
    const refusal =
      origin === ''
        ? 'empty origin'
        : !this.originAllowed(origin)
          ? `origin '${origin}' not allowed`
          : !this.methodAllowed(method)
            ? `method '${method}' not allowed`
            : requested.length > 0 && !this.anyHeader && !this.headersAllowed(requested)
              ? `headers '${requested.join(', ')}' not allowed`
              : null;
    this.debugLog?.debug({ url: req.url }, refusal ? `cors: preflight aborted: ${refusal}` : 'cors: preflight allowed');
    if (refusal === null) {
      res.setHeader('Access-Control-Allow-Origin', this.anyOrigin ? '*' : rawValues(req, 'origin'));
      res.setHeader('Access-Control-Allow-Methods', rawValues(req, 'access-control-request-method'));
      if (requested.length > 0 && requested[0] !== '') res.setHeader('Access-Control-Allow-Headers', requested);
      if (this.config.allowCredentials) res.setHeader('Access-Control-Allow-Credentials', 'true');
      if (this.maxAge !== null) res.setHeader('Access-Control-Max-Age', this.maxAge);
    }
    res.writeHead(this.config.optionsSuccessStatus, { 'Content-Length': 0 });
    res.end();
  }

  actual(req: AnyRequest, res: AnyResponse): void {
    appendVary(res, 'Origin');
    const origin = headerValue(req, 'origin');
    const refusal =
      origin === ''
        ? 'missing origin'
        : !this.originAllowed(origin)
          ? `origin '${origin}' not allowed`
          : !this.methodAllowed(req.method ?? '')
            ? `method '${req.method}' not allowed`
            : null;
    this.debugLog?.debug({ url: req.url }, refusal ? `cors: actual request, no headers added: ${refusal}` : 'cors: actual request allowed');
    if (refusal !== null) return;
    res.setHeader('Access-Control-Allow-Origin', this.anyOrigin ? '*' : rawValues(req, 'origin'));
    if (this.exposed !== null) res.setHeader('Access-Control-Expose-Headers', this.exposed);
    if (this.config.allowCredentials) res.setHeader('Access-Control-Allow-Credentials', 'true');
  }
}

/** The first value of a request header, as Go's Header.Get returns it ('' when absent). */
function headerValue(req: AnyRequest, name: string): string {
  return rawValues(req, name)[0] ?? '';
}

/** Every value of a request header, one per header line (Node joins most repeated headers with ', '). */
function rawValues(req: AnyRequest, name: string): string[] {
  const distinct = (req as { headersDistinct?: Record<string, string[] | undefined> }).headersDistinct;
  if (distinct) return distinct[name] ?? [];
  const value = req.headers[name];
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

/** Vary grows by one more line, as rs/cors appends to what is there. */
function appendVary(res: AnyResponse, value: string): void {
  const current = res.getHeader('Vary');
  if (current === undefined) res.setHeader('Vary', value);
  else res.setHeader('Vary', [...(Array.isArray(current) ? current.map(String) : [String(current)]), value]);
}
