// The small sections (docs/compatibility.md): `rpc` (§1.6), `status` (§1.11), `metrics` (§1.12) and `endure` (§1.13).
// rpc, status and metrics are on only when their section exists; endure always has defaults.
import type { EndureConfig, MetricsConfig, RpcConfig, StatusConfig } from '../types.js';
import { describeValue, isPlainMap } from '../coerce.js';
import { parseDuration } from '../duration.js';
import { parseListenAddress } from '../../address.js';
import { AddressError } from '../../errors.js';
import type { SectionReader } from '../reader.js';
import type { SectionContext } from './context.js';
import { appMetricName, createAppMetric, parseCollector } from '../../metrics/plugin.js';

const DEFAULT_RPC_LISTEN = 'tcp://127.0.0.1:6001';
const DEFAULT_METRICS_ADDRESS = '127.0.0.1:2112';
const DEFAULT_UNAVAILABLE_STATUS = 503;
const DEFAULT_CHECK_TIMEOUT_S = 60;
const DEFAULT_GRACE_PERIOD_MS = 30_000;
const ENDURE_LOG_LEVELS = ['debug', 'info', 'warn', 'warning', 'error'];

/** A relative unix path is resolved against the working directory, as the RPC plugin and `rrts workers` do. */
export function readRpc(root: SectionReader, ctx: SectionContext): RpcConfig | null {
  const rpc = root.section('rpc');
  if (!rpc) return null;
  const listen = rpc.string('listen').trim() || DEFAULT_RPC_LISTEN;
  try {
    parseListenAddress(listen, ctx.workDir);
  } catch (err) {
    if (!(err instanceof AddressError)) throw err;
    rpc.fail('listen', err.message);
  }
  return { listen };
}

export function readStatus(root: SectionReader): StatusConfig | null {
  const status = root.section('status');
  if (!status) return null;
  const address = status.string('address').trim();
  if (!address.includes(':')) {
    status.fail('address', `expected host:port like "127.0.0.1:2114", got ${JSON.stringify(address)}`);
  }
  return {
    address,
    unavailableStatusCode: status.uint('unavailable_status_code') || DEFAULT_UNAVAILABLE_STATUS,
    checkTimeout: readSeconds(status, 'check_timeout') || DEFAULT_CHECK_TIMEOUT_S,
  };
}

/**
 * Whole seconds. RoadRunner wants a plain integer here; the docs show "30s", so a duration with a unit is
 * accepted too and rounded up to whole seconds.
 */
function readSeconds(section: SectionReader, key: string): number {
  const value = section.value(key);
  if (typeof value === 'string' && /[a-zµμ]\s*$/i.test(value)) {
    try {
      return Math.ceil(parseDuration(value) / 1000);
    } catch {
      section.fail(key, `expected a whole number of seconds, got ${JSON.stringify(value)}`);
    }
  }
  return section.uint(key);
}

export function readMetrics(root: SectionReader): MetricsConfig | null {
  const metrics = root.section('metrics');
  if (!metrics) return null;
  const collect = metrics.value('collect') ?? {};
  if (!isPlainMap(collect)) return metrics.fail('collect', `expected a map of metric names to their settings, got ${describeValue(collect)}`);
  // Checked here too (the plugin reads them again at start) so that a bad collector names its line.
  for (const [name, settings] of Object.entries(collect)) {
    const spec = parseCollector(settings, (field, message) => metrics.fail(field === '' ? `collect.${name}` : `collect.${name}.${field}`, message));
    try {
      createAppMetric(appMetricName(name, spec), spec, []);
    } catch (error) {
      metrics.fail(`collect.${name}`, (error as Error).message);
    }
  }
  return { address: metrics.string('address').trim() || DEFAULT_METRICS_ADDRESS, collect };
}

export function readEndure(root: SectionReader, ctx: SectionContext): EndureConfig {
  const endure = root.sectionOrEmpty('endure');
  return {
    gracePeriod: endure.duration('grace_period') || DEFAULT_GRACE_PERIOD_MS,
    printGraph: endure.bool('print_graph'),
    logLevel: readEndureLogLevel(endure, ctx),
    watchdogSec: endure.uint('watchdog_sec'),
  };
}

function readEndureLogLevel(endure: SectionReader, ctx: SectionContext): string {
  const level = endure.string('log_level').trim().toLowerCase();
  if (level === '') return 'error';
  if (ENDURE_LOG_LEVELS.includes(level)) return level === 'warning' ? 'warn' : level;
  ctx.warnings.push(`endure.log_level: unknown level ${JSON.stringify(level)} ignored, using error`);
  return 'error';
}
