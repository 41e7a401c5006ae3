// The beanstalk pipeline's settings as RoadRunner's beanstalkjobs reads them (docs/jobs-beanstalk.md §1): the
// global `beanstalk:` section (addr, timeout) and the pipeline's keys from the file or from jobs.Declare's string map.
import { describeValue, isPlainMap, toInt, toStr } from '../../../config/coerce.js';
import { parseDuration } from '../../../config/duration.js';
import { ConfigError } from '../../../errors.js';
import type { PipelineConfig } from '../../driver.js';
import { declaredInt, declaredString, readKey } from '../pipeline-keys.js';

export const DEFAULT_ADDR = 'tcp://127.0.0.1:11300';
const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_TUBE = 'default';
/** beanstalkd's largest priority and delay: 2^32 - 1 */
export const MAX_UINT32 = 4_294_967_295;

export interface BeanstalkSettings {
  network: 'tcp' | 'unix';
  address: string;
  /** dial timeout, and every job's time-to-run (RoadRunner passes `timeout` as the ttr of a put) */
  timeoutMs: number;
  tube: string;
  /** the beanstalkd priority of every put (lower first) */
  tubePriority: number;
  /** how long one reserve waits for a job before asking again, in whole seconds (beanstalkd's unit) */
  reserveTimeoutSeconds: number;
}

export const NO_GLOBAL_TEXT = 'no global beanstalk configuration, global configuration should contain beanstalk addrs and timeout';

/**
 * File pipelines: tube (default "default"), tube_priority (0), reserve_timeout (a duration, 1s). Declared ones, as
 * RoadRunner's FromPipeline: tube, tube_priority (1) and reserve_timeout (whole seconds, 5) from the string map.
 */
export function readBeanstalkSettings(pipeline: PipelineConfig, globalConfig: Record<string, unknown>): BeanstalkSettings {
  const global = globalConfig['beanstalk'];
  if (global === undefined || global === null) throw new ConfigError(NO_GLOBAL_TEXT);
  if (!isPlainMap(global)) throw new ConfigError(`beanstalk: expected a map, got ${describeValue(global)}`);
  const addr = readKey(global, 'addr', 'beanstalk', toStr) || DEFAULT_ADDR;
  const timeoutMs = readKey(global, 'timeout', 'beanstalk', parseDuration) || DEFAULT_TIMEOUT_MS;
  const [scheme, address] = splitAddr(addr);

  const where = `jobs.pipelines.${pipeline.name}.config`;
  const own = pipeline.config;
  let tube: string;
  let tubePriority: number;
  let reserveTimeoutMs: number;
  if (pipeline.declared) {
    tube = declaredString(own, 'tube') || DEFAULT_TUBE;
    tubePriority = declaredInt(own, 'tube_priority', 1);
    reserveTimeoutMs = declaredInt(own, 'reserve_timeout', 5) * 1000;
  } else {
    tube = readKey(own, 'tube', where, toStr) || DEFAULT_TUBE;
    tubePriority = readKey(own, 'tube_priority', where, toInt);
    reserveTimeoutMs = readKey(own, 'reserve_timeout', where, parseDuration) || 1000;
  }
  const declaredWhere = `jobs.Declare of pipeline ${pipeline.name}`;
  if (tubePriority < 0 || tubePriority > MAX_UINT32) {
    throw new ConfigError(`${pipeline.declared ? `${declaredWhere}, key` : where}.tube_priority: must be 0 to ${MAX_UINT32}, got ${tubePriority}`);
  }
  if (!/^[A-Za-z0-9\-+/;.$_()]{1,200}$/.test(tube) || tube.startsWith('-')) {
    throw new ConfigError(
      `${pipeline.declared ? `${declaredWhere}, key` : where}.tube: ${JSON.stringify(tube)} is not a beanstalkd tube name (letters, digits, - + / ; . $ _ ( ), at most 200)`,
    );
  }
  return {
    network: scheme,
    address,
    timeoutMs,
    tube,
    tubePriority,
    // beanstalkd counts whole seconds; 0 would turn the reserve loop into a busy loop
    reserveTimeoutSeconds: Math.max(1, Math.floor(reserveTimeoutMs / 1000)),
  };
}

function splitAddr(addr: string): ['tcp' | 'unix', string] {
  const at = addr.indexOf('://');
  if (at === -1) throw new ConfigError(`beanstalk.addr: invalid socket DSN (tcp://127.0.0.1:11300, unix://beanstalk.sock), provided: ${addr}`);
  const scheme = addr.slice(0, at);
  const address = addr.slice(at + 3);
  if (scheme !== 'tcp' && scheme !== 'unix') throw new ConfigError(`beanstalk.addr: the network must be tcp or unix, got ${JSON.stringify(scheme)} in ${addr}`);
  if (scheme === 'tcp' && !/^.+:\d{1,5}$/.test(address)) throw new ConfigError(`beanstalk.addr: expected tcp://host:port, got ${addr}`);
  return [scheme, address];
}
