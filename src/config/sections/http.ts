// `http` (docs/compatibility.md §1.9): address, error code, body limits, middleware list, uploads and the pool.
// Also TLS (ssl), HTTP/2, the settings of the middleware rrts implements (headers, static) and the rrts-only
// status-code and timeout keys (docs/http.md). Files named by the config (certificates, static.dir) are checked here,
// so a missing one fails start-up with the key that names it.
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ClientAuthType, CorsConfig, FrontConfig, HeadersConfig, Http2Config, HttpConfig, SslConfig, StaticConfig, UploadsConfig } from '../types.js';
import type { SectionReader } from '../reader.js';
import type { SectionContext } from './context.js';
import { readPool } from './pool.js';

const DEFAULT_INTERNAL_ERROR_CODE = 500;
const DEFAULT_MAX_REQUEST_SIZE = 1000 * 1024 * 1024;

/** null when there is no http section (the plugin is off). */
export function readHttp(root: SectionReader, ctx: SectionContext): HttpConfig | null {
  const http = root.section('http');
  if (!http) return null;
  const ssl = readSsl(http.section('ssl'), ctx, http.has('address'));
  const internalErrorCode = readInternalErrorCode(http);
  const middleware = http.list('middleware');
  const pool = readPool(http.sectionOrEmpty('pool'), ctx);
  for (const name of middleware) {
    if (!SUPPORTED_MIDDLEWARE.includes(name)) {
      ctx.warnings.push(`http.middleware: requested middleware does not exist in rrts, skipped: ${name}`);
    }
  }
  // As RoadRunner's static plugin: its section alone turns it on (a missing dir fails the start, listed or not), and
  // without the section the middleware is off rather than serving the working directory.
  const staticSection = http.section('static');
  if (middleware.includes('static') && !staticSection) {
    ctx.warnings.push('http.middleware: static is listed but there is no http.static section (with its dir); the static middleware is off');
  }
  return {
    address: readAddress(http, ssl !== null),
    internalErrorCode,
    accessLogs: http.bool('access_logs'),
    maxRequestSize: http.megabytes('max_request_size') || DEFAULT_MAX_REQUEST_SIZE,
    rawBody: http.bool('raw_body'),
    middleware,
    trustedSubnets: http.list('trusted_subnets'),
    uploads: readUploads(http.sectionOrEmpty('uploads')),
    pool,
    ssl,
    http2: readHttp2(http.sectionOrEmpty('http2')),
    // with overload_retry_after the overload answer is a 503 unless no_free_workers_code says otherwise
    noFreeWorkersCode: readStatusCode(http, 'no_free_workers_code') ?? (http.duration('overload_retry_after') > 0 ? 503 : internalErrorCode),
    overloadRetryAfter: Math.ceil(http.duration('overload_retry_after') / 1000),
    execTtlCode: readStatusCode(http, 'exec_ttl_code') ?? internalErrorCode,
    readHeaderTimeout: http.duration('read_header_timeout') || DEFAULT_READ_TIMEOUT,
    readTimeout: http.duration('read_timeout') || DEFAULT_READ_TIMEOUT,
    headers: readHeaders(http.sectionOrEmpty('headers')),
    static: staticSection ? readStatic(staticSection, ctx) : null,
    front: fitFront(readFront(http.sectionOrEmpty('front'), ctx), pool.numWorkers, ctx),
  };
}

/** Every front process needs a worker of its own: no more processes than http.pool.num_workers. */
function fitFront(front: FrontConfig, numWorkers: number, ctx: SectionContext): FrontConfig {
  if (front.processes <= numWorkers) return front;
  if (!front.auto) {
    ctx.warnings.push(`http.front.processes: ${front.processes} processes for ${numWorkers} workers; running ${numWorkers}, one worker each`);
  }
  return { ...front, processes: numWorkers };
}

/**
 * http.front.processes: a whole number >= 1 or `auto` (one per logical CPU). The default 1 keeps the front in rrts's
 * own process (docs/front.md says why). The split of the workers is the primary's business (src/front/share.ts).
 */
function readFront(front: SectionReader, ctx: SectionContext): FrontConfig {
  const raw = front.value('processes');
  if (raw === undefined) return { processes: 1 };
  if (typeof raw === 'string' && raw.trim().toLowerCase() === 'auto') return { processes: Math.max(1, ctx.cpus), auto: true };
  const processes = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(processes) || processes < 1 || processes > MAX_FRONT_PROCESSES) {
    front.fail('processes', `expected a whole number from 1 to ${MAX_FRONT_PROCESSES} or auto, got ${JSON.stringify(raw)}`);
  }
  return { processes };
}

/** More front processes than this would be more event loops than any machine rrts runs on has cores. */
export const MAX_FRONT_PROCESSES = 256;

/** Middleware rrts implements (src/http/middleware/); other names are skipped with a warning, as RoadRunner does. */
export const SUPPORTED_MIDDLEWARE: readonly string[] = ['headers', 'gzip', 'static', 'proxy_ip_parser', 'http_metrics'];

/** RoadRunner's fixed server read timeouts (docs/compatibility.md §1.9): 5 minutes. */
const DEFAULT_READ_TIMEOUT = 5 * 60_000;
const DEFAULT_SSL_ADDRESS = '127.0.0.1:443';
const DEFAULT_MAX_CONCURRENT_STREAMS = 128;
const CLIENT_AUTH_TYPES: readonly ClientAuthType[] = [
  'no_client_cert',
  'request_client_cert',
  'require_any_client_cert',
  'verify_client_cert_if_given',
  'require_and_verify_client_cert',
];

/** With `acme` (warned about as not implemented) and no certificate of its own, https is off unless it is all there is. */
function readSsl(ssl: SectionReader | null, ctx: SectionContext, hasAddress: boolean): SslConfig | null {
  if (!ssl) return null;
  if (ssl.section('acme') && !ssl.has('cert') && !ssl.has('key')) {
    if (!hasAddress) ssl.fail('acme', 'ACME is not supported by rrts: obtain the certificate elsewhere and set http.ssl.cert and http.ssl.key');
    return null;
  }
  const address = ssl.string('address').trim() || DEFAULT_SSL_ADDRESS;
  if (!address.includes(':')) ssl.fail('address', `expected host:port like "127.0.0.1:443", got ${JSON.stringify(address)}`);
  const clientAuth = ssl.string('client_auth_type').trim();
  return {
    address,
    redirect: ssl.bool('redirect'),
    cert: readableFile(ssl, 'cert', ctx, true)!,
    key: readableFile(ssl, 'key', ctx, true)!,
    rootCa: readableFile(ssl, 'root_ca', ctx, false),
    // RoadRunner falls back to "no client certificate" for unknown values.
    clientAuthType: (CLIENT_AUTH_TYPES as readonly string[]).includes(clientAuth) ? (clientAuth as ClientAuthType) : 'no_client_cert',
  };
}

/** The absolute path of a file the section names; a ConfigError when it is required and missing, or unreadable. */
function readableFile(section: SectionReader, key: string, ctx: SectionContext, required: boolean): string | null {
  const value = section.string(key).trim();
  if (value === '') {
    if (required) section.fail(key, 'a file is required here');
    return null;
  }
  const file = path.resolve(ctx.workDir, value);
  let problem = '';
  try {
    fs.accessSync(file, fs.constants.R_OK);
    if (!fs.statSync(file).isFile()) problem = 'not a regular file';
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    problem = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code;
  }
  if (problem !== '') section.fail(key, `cannot read ${file}: ${problem}`);
  return file;
}

function readHttp2(http2: SectionReader): Http2Config {
  return {
    h2c: http2.bool('h2c'),
    maxConcurrentStreams: http2.uint('max_concurrent_streams') || DEFAULT_MAX_CONCURRENT_STREAMS,
  };
}

function readStatusCode(http: SectionReader, key: string): number | null {
  if (!http.has(key)) return null;
  const code = http.uint(key);
  if (code < 100 || code > 999) http.fail(key, `expected an HTTP status code from 100 to 999, got ${code}`);
  return code;
}

function readHeaders(headers: SectionReader): HeadersConfig {
  const cors = headers.section('cors');
  return {
    request: headers.stringMap('request'),
    response: headers.stringMap('response'),
    cors: cors ? readCors(cors) : null,
  };
}

function readCors(cors: SectionReader): CorsConfig {
  const regex = cors.string('allowed_origin_regex');
  if (regex !== '') {
    try {
      new RegExp(regex);
    } catch (error) {
      cors.fail('allowed_origin_regex', `not a valid regular expression: ${(error as Error).message}`);
    }
  }
  return {
    allowedOrigin: cors.string('allowed_origin'),
    allowedOriginRegex: regex,
    allowedHeaders: cors.string('allowed_headers'),
    allowedMethods: cors.string('allowed_methods'),
    allowCredentials: cors.bool('allow_credentials'),
    exposedHeaders: cors.string('exposed_headers'),
    maxAge: cors.int('max_age'),
    optionsSuccessStatus: readStatusCode(cors, 'options_success_status') ?? 200,
    debug: cors.bool('debug'),
  };
}

function readStatic(section: SectionReader, ctx: SectionContext): StaticConfig {
  const dir = path.resolve(ctx.workDir, section.string('dir').trim() || '.');
  let isDir = false;
  try {
    isDir = fs.statSync(dir).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir) section.fail('dir', `the static directory ${dir} does not exist`);
  return {
    dir: fs.realpathSync(dir),
    forbid: normalizeExtensions(section.list('forbid')),
    allow: normalizeExtensions(section.list('allow')),
    calculateEtag: section.bool('calculate_etag'),
    weak: section.bool('weak'),
    request: section.stringMap('request'),
    response: section.stringMap('response'),
  };
}

function readAddress(http: SectionReader, hasSsl: boolean): string {
  const address = http.string('address').trim();
  if (address === '' && hasSsl) return ''; // https only
  if (address === '') {
    http.fail('address', 'unable to run http service, no method has been specified: set address, e.g. address: 127.0.0.1:8080');
  }
  if (!address.includes(':')) http.fail('address', `expected host:port like "127.0.0.1:8080", got ${JSON.stringify(address)}`);
  return address;
}

function readInternalErrorCode(http: SectionReader): number {
  const code = http.uint('internal_error_code') || DEFAULT_INTERNAL_ERROR_CODE;
  if (code < 100 || code > 999) http.fail('internal_error_code', `expected an HTTP status code from 100 to 999, got ${code}`);
  return code;
}

function readUploads(uploads: SectionReader): UploadsConfig {
  return {
    dir: uploads.string('dir') || tmpdir(),
    forbid: normalizeExtensions(uploads.list('forbid')),
    allow: normalizeExtensions(uploads.list('allow')),
  };
}

/** `PHP` and `.php` both mean `.php`: uploads compare lower-cased extensions with their dot. */
function normalizeExtensions(extensions: readonly string[]): string[] {
  const normalized = extensions.map((ext) => ext.trim().toLowerCase()).filter((ext) => ext !== '' && ext !== '.');
  return [...new Set(normalized.map((ext) => (ext.startsWith('.') ? ext : `.${ext}`)))];
}
