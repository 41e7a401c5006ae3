// loadConfig: the whole way from `-c .rr.yaml` to a typed, frozen Config, in RoadRunner's order (docs/compatibility.md §1.1):
// work dir, dotenv, parse, ${VAR}, -o, version, include, then each section with its defaults and checks.
import { statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import type { Config, LoadOptions } from './types.js';
import { describeValue, type PlainMap } from './coerce.js';
import { readConfigFile, type Origins } from './document.js';
import { loadDotenv } from './dotenv.js';
import { envLookup, expandTree, type EnvLookup } from './expand.js';
import { checkKeys } from './keys.js';
import { applyOverrides } from './overrides.js';
import { SectionReader } from './reader.js';
import type { SectionContext } from './sections/context.js';
import { readHttp } from './sections/http.js';
import { readJobs } from './sections/jobs.js';
import { readAmqp } from './sections/amqp.js';
import { readBeanstalk } from './sections/beanstalk.js';
import { readNats } from './sections/nats.js';
import { readLogs } from './sections/logs.js';
import { readServer } from './sections/server.js';
import { parsePhpCommand } from './php-command.js';
import { readEndure, readMetrics, readRpc, readStatus } from './sections/services.js';

const DEFAULT_CONFIG_PATH = '.rr.yaml';
const CURRENT_VERSION = '3';
const PREVIOUS_VERSION = '2.7';

interface Locations {
  /** Absolute config path. */
  file: string;
  /** The config path as the user wrote it, used in messages. */
  label: string;
  workDir: string;
}

export function loadConfig(opts: LoadOptions): Config {
  const env = opts.env ?? process.env;
  const where = resolveLocations(opts);
  loadDotenvFile(opts, env, where.workDir);

  const lookup = envLookup(env);
  const source = readConfigFile(where.file, where.label);
  const data = expandTree(source.data, lookup) as PlainMap;
  applyOverrides(data, opts.overrides ?? [], lookup, source.origins, where.label);

  const warnings: string[] = [];
  const root = new SectionReader('', data, source.origins);
  const version = checkVersion(root, where.label, warnings);
  applyIncludes(data, source.origins, version, dirname(where.file), lookup);
  checkKeys(data, source.origins, opts.strict ?? isStrictEnv(env), warnings);

  const ctx: SectionContext = { workDir: where.workDir, cpus: opts.cpus ?? availableParallelism(), warnings };
  const config: Config = {
    version,
    file: where.file,
    workDir: where.workDir,
    raw: data,
    server: readServer(root, ctx, root.has('http')),
    http: readHttp(root, ctx),
    rpc: readRpc(root, ctx),
    logs: readLogs(root, ctx),
    status: readStatus(root),
    metrics: readMetrics(root),
    endure: readEndure(root, ctx),
    jobs: readJobs(root, ctx),
    amqp: readAmqp(root),
    beanstalk: readBeanstalk(root),
    nats: readNats(root),
    warnings: [...new Set(warnings)],
  };
  checkForkCommand(root, config);
  return deepFreeze(config);
}

/** Fork mode takes the worker command apart; say at start if it cannot. */
function checkForkCommand(root: SectionReader, config: Config): void {
  if (!config.server.fork.enabled) return;
  const pools = [
    ['http', config.http?.pool],
    ['jobs', config.jobs?.pool],
  ] as const;
  for (const [plugin, pool] of pools) {
    if (!pool) continue;
    try {
      parsePhpCommand(pool.command ?? config.server.command);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      root.fail(pool.command ? `${plugin}.pool.command` : 'server.command', `${error.problem} (server.fork.enabled is true)`);
    }
  }
}

/** RRTS_STRICT=1 (or true) turns key warnings into errors, like --strict. */
function isStrictEnv(env: NodeJS.ProcessEnv): boolean {
  return ['1', 'true'].includes((env.RRTS_STRICT ?? '').trim().toLowerCase());
}

/** -w is resolved against the current directory and -c against -w; without -w the work dir is the config's folder. */
export function resolveLocations(opts: Pick<LoadOptions, 'configPath' | 'workDir'>): Locations {
  const label = opts.configPath || DEFAULT_CONFIG_PATH;
  if (opts.workDir === undefined || opts.workDir === '') {
    const file = resolve(process.cwd(), label);
    return { file, label, workDir: dirname(file) };
  }
  const workDir = resolve(process.cwd(), opts.workDir);
  if (!isDirectory(workDir)) throw new ConfigError(`working directory ${JSON.stringify(opts.workDir)} (-w) is not a directory`);
  return { file: resolve(workDir, label), label, workDir };
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** DOTENV_PATH in the environment wins over --dotenv (even when empty, which means no file). */
function loadDotenvFile(opts: LoadOptions, env: NodeJS.ProcessEnv, workDir: string): void {
  const path = env.DOTENV_PATH ?? opts.dotenv;
  if (path) loadDotenv(resolve(workDir, path), env);
}

/** `version` must be a YAML string; '3' is current, '2.7' still loads with a warning. */
function checkVersion(root: SectionReader, label: string, warnings: string[]): string {
  const version = root.value('version');
  if (version === undefined) {
    throw new ConfigError(`rr configuration file should contain a version, e.g. version: '${CURRENT_VERSION}'`, { file: label, key: 'version' });
  }
  if (typeof version !== 'string') {
    root.fail('version', `version should be a string: write version: '${String(version)}' (with quotes), got ${describeValue(version)}`);
  }
  if (version === PREVIOUS_VERSION) {
    warnings.push(`please update your configuration from version: '${PREVIOUS_VERSION}' to version: '${CURRENT_VERSION}'`);
  } else if (version !== CURRENT_VERSION) {
    warnings.push(`unknown configuration version '${version}', read as version '${CURRENT_VERSION}'`);
  }
  return version;
}

/**
 * `include: [a.yaml, b.yaml]` (or "a.yaml b.yaml"): each file is parsed and env-substituted, must carry the
 * root's version, and its top-level sections replace the root's (later files win). Paths are relative to the
 * config file's folder, as RoadRunner resolves them.
 */
function applyIncludes(data: PlainMap, origins: Origins, version: string, baseDir: string, lookup: EnvLookup): void {
  for (const entry of includeList(new SectionReader('', data, origins))) {
    const included = readConfigFile(resolve(baseDir, entry), entry);
    const sections = expandTree(included.data, lookup) as PlainMap;
    checkIncludedVersion(sections.version, version, entry);
    for (const [name, value] of Object.entries(sections)) {
      if (name === 'include') continue;
      data[name] = value;
      origins.removeUnder(name);
      origins.copyUnder(name, included.origins);
    }
  }
}

function includeList(root: SectionReader): string[] {
  const value = root.value('include');
  if (value === undefined) return [];
  if (typeof value === 'string') return value.split(/\s+/).filter((file) => file !== '');
  if (Array.isArray(value) && value.every((file) => typeof file === 'string')) return value;
  return root.fail('include', `expected a list of file names (or a space-separated string), got ${describeValue(value)}`);
}

function checkIncludedVersion(included: unknown, rootVersion: string, file: string): void {
  if (included === rootVersion) return;
  throw new ConfigError(`version in an included file must be the same as in the root ('${rootVersion}'), got ${describeValue(included)}`, {
    file,
    key: 'version',
  });
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}
