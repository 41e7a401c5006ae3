// The amqp driver's settings as RoadRunner's amqpjobs reads them: the pipeline's `config` keys (or jobs.Declare's
// string map) plus the global `amqp:` section (addr, tls), with RoadRunner's defaults and error texts (docs/jobs-amqp.md §1).
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { badValue, describeValue, isPlainMap, toBool, toInt, toStr, type PlainMap } from '../../../config/coerce.js';
import { ConfigError } from '../../../errors.js';
import type { PipelineConfig } from '../../driver.js';

export const DEFAULT_ADDR = 'amqp://guest:guest@127.0.0.1:5672/';
const EXCHANGE_TYPES = new Set(['direct', 'fanout', 'topic', 'headers']);

export interface AmqpTls {
  key: string;
  cert: string;
  /** verifies the broker's certificate (RoadRunner loads it into the wrong pool and never uses it) */
  rootCa?: string;
}

export interface AmqpSettings {
  addr: string;
  tls?: AmqpTls;
  queue: string;
  routingKey: string;
  exchange: string;
  exchangeType: string;
  exchangeDurable: boolean;
  exchangeAutoDelete: boolean;
  durable: boolean;
  exclusive: boolean;
  queueAutoDelete: boolean;
  queueHeaders?: Record<string, unknown>;
  prefetch: number;
  multipleAck: boolean;
  requeueOnFail: boolean;
  deleteQueueOnStop: boolean;
  redialTimeoutMs: number;
  consumerId: string;
}

/** Reports a value RoadRunner silently replaces with a default (jobs.Declare keys). */
export type WarnFn = (message: string) => void;

/**
 * Reads a pipeline's settings. File pipelines: the pipeline's `config` keys decoded first, then the global `amqp:`
 * section over them (RoadRunner decodes both into one struct in that order). Declared pipelines: the Declare map's
 * strings, and only addr and tls from the global section.
 */
export function readAmqpSettings(pipeline: PipelineConfig, globalConfig: Record<string, unknown>, workDir: string, warn: WarnFn): AmqpSettings {
  const globalSection = globalConfig['amqp'];
  if (globalSection === undefined || globalSection === null) {
    throw new ConfigError('no global amqp configuration, global configuration should contain amqp addrs');
  }
  if (!isPlainMap(globalSection)) throw new ConfigError(`amqp: expected a map, got ${describeValue(globalSection)}`);

  const fromGlobal = new WeakKeys(globalSection, 'amqp');
  const addr = fromGlobal.string('addr') || DEFAULT_ADDR;
  const tls = readTls(globalSection['tls'], workDir);

  if (!pipeline.declared) {
    const own = new WeakKeys(pipeline.config, `jobs.pipelines.${pipeline.name}.config`);
    // the global section decodes over the pipeline's keys, as in RoadRunner
    const keys = own.overlaidWith(fromGlobal);
    return {
      addr,
      tls,
      queue: keys.string('queue'),
      routingKey: keys.string('routing_key'),
      exchange: keys.string('exchange') || 'amqp.default',
      exchangeType: exchangeType(keys.string('exchange_type') || 'direct', keys.where('exchange_type')),
      exchangeDurable: keys.bool('exchange_durable'),
      exchangeAutoDelete: keys.bool('exchange_auto_delete'),
      durable: keys.bool('durable'),
      exclusive: keys.bool('exclusive'),
      queueAutoDelete: keys.bool('queue_auto_delete'),
      queueHeaders: keys.map('queue_headers'),
      prefetch: keys.int('prefetch') || 10,
      multipleAck: keys.bool('multiple_ack'),
      requeueOnFail: keys.bool('requeue_on_fail'),
      deleteQueueOnStop: keys.bool('delete_queue_on_stop'),
      redialTimeoutMs: (keys.int('redial_timeout') || 60) * 1000,
      consumerId: keys.string('consumer_id') || `roadrunner-${randomUUID()}`,
    };
  }

  const declared = new DeclaredKeys(pipeline, warn);
  return {
    addr,
    tls,
    queue: declared.string('queue', ''),
    routingKey: declared.string('routing_key', ''),
    exchange: declared.string('exchange', 'amqp.default') || 'amqp.default',
    exchangeType: exchangeType(declared.string('exchange_type', 'direct') || 'direct', `jobs.Declare key 'exchange_type' of pipeline ${pipeline.name}`),
    exchangeDurable: declared.bool('exchange_durable'),
    exchangeAutoDelete: declared.bool('exchange_auto_delete'),
    durable: declared.bool('durable'),
    exclusive: declared.bool('exclusive'),
    queueAutoDelete: declared.bool('queue_auto_delete'),
    queueHeaders: declared.jsonMap('queue_headers'),
    prefetch: declared.int('prefetch', 10),
    multipleAck: declared.bool('multiple_ack'),
    requeueOnFail: declared.bool('requeue_on_fail'),
    deleteQueueOnStop: declared.bool('delete_queue_on_stop'),
    redialTimeoutMs: declared.int('redial_timeout', 60) * 1000,
    consumerId: declared.string('consumer_id', '') || `roadrunner-${randomUUID()}`,
  };
}

function exchangeType(value: string, where: string): string {
  // plugin exchange types (x-delayed-message, x-consistent-hash, …) are the broker's to accept
  if (EXCHANGE_TYPES.has(value) || value.startsWith('x-')) return value;
  throw new ConfigError(`${where}: unknown exchange type ${JSON.stringify(value)} (direct, fanout, topic, headers or a plugin's x-… type)`);
}

/** The global `amqp.tls` section: TLS is on when key and cert are set; each named file must exist. */
function readTls(section: unknown, workDir: string): AmqpTls | undefined {
  if (section === undefined || section === null) return undefined;
  if (!isPlainMap(section)) throw new ConfigError(`amqp.tls: expected a map, got ${describeValue(section)}`);
  const keys = new WeakKeys(section, 'amqp.tls');
  const key = keys.string('key');
  const cert = keys.string('cert');
  const rootCa = keys.string('root_ca');
  if (key === '' || cert === '') return undefined;
  const existing = (file: string, what: string): string => {
    const full = path.resolve(workDir, file);
    if (!fs.existsSync(full))
      throw new ConfigError(`amqp.tls.${what}: ${what === 'root_ca' ? 'root ca path provided, but ' : ''}file '${file}' does not exist`);
    return full;
  };
  return { key: existing(key, 'key'), cert: existing(cert, 'cert'), rootCa: rootCa === '' ? undefined : existing(rootCa, 'root_ca') };
}

/** Keys of a YAML map decoded weakly, as mapstructure does; a bad value names its key. */
class WeakKeys {
  constructor(
    private readonly values: PlainMap,
    private readonly prefix: string,
    private readonly origin: Record<string, string> = {},
  ) {}

  overlaidWith(other: WeakKeys): WeakKeys {
    const origin: Record<string, string> = {};
    for (const key of Object.keys(this.values)) origin[key] = this.prefix;
    for (const key of Object.keys(other.values)) origin[key] = other.prefix;
    return new WeakKeys({ ...this.values, ...other.values }, this.prefix, origin);
  }

  where(key: string): string {
    return `${this.origin[key] ?? this.prefix}.${key}`;
  }

  private read<T>(key: string, empty: T, decode: (value: unknown) => T): T {
    const value = this.values[key];
    if (value === undefined || value === null) return empty;
    try {
      return decode(value);
    } catch (err) {
      if (err instanceof ConfigError) throw new ConfigError(`${this.where(key)}: ${err.problem}, got ${describeValue(value)}`);
      throw err;
    }
  }

  string(key: string): string {
    return this.read(key, '', toStr);
  }

  int(key: string): number {
    return this.read(key, 0, (value) => {
      const result = toInt(value);
      if (result < 0) throw badValue('a whole number (0 or more)');
      return result;
    });
  }

  bool(key: string): boolean {
    return this.read(key, false, toBool);
  }

  map(key: string): Record<string, unknown> | undefined {
    return this.read<Record<string, unknown> | undefined>(key, undefined, (value) => {
      if (!isPlainMap(value)) throw badValue('a map of queue arguments');
      return value;
    });
  }
}

/** jobs.Declare's string map, read as RoadRunner's Pipeline.String/Int/Bool do: a bad number falls back to the default. */
class DeclaredKeys {
  constructor(
    private readonly pipeline: PipelineConfig,
    private readonly warn: WarnFn,
  ) {}

  private raw(key: string): unknown {
    return this.pipeline.config[key];
  }

  string(key: string, fallback: string): string {
    const value = this.raw(key);
    return typeof value === 'string' ? value : fallback;
  }

  int(key: string, fallback: number): number {
    const value = this.raw(key);
    if (value === undefined) return fallback;
    const text = typeof value === 'string' ? value.trim() : String(value);
    if (/^[+-]?\d+$/.test(text) && Math.abs(Number(text)) <= 2 ** 31 - 1) return Number(text);
    this.warn(`jobs.Declare of pipeline ${this.pipeline.name}: key '${key}' is ${describeValue(value)}, not a whole number; using ${fallback}`);
    return fallback;
  }

  /** RoadRunner takes exactly "true"; anything else is false. */
  bool(key: string): boolean {
    return this.raw(key) === 'true';
  }

  jsonMap(key: string): Record<string, unknown> | undefined {
    const value = this.raw(key);
    if (typeof value !== 'string' || value === '') return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch (err) {
      throw new ConfigError(`jobs.Declare of pipeline ${this.pipeline.name}: key '${key}' is not JSON: ${(err as Error).message}`);
    }
    if (!isPlainMap(parsed)) throw new ConfigError(`jobs.Declare of pipeline ${this.pipeline.name}: key '${key}' must be a JSON object`);
    return parsed;
  }
}
