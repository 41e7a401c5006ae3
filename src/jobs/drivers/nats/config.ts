// The nats pipeline's settings as RoadRunner's natsjobs reads them (docs/jobs-nats.md §1): the global `nats:`
// section (addr) and the pipeline's keys from the file or from jobs.Declare's string map.
import { describeValue, isPlainMap, toBool, toInt, toStr } from '../../../config/coerce.js';
import { ConfigError } from '../../../errors.js';
import type { PipelineConfig } from '../../driver.js';
import { declaredBool, declaredInt, declaredString, readKey } from '../pipeline-keys.js';

/** nats.go's DefaultURL */
export const DEFAULT_ADDR = 'nats://127.0.0.1:4222';
const DEFAULT_STREAM = 'default-stream';
const DEFAULT_SUBJECT = 'default';
const DEFAULT_RATE_LIMIT = 1000;

export const NO_GLOBAL_TEXT = 'no global nats configuration, global configuration should contain NATS URL';

export interface NatsSettings {
  /** the server URL(s), comma-separated as nats.go takes them */
  addr: string;
  /** the JetStream stream, created (or updated) with `subject` as its only subject */
  stream: string;
  subject: string;
  /** the consumer's max_ack_pending: jobs delivered and not settled yet */
  prefetch: number;
  /** read for compatibility; RoadRunner does not use it either */
  rateLimit: number;
  /** an acked job is also deleted from the stream (a new consumer would deliver it again otherwise) */
  deleteAfterAck: boolean;
  /** the consumer starts with the messages published after it was created */
  deliverNew: boolean;
  deleteStreamOnStop: boolean;
}

/**
 * File pipelines: the pipeline's `config` keys with RoadRunner's InitDefaults (prefetch 10). Declared ones, as
 * RoadRunner's FromPipeline: the same keys from the string map, prefetch 100.
 */
export function readNatsSettings(pipeline: PipelineConfig, globalConfig: Record<string, unknown>): NatsSettings {
  const global = globalConfig['nats'];
  if (global === undefined || global === null) throw new ConfigError(NO_GLOBAL_TEXT);
  if (!isPlainMap(global)) throw new ConfigError(`nats: expected a map, got ${describeValue(global)}`);
  const addr = readKey(global, 'addr', 'nats', toStr) || DEFAULT_ADDR;
  checkAddr(addr);

  const own = pipeline.config;
  let settings: Omit<NatsSettings, 'addr'>;
  if (pipeline.declared) {
    settings = {
      stream: declaredString(own, 'stream') || DEFAULT_STREAM,
      subject: declaredString(own, 'subject') || DEFAULT_SUBJECT,
      prefetch: declaredInt(own, 'prefetch', 100),
      rateLimit: declaredInt(own, 'rate_limit', DEFAULT_RATE_LIMIT),
      deleteAfterAck: declaredBool(own, 'delete_after_ack'),
      deliverNew: declaredBool(own, 'deliver_new'),
      deleteStreamOnStop: declaredBool(own, 'delete_stream_on_stop'),
    };
  } else {
    const where = `jobs.pipelines.${pipeline.name}.config`;
    settings = {
      stream: readKey(own, 'stream', where, toStr) || DEFAULT_STREAM,
      subject: readKey(own, 'subject', where, toStr) || DEFAULT_SUBJECT,
      prefetch: readKey(own, 'prefetch', where, toInt) || 10,
      rateLimit: readKey(own, 'rate_limit', where, toInt) || DEFAULT_RATE_LIMIT,
      deleteAfterAck: readKey(own, 'delete_after_ack', where, toBool) || false,
      deliverNew: readKey(own, 'deliver_new', where, toBool) || false,
      deleteStreamOnStop: readKey(own, 'delete_stream_on_stop', where, toBool) || false,
    };
  }
  const at = (key: string) => (pipeline.declared ? `jobs.Declare of pipeline ${pipeline.name}, key ${key}` : `jobs.pipelines.${pipeline.name}.config.${key}`);
  if (settings.prefetch < 1) throw new ConfigError(`${at('prefetch')}: must be at least 1, got ${settings.prefetch}`);
  // JetStream's own rule for stream names: no spaces, dots, wildcards or path separators
  if (!/^[^\s.*>/\\]+$/.test(settings.stream)) {
    throw new ConfigError(`${at('stream')}: ${JSON.stringify(settings.stream)} is not a JetStream stream name (no spaces, '.', '*', '>', '/' or '\\')`);
  }
  if (/\s/.test(settings.subject) || settings.subject.split('.').some((token) => token === '')) {
    throw new ConfigError(`${at('subject')}: ${JSON.stringify(settings.subject)} is not a NATS subject (dot-separated tokens, no spaces)`);
  }
  return { addr, ...settings };
}

/** The section reader and the driver both check the URL list, so a typo names `nats.addr`. */
export function checkAddr(addr: string): void {
  for (const url of addr.split(',')) {
    if (!/^(nats|tls|ws|wss):\/\/[^\s/]+$/.test(url.trim()) && !/^[^\s:/]+:\d{1,5}$/.test(url.trim())) {
      throw new ConfigError(`nats.addr: expected nats://host:port (several separated by commas), got ${JSON.stringify(addr)}`);
    }
  }
}
