// The typed, frozen configuration rrts runs on, filled with RoadRunner's defaults (docs/compatibility.md §1).
// Durations are milliseconds (numbers, may be fractional); sizes are bytes.

export interface SupervisorConfig {
  watchTick: number;
  ttl: number;
  idleTtl: number;
  /** bytes; 0 = off */
  maxWorkerMemory: number;
  execTtl: number;
}

/** `pool.dynamic_allocator` (RoadRunner 2024.3+): workers added beyond num_workers while requests wait for one. */
export interface DynamicAllocatorConfig {
  /** extra workers at most, on top of num_workers (default 10, at most 100) */
  maxWorkers: number;
  /** workers added per scale-up (default 5, at most 100) */
  spawnRate: number;
  /** ms an extra worker may stay idle before it is stopped (default 60 s; under 1 s means 60 s) */
  idleTimeout: number;
  /**
   * rrts: ms a request waits for a worker before workers are added. null when not written: the pool picks by mode
   * (fork: FORK_SCALE_ON_WAIT_MS; exec: RoadRunner's rule). 0 when written as 0: RoadRunner's rule, which adds workers
   * only after a request waited the whole allocate_timeout.
   */
  scaleOnWait: number | null;
}

export interface PoolConfig {
  debug: boolean;
  /** Per-pool command override (argv), or null to use server.command. */
  command: readonly string[] | null;
  /** Resolved: 0 in the file means the number of logical CPUs. */
  numWorkers: number;
  maxJobs: number;
  maxQueueSize: number;
  allocateTimeout: number;
  resetTimeout: number;
  streamTimeout: number;
  destroyTimeout: number;
  /** null when the file has no supervisor section (the supervisor then does not run). */
  supervisor: SupervisorConfig | null;
  /** null when the file has no dynamic_allocator section: the pool keeps num_workers. */
  dynamicAllocator: DynamicAllocatorConfig | null;
}

export interface OnInitConfig {
  command: readonly string[];
  execTimeout: number;
  env: Readonly<Record<string, string>>;
  user: string;
  exitOnError: boolean;
}

export interface ForkConfig {
  enabled: boolean;
  preload: string | null;
  /** children the master keeps forked and parked, so a fork request only hands one its env (0 = fork on request) */
  spares: number;
  /** server.fork.spares is written: it holds for every pool (else a pool with a dynamic_allocator parks more) */
  sparesWritten?: true;
}

export interface ServerConfig {
  command: readonly string[];
  user: string;
  group: string;
  /** Keys upper-cased, values $VAR-expanded. */
  env: Readonly<Record<string, string>>;
  /** 'pipes', 'tcp://host:port' or 'unix://path', as written. */
  relay: string;
  onInit: OnInitConfig | null;
  fork: ForkConfig;
}

export interface UploadsConfig {
  dir: string;
  /** lower-cased extensions with the dot, e.g. '.php' */
  forbid: readonly string[];
  allow: readonly string[];
}

export interface HttpConfig {
  address: string;
  internalErrorCode: number;
  accessLogs: boolean;
  /** bytes */
  maxRequestSize: number;
  rawBody: boolean;
  middleware: readonly string[];
  trustedSubnets: readonly string[];
  uploads: UploadsConfig;
  pool: PoolConfig;
  /** null when http.ssl is absent. */
  ssl: SslConfig | null;
  http2: Http2Config;
  /** rrts extension: status for NoFreeWorkersError / QueueFullError (default internalErrorCode; 503 with overloadRetryAfter). */
  noFreeWorkersCode: number;
  /** rrts extension: whole seconds of the Retry-After header sent with that status; 0 = no header (RoadRunner's way). */
  overloadRetryAfter: number;
  /** rrts extension: status when a job ran past exec_ttl (default internalErrorCode). */
  execTtlCode: number;
  /** rrts extension: ms a client may take to send its headers (Node's headersTimeout). */
  readHeaderTimeout: number;
  /** rrts extension: ms a client may take to send the whole request (Node's requestTimeout). */
  readTimeout: number;
  /** http.headers (the `headers` middleware). */
  headers: HeadersConfig;
  /** http.static (the `static` middleware); null when `static` is not in http.middleware. */
  static: StaticConfig | null;
  /** rrts extension: http.front (docs/front.md). */
  front: FrontConfig;
}

export interface FrontConfig {
  /** Node processes serving HTTP (1: rrts's own process, no other). */
  processes: number;
  /** written as `auto` (one per logical CPU) */
  auto?: true;
}

export type ClientAuthType =
  'no_client_cert' | 'request_client_cert' | 'require_any_client_cert' | 'verify_client_cert_if_given' | 'require_and_verify_client_cert';

export interface SslConfig {
  address: string;
  redirect: boolean;
  /** Absolute paths, checked readable at start. */
  cert: string;
  key: string;
  rootCa: string | null;
  clientAuthType: ClientAuthType;
}

export interface Http2Config {
  h2c: boolean;
  maxConcurrentStreams: number;
}

export interface CorsConfig {
  allowedOrigin: string;
  allowedOriginRegex: string;
  allowedHeaders: string;
  allowedMethods: string;
  allowCredentials: boolean;
  exposedHeaders: string;
  /** seconds; 0 = not sent, negative = 0 sent */
  maxAge: number;
  /** status of an answered preflight (RoadRunner: 200) */
  optionsSuccessStatus: number;
  /** rs/cors's debug lines, logged at debug level */
  debug: boolean;
}

export interface HeadersConfig {
  request: Readonly<Record<string, string>>;
  response: Readonly<Record<string, string>>;
  /** null when http.headers.cors is absent. */
  cors: CorsConfig | null;
}

export interface StaticConfig {
  /** Absolute, checked to exist at start. */
  dir: string;
  /** lower-cased extensions with the dot */
  forbid: readonly string[];
  allow: readonly string[];
  calculateEtag: boolean;
  weak: boolean;
  request: Readonly<Record<string, string>>;
  response: Readonly<Record<string, string>>;
}

export type LogMode = 'development' | 'production' | 'raw' | 'off';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'dpanic' | 'panic' | 'fatal';

export interface LogChannelConfig {
  mode: LogMode;
  level: LogLevel;
  encoding: 'console' | 'json';
  lineEnding: string;
  output: readonly string[];
  errOutput: readonly string[];
}

export interface LogsConfig extends LogChannelConfig {
  channels: Readonly<Record<string, LogChannelConfig>>;
}

export interface RpcConfig {
  listen: string;
}

export interface StatusConfig {
  address: string;
  unavailableStatusCode: number;
  /** seconds */
  checkTimeout: number;
}

export interface MetricsConfig {
  address: string;
  collect: Readonly<Record<string, unknown>>;
}

export interface EndureConfig {
  gracePeriod: number;
  printGraph: boolean;
  logLevel: string;
  watchdogSec: number;
}

/** One `jobs.pipelines.<name>` entry as written; the plugin builds the driver from it (docs/jobs.md). */
export interface JobsPipelineEntry {
  name: string;
  /** '' when the `driver` key is missing: RoadRunner logs it and skips the pipeline */
  driver: string;
  /** `config:` of the pipeline, or null when it is absent (a start-up error of the driver, as in RoadRunner) */
  config: Readonly<Record<string, unknown>> | null;
}

export interface JobsConfig {
  /** the jobs worker pool; its `command` overrides server.command */
  pool: PoolConfig;
  /** ms: the bound of every driver call (push, pause, resume, run, stop, state); `timeout` in seconds in the file */
  timeout: number;
  /** capacity of the shared priority queue */
  pipelineSize: number;
  /** pipelines started (constructed and run) or stopped at once */
  parallelism: number;
  pipelines: readonly JobsPipelineEntry[];
  /** pipelines that consume from the start; the others wait for jobs.Resume */
  consume: readonly string[];
}

export interface Config {
  version: string;
  /** Absolute path of the config file. */
  file: string;
  /** Absolute working directory (the -w flag, or the config file's folder). */
  workDir: string;
  /** The whole document after ${VAR} substitution and -o overrides (rpc.Config returns it). */
  raw: Readonly<Record<string, unknown>>;
  server: ServerConfig;
  http: HttpConfig | null;
  rpc: RpcConfig | null;
  logs: LogsConfig;
  status: StatusConfig | null;
  metrics: MetricsConfig | null;
  endure: EndureConfig;
  /** null when there is no jobs section (the plugin is off). */
  jobs: JobsConfig | null;
  /** the global amqp section of the jobs amqp driver; null when absent */
  amqp: AmqpConfig | null;
  /** the global beanstalk section of the jobs beanstalk driver; null when absent */
  beanstalk: BeanstalkConfig | null;
  /** the global nats section of the jobs nats driver; null when absent */
  nats: NatsConfig | null;
  /** Messages to log once at start (unsupported sections, ignored keys). */
  warnings: readonly string[];
}

/** The global `nats:` section: the nats-server (JetStream) of every nats pipeline. */
export interface NatsConfig {
  addr: string;
}

/** The global `beanstalk:` section: the beanstalkd of every beanstalk pipeline. */
export interface BeanstalkConfig {
  addr: string;
  /** ms: the dial timeout and every put's time-to-run */
  timeout: number;
}

/** The global `amqp:` section: the broker of every amqp pipeline. */
export interface AmqpConfig {
  addr: string;
  /** TLS to the broker; on when key and cert are set */
  tls: { key: string; cert: string; rootCa: string; clientAuthType: string } | null;
}

export interface LoadOptions {
  /** -c; default '.rr.yaml' */
  configPath: string;
  /** -w */
  workDir?: string;
  /** -o key=value, in order */
  overrides?: readonly string[];
  /** --dotenv */
  dotenv?: string;
  /** The environment used for ${VAR}; default process.env. Loading a dotenv file adds to it. */
  env?: NodeJS.ProcessEnv;
  /** Logical CPU count used for num_workers: 0; default os.availableParallelism(). */
  cpus?: number;
  /** A key rrts does not read is an error instead of a warning; default: RRTS_STRICT=1 in `env`. */
  strict?: boolean;
}
