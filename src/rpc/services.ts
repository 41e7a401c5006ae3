// The core RPC services every rrts serves (docs/compatibility.md §4.2, docs/protocol.md §5.4): `rpc` (version, config), `informer`
// (workers of each pool, add/remove a worker) and `resetter` (rolling reset of a pool), with RoadRunner's shapes and
// error texts.
import type { Logger } from 'pino';
import type { Config } from '../config/types.js';
import { describeWorkers } from '../pool/info.js';
import type { WorkerPool } from '../pool/pool.js';
import { RR_COMPAT_VERSION } from '../version.js';
import type { RpcPlugin } from './server.js';

/** What the services need from the server (RrtsServer has it): the config and the pools by plugin name. */
export interface CoreServicesHost {
  readonly config: Config;
  readonly pools: Map<string, WorkerPool>;
}

/**
 * One worker as `informer.Workers` reports it: RoadRunner's State (that key order, those types) and rrts's
 * additions, which RoadRunner's PHP SDK ignores (it reads the keys by name): `uss`/`pss` (the worker's own memory,
 * bytes, 0 when unknown) and, for fork pools only, `masterPid` (the pool's current fork master).
 */
export interface WorkerState {
  pid: number;
  status: number;
  numExecs: number;
  created: number;
  memoryUsage: number;
  CPUPercent: number;
  command: string;
  statusStr: string;
  uss: number;
  pss: number;
  masterPid?: number;
}

export const REDACTED = '******';
/** Keys whose values are hidden from rpc.Config, anywhere in the tree. */
const SECRET_KEY = /passw(or)?d|^pass$|^pwd$|secret|token|key|dsn|auth|credential/i;
/** `scheme://user:password@host`: the password part of URLs in any string value. */
const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^\s/?#@:]*:)[^\s/?#@]+@/gi;

export function registerCoreServices(rpc: RpcPlugin, server: CoreServicesHost, log?: Logger): void {
  rpc.register('rpc', {
    Version: () => RR_COMPAT_VERSION,
    // Go returns []byte: a Buffer here, base64 over JSON, plain bytes over raw and msgpack.
    Config: () => Buffer.from(JSON.stringify(redactSecrets(server.config.raw)), 'utf8'),
  });

  rpc.register('informer', {
    List: () => [...server.pools.keys()],
    Workers: async (arg) => {
      const pool = server.pools.get(pluginName(arg));
      // RoadRunner answers {"workers":null} for unknown plugins, which makes PHP's WorkerPool throw; [] is kinder.
      return { workers: pool ? await workerStates(pool) : [] };
    },
    Jobs: (arg) => {
      pluginName(arg);
      return [];
    },
    AddWorker: async (arg) => {
      await managedPool(server, pluginName(arg)).addWorker();
      return true;
    },
    RemoveWorker: async (arg) => {
      await managedPool(server, pluginName(arg)).removeWorker();
      return true;
    },
  });

  rpc.register('resetter', {
    List: () => [...server.pools.keys()],
    Reset: async (arg) => {
      const name = pluginName(arg);
      const pool = server.pools.get(name);
      if (!pool) throw new Error(`resetter_rpc_reset:\n\tresetter_plugin_reset_by_name: no such plugin: ${name}`);
      // The pool runs one reset at a time (SIGHUP's too): this one waits for a running one, then resets again.
      const started = Date.now();
      try {
        await pool.reset();
      } catch (err) {
        throw new Error(`resetter_rpc_reset:\n\t${name}: reset failed, the old workers keep serving: ${(err as Error).message}`);
      }
      log?.info({ plugin: name, elapsed_ms: Date.now() - started }, `${name}: workers reset (rpc)`);
      return true;
    },
  });
}

/** The pool's workers in RoadRunner's State shape plus rrts's extras, sorted by pid. */
export async function workerStates(pool: WorkerPool): Promise<WorkerState[]> {
  const masterPid = pool.mode === 'fork' ? pool.masterPid : null;
  return (await describeWorkers(pool)).map((w) => {
    const state: WorkerState = {
      pid: w.pid,
      status: w.status,
      numExecs: w.numExecs,
      created: Math.round(w.created),
      memoryUsage: Math.round(w.memoryUsage),
      CPUPercent: w.CPUPercent,
      command: w.command,
      statusStr: w.statusStr,
      uss: w.uss,
      pss: w.pss,
    };
    if (masterPid !== null) state.masterPid = masterPid;
    return state;
  });
}

/**
 * A copy of the config tree with secrets hidden: values under keys that look secret (password, secret, token, key,
 * dsn, auth, credential; case-insensitive, at any depth, including server.env) become "******", and so do the
 * passwords inside URLs in any string. Empty values stay empty (they say "not set" and leak nothing).
 */
export function redactSecrets(value: unknown, key = ''): unknown {
  if (key && SECRET_KEY.test(key) && value !== null && value !== undefined && value !== '') return REDACTED;
  if (typeof value === 'string') return value.replace(URL_PASSWORD, `$1${REDACTED}@`);
  if (Array.isArray(value)) return value.map((v) => redactSecrets(v));
  if (value !== null && typeof value === 'object' && !Buffer.isBuffer(value) && !(value instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redactSecrets(v, k);
    return out;
  }
  return value;
}

/** The plugin-name argument, as Go's decoder into a string would take it. */
function pluginName(arg: unknown): string {
  if (typeof arg === 'string') return arg;
  if (Buffer.isBuffer(arg)) return arg.toString('utf8');
  if (arg === undefined || arg === null) return ''; // Go leaves the string empty
  const type = Array.isArray(arg) ? 'array' : typeof arg;
  throw new Error(`json: cannot unmarshal ${type} into Go value of type string`);
}

function managedPool(server: CoreServicesHost, name: string): WorkerPool {
  const pool = server.pools.get(name);
  if (!pool) throw new Error(`plugin ${name} does not support workers management`);
  return pool;
}
