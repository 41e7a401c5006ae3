// Every config key rrts knows, declared once: the loader warns about each key that is not here or that rrts does
// not implement (keyWarnings), and schema.ts turns the same table into the JSON schema of the file.
import { ConfigError } from '../errors.js';
import { isPlainMap, type PlainMap } from './coerce.js';
import { joinPath, type Origins } from './document.js';
import { SUPPORTED_MIDDLEWARE } from './sections/http.js';

/**
 * How a value is read (coerce.ts does the weak typing); the schema maps each kind to the JSON types it accepts.
 * `text` and `strings` are the strict string and list of strings of metrics.collect (metrics/plugin.ts reads them).
 */
export type ValueKind =
  | 'string'
  | 'text'
  | 'int'
  | 'uint'
  | 'bool'
  | 'duration'
  | 'seconds'
  | 'megabytes'
  | 'list'
  | 'strings'
  | 'numbers'
  | 'stringMap'
  | 'command'
  | 'objectives'
  | 'countOrAuto'
  | 'map';

export interface ValueKey {
  kind: ValueKind;
  doc: string;
  /** Values the reader accepts; any other is a config error. */
  oneOf?: readonly string[];
  /** Values the reader knows; any other is ignored with a warning (offered for completion only). */
  known?: readonly string[];
}

export interface SectionKey {
  kind: 'section';
  doc: string;
  keys: KeyTable;
}

/** A map of names chosen by the user (log channels, metric names), each a section of the same keys. */
export interface NamedSectionsKey {
  kind: 'named';
  doc: string;
  each: KeyTable;
}

/** A RoadRunner key or section rrts accepts without acting on it: it gets one warning, or a config error with --strict. */
export interface IgnoredKey {
  kind: 'ignored';
  /** Why, after the key's place, e.g. "rrts does not implement RoadRunner's jobs plugin". */
  why: string;
}

export type KeySpec = ValueKey | SectionKey | NamedSectionsKey | IgnoredKey;
export type KeyTable = Readonly<Record<string, KeySpec>>;

const value = (kind: ValueKind, doc: string, extra: Partial<ValueKey> = {}): ValueKey => ({ kind, doc, ...extra });
const section = (doc: string, keys: KeyTable): SectionKey => ({ kind: 'section', doc, keys });
const notImplemented = (what: string): IgnoredKey => ({ kind: 'ignored', why: `rrts does not implement ${what}` });

const ROADRUNNER_PLUGINS: Readonly<Record<string, string>> = {
  kv: 'kv (key-value storage)',
  grpc: 'grpc',
  tcp: 'tcp',
  temporal: 'temporal',
  service: 'service (process supervisor)',
  centrifuge: 'centrifuge',
  fileserver: 'fileserver',
  otel: 'otel (OpenTelemetry)',
  redis: 'redis',
  sqs: 'sqs (jobs driver)',
  kafka: 'kafka (jobs driver)',
  google_pub_sub: 'google_pub_sub (jobs driver)',
  gps: 'gps (jobs driver)',
  nsq: 'nsq (jobs driver)',
  boltdb: 'boltdb (jobs and kv driver)',
  memcached: 'memcached (kv driver)',
  memory: 'memory (jobs and kv driver)',
  'app-logger': 'app-logger',
  applogger: 'app-logger',
  websockets: 'websockets',
  broadcast: 'broadcast',
};

const POOL: KeyTable = {
  debug: value('bool', 'a fresh worker per request, stopped after it'),
  command: value('command', "this pool's worker command (default: server.command)"),
  num_workers: value('uint', 'workers to keep (0: one per logical CPU; at most 500)'),
  max_jobs: value('uint', 'jobs after which a worker is replaced (0: unlimited)'),
  max_queue_size: value('uint', 'requests in the pool at most (0: unlimited)'),
  allocate_timeout: value('duration', 'wait for a worker to start or to be free (default 60s)'),
  reset_timeout: value('duration', 'read, not used: a reset does not wait for busy workers (default 60s)'),
  stream_timeout: value('duration', 'wait for a stream to end after STOP (default 60s)'),
  destroy_timeout: value('duration', 'bounds informer.RemoveWorker (default 60s)'),
  dynamic_allocator: section('workers added beyond num_workers while requests wait, stopped when idle', {
    max_workers: value('uint', 'extra workers at most, on top of num_workers (default 10, at most 100)'),
    spawn_rate: value('uint', 'workers added at a time (default 5, at most 100)'),
    idle_timeout: value('duration', 'an extra worker idle this long is stopped (default 1m; under 1s means 1m)'),
    scale_on_wait: value('duration', 'rrts: add workers once a request waited this long (fork mode default 5ms; exec mode and 0: only after allocate_timeout)'),
  }),
  supervisor: section('the supervisor; it runs only when this section exists', {
    watch_tick: value('duration', 'how often the limits are checked (default 5s)'),
    ttl: value('duration', 'soft: the longest a worker lives (0: off)'),
    idle_ttl: value('duration', 'soft: the longest a worker stays idle after a job (0: off)'),
    max_worker_memory: value('megabytes', 'soft: MB of memory a worker may use (0: off)'),
    exec_ttl: value('duration', 'hard: the longest a job runs before its worker is killed (0: off)'),
  }),
};

const LOG_CHANNEL: KeyTable = {
  mode: value('string', 'development, production, raw or off', { known: ['development', 'production', 'raw', 'off', 'none'] }),
  level: value('string', 'the lowest level logged', { known: ['debug', 'info', 'warn', 'error', 'dpanic', 'panic', 'fatal'] }),
  encoding: value('string', 'console or json (default: per mode)', { oneOf: ['console', 'json'] }),
  line_ending: value('string', 'default "\\n"'),
  output: value('list', 'stderr, stdout or file paths (default stderr)'),
  err_output: value('list', 'read, not used'),
  erroroutput: value('list', 'older spelling of err_output'),
  file_logger_options: notImplemented("RoadRunner's rotating log files (logs go to `output`)"),
};

const SERVER_ENV_DOC = 'environment variables of the workers (names upper-cased)';

/** The whole file. A key a section reader starts to read goes here too: test/config/keys.test.ts checks they agree. */
export const CONFIG_KEYS: KeyTable = {
  version: value('string', "the config format, a string: '3' ('2.7' loads with a warning)", { oneOf: ['3', '2.7'] }),
  include: value('list', "files whose sections replace this file's"),
  server: section('the workers', {
    command: value('command', 'the worker command'),
    user: value('string', 'run the workers as this user'),
    group: value('string', 'run the workers with this group'),
    env: value('stringMap', SERVER_ENV_DOC),
    relay: value('string', 'pipes, tcp://host:port or unix://path (default pipes)'),
    relay_timeout: { kind: 'ignored', why: 'RoadRunner removed it in 2023.3 and rrts does not use it' },
    on_init: section('a command run once before the workers', {
      command: value('command', 'the command'),
      exec_timeout: value('duration', 'killed after this long (default 1m)'),
      env: value('stringMap', 'its environment variables'),
      user: value('string', 'run it as this user'),
      exit_on_error: value('bool', 'fail the start when it fails'),
    }),
    fork: section('rrts: fork workers from one PHP master that preloaded the app', {
      enabled: value('bool', 'rrts: fork mode'),
      preload: value('string', 'rrts: a PHP file the master requires before it forks'),
      spares: value('uint', 'rrts: children kept forked ahead of requests, 0 to 16 (default 1; with a dynamic_allocator max_workers, at most 16)'),
    }),
  }),
  http: section('the HTTP server', {
    address: value('string', 'host:port'),
    internal_error_code: value('uint', 'status of internal failures (default 500)'),
    access_logs: value('bool', 'one log record per request'),
    max_request_size: value('megabytes', 'MB a request body may have (0: 1000)'),
    raw_body: value('bool', 'send bodies unparsed'),
    middleware: value('list', 'middleware, the last listed outermost', { known: SUPPORTED_MIDDLEWARE }),
    trusted_subnets: value('list', 'CIDRs whose forwarding headers proxy_ip_parser trusts'),
    uploads: section('uploaded files', {
      dir: value('string', 'where uploads are stored (default: the OS temp dir)'),
      forbid: value('list', 'extensions refused'),
      allow: value('list', 'extensions allowed (empty: all)'),
    }),
    pool: section('the worker pool', POOL),
    ssl: section('HTTPS', {
      address: value('string', 'host:port (default 127.0.0.1:443)'),
      redirect: value('bool', 'redirect http to https'),
      cert: value('string', 'certificate file'),
      key: value('string', 'private key file'),
      root_ca: value('string', 'CA file for client certificates'),
      client_auth_type: value('string', 'client certificate policy', {
        known: ['no_client_cert', 'request_client_cert', 'require_any_client_cert', 'verify_client_cert_if_given', 'require_and_verify_client_cert'],
      }),
      acme: notImplemented('ACME (automatic certificates): https runs only with http.ssl.cert and http.ssl.key'),
    }),
    http2: section('HTTP/2', {
      h2c: value('bool', 'HTTP/2 without TLS on address'),
      max_concurrent_streams: value('uint', 'default 128'),
    }),
    http3: notImplemented("RoadRunner's HTTP/3 server"),
    fcgi: notImplemented("RoadRunner's FastCGI server"),
    cache: notImplemented("RoadRunner's RFC 7234 cache middleware (Souin)"),
    no_free_workers_code: value('uint', 'rrts: status when no worker is free (default internal_error_code)'),
    overload_retry_after: value(
      'duration',
      'rrts: when no worker is free in time or max_queue_size is reached, answer 503 (or no_free_workers_code) with this Retry-After',
    ),
    exec_ttl_code: value('uint', 'rrts: status when a job ran past exec_ttl (default internal_error_code)'),
    read_header_timeout: value('duration', 'rrts: time a client may take to send its headers (default 5m)'),
    read_timeout: value('duration', 'rrts: time a client may take to send its request (default 5m)'),
    headers: section('the headers middleware', {
      request: value('stringMap', 'headers added to requests'),
      response: value('stringMap', 'headers added to responses'),
      cors: section('CORS', {
        allowed_origin: value('string', 'comma-separated origins, * for any'),
        allowed_origin_regex: value('string', 'a regular expression for origins'),
        allowed_headers: value('string', 'comma-separated headers'),
        allowed_methods: value('string', 'comma-separated methods'),
        allow_credentials: value('bool', 'Access-Control-Allow-Credentials'),
        exposed_headers: value('string', 'comma-separated headers'),
        max_age: value('int', 'seconds a preflight may be cached'),
        options_success_status: value('uint', 'status of an answered preflight (default 200)'),
        debug: value('bool', 'log CORS decisions at debug level'),
      }),
    }),
    front: section('rrts: the HTTP front processes', {
      processes: value('countOrAuto', 'rrts: Node processes serving HTTP, each with its share of the workers: a whole number >= 1 or auto (default 1)'),
    }),
    static: section('the static middleware', {
      dir: value('string', 'the folder served (default .)'),
      forbid: value('list', 'extensions never served'),
      allow: value('list', 'extensions served (empty: all)'),
      calculate_etag: value('bool', 'send an ETag'),
      weak: value('bool', 'weak ETags'),
      request: value('stringMap', 'headers added to requests for static files'),
      response: value('stringMap', 'headers added to static responses'),
    }),
  }),
  rpc: section('the RPC server', {
    listen: value('string', 'tcp://host:port or unix://path (default tcp://127.0.0.1:6001)'),
  }),
  logs: section('logging', {
    ...LOG_CHANNEL,
    channels: { kind: 'named', doc: 'per-logger settings (http, server, rpc, ...) inheriting the keys they lack', each: LOG_CHANNEL },
  }),
  amqp: section("the jobs amqp driver's broker (docs/jobs-amqp.md)", {
    addr: value('string', 'amqp://user:password@host:port/vhost (default amqp://guest:guest@127.0.0.1:5672/)'),
    tls: section('TLS to the broker', {
      key: value('string', 'client key file'),
      cert: value('string', 'client certificate file'),
      root_ca: value('string', "CA file that verifies the broker's certificate"),
      client_auth_type: value('string', 'as http.ssl.client_auth_type'),
    }),
  }),
  beanstalk: section("the jobs beanstalk driver's server (docs/jobs-beanstalk.md)", {
    addr: value('string', 'tcp://host:port or unix://path (default tcp://127.0.0.1:11300)'),
    timeout: value('duration', "dial timeout and every job's time-to-run (default 30s)"),
  }),
  nats: section("the jobs nats driver's server (docs/jobs-nats.md)", {
    addr: value('string', 'nats://host:port, several separated by commas (default nats://127.0.0.1:4222)'),
  }),
  status: section('the health endpoint', {
    address: value('string', 'host:port'),
    unavailable_status_code: value('uint', 'default 503'),
    check_timeout: value('seconds', 'seconds (default 60)'),
  }),
  metrics: section('the Prometheus endpoint', {
    address: value('string', 'host:port (default 127.0.0.1:2112)'),
    collect: {
      kind: 'named',
      doc: 'application metrics by name',
      each: {
        type: value('string', 'the collector type', { oneOf: ['counter', 'gauge', 'histogram', 'summary'] }),
        help: value('text', 'its help text'),
        labels: value('strings', 'label names'),
        buckets: value('numbers', 'histogram buckets, increasing'),
        objectives: value('objectives', 'summary quantiles (0 to 1) and their error margins'),
        namespace: value('text', 'name prefix'),
        subsystem: value('text', 'name prefix after the namespace'),
      },
    },
  }),
  endure: section('the process container', {
    grace_period: value('duration', 'how long a graceful stop may take (default 30s)'),
    print_graph: value('bool', 'read, ignored'),
    log_level: value('string', 'default error', { known: ['debug', 'info', 'warn', 'warning', 'error'] }),
    watchdog_sec: value('uint', 'systemd watchdog interval in seconds (0: off)'),
  }),
  jobs: section('the jobs plugin (queues)', {
    pool: section("the jobs workers' pool", POOL),
    timeout: value('uint', 'seconds each driver call may take: push, pause, resume, run, stop, state (default 60)'),
    pipeline_size: value('uint', 'jobs the shared priority queue holds at most (default 1000000)'),
    num_pollers: { kind: 'ignored', why: 'RoadRunner ignores it too: the pollers are always pool.num_workers + 2' },
    options: section('how the pipelines start', {
      parallelism: value('uint', 'pipelines started or stopped at once (default 10; 5 when this section is there)'),
    }),
    pipelines: {
      kind: 'named',
      doc: 'the pipelines created at start, by name',
      each: {
        driver: value('string', 'memory, amqp, boltdb, beanstalk or nats', { known: ['memory', 'amqp', 'boltdb', 'beanstalk', 'nats'] }),
        config: value(
          'map',
          "the driver's keys (memory: priority, prefetch; amqp: queue, exchange, routing_key, ...; boltdb: file, priority, prefetch, permissions; beanstalk: tube, tube_priority, reserve_timeout, priority; nats: subject, stream, prefetch, priority, delete_after_ack, deliver_new, delete_stream_on_stop, rate_limit)",
        ),
      },
    },
    consume: value('list', 'pipelines that consume from the start; the others wait for jobs.Resume'),
  }),
  informer: section('RoadRunner plugin without settings', {}),
  resetter: section('RoadRunner plugin without settings', {}),
  lock: section('RoadRunner plugin without settings', {}),
  envfile: { kind: 'ignored', why: 'RoadRunner reads it only with -e; rrts loads a dotenv file with --dotenv or DOTENV_PATH' },
  reload: { kind: 'ignored', why: 'RoadRunner removed the reload plugin in v2023.1.0 and rrts does not have it' },
  ...Object.fromEntries(Object.entries(ROADRUNNER_PLUGINS).map(([name, plugin]) => [name, notImplemented(`RoadRunner's ${plugin} plugin`)])),
};

/** A key the loader does not act on, and what to say about it. */
export interface KeyWarning {
  /** Dotted path. */
  key: string;
  message: string;
}

/** One warning per key in `data` that CONFIG_KEYS does not have, or has as ignored; the walk stops at such a key. */
export function keyWarnings(data: Readonly<PlainMap>): KeyWarning[] {
  const warnings: KeyWarning[] = [];
  walk(data, CONFIG_KEYS, '', warnings);
  return warnings;
}

function walk(map: Readonly<PlainMap>, table: KeyTable, path: string, warnings: KeyWarning[]): void {
  for (const [name, item] of Object.entries(map)) {
    const key = joinPath(path, name);
    const spec = Object.hasOwn(table, name) ? table[name] : undefined;
    if (spec === undefined) {
      warnings.push({ key, message: unknownKeyMessage(name, table, path === '') });
    } else if (spec.kind === 'ignored') {
      warnings.push({ key, message: spec.why });
    } else if (spec.kind === 'section' && isPlainMap(item)) {
      walk(item, spec.keys, key, warnings);
    } else if (spec.kind === 'named' && isPlainMap(item)) {
      for (const [member, settings] of Object.entries(item)) {
        if (isPlainMap(settings)) walk(settings, spec.each, joinPath(key, member), warnings);
      }
    }
  }
}

function unknownKeyMessage(name: string, table: KeyTable, topLevel: boolean): string {
  const base = topLevel ? 'unknown section (neither rrts nor RoadRunner has a plugin of that name)' : 'unknown key';
  const near = closestKey(name, Object.keys(table));
  return near === null ? base : `${base} (did you mean '${near}'?)`;
}

/** The known key nearest to a misspelt one, when it is close enough to be a typo (at most 2 edits, fewer for short keys). */
export function closestKey(name: string, candidates: readonly string[]): string | null {
  const limit = Math.min(2, Math.ceil(name.length / 3));
  let best: string | null = null;
  let bestDistance = limit + 1;
  for (const candidate of candidates) {
    const distance = editDistance(name, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Damerau-Levenshtein distance (optimal string alignment): inserts, deletes, substitutions and swaps of neighbours. */
export function editDistance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      rows[i]![j] = d;
    }
  }
  return rows[a.length]![b.length]!;
}

/**
 * Adds one warning per key rrts does not read, naming its file and line (or its -o flag); with `strict` the first
 * such key is a ConfigError instead.
 */
export function checkKeys(data: Readonly<PlainMap>, origins: Origins, strict: boolean, warnings: string[]): void {
  for (const { key, message } of keyWarnings(data)) {
    const origin = origins.find(key);
    const via = origin.override ? ` (set by -o ${origin.override})` : '';
    const where = { file: origin.file, line: origin.line, key };
    if (strict) throw new ConfigError(`${message}${via}; refused by --strict or RRTS_STRICT=1`, where);
    warnings.push(new ConfigError(`${message}${via}; ignored`, where).message);
  }
}
