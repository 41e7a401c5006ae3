// The core RPC services every rrts serves (docs/compatibility.md §4.2, docs/protocol.md §5.4): `rpc` (version, config), `informer`
// (workers of each pool, add/remove a worker) and `resetter` (rolling reset of a pool), with RoadRunner's shapes and
// error texts.
import type { Logger } from 'pino';
import type { Config } from '../config/types.js';
import { hasPipelines, type Capabilities, type HasWorkers } from '../plugin.js';
import { ResetError, RpcCodecError, UnknownPluginError } from '../errors.js';
import { RR_COMPAT_VERSION } from '../version.js';
import type { RpcPlugin } from './server.js';

export type { WorkerState } from '../plugin.js';

/** What the services need from the server: the config, and the plugins that have workers or can be reset. */
export interface CoreServicesHost {
  readonly config: Config;
  readonly plugins: Pick<Capabilities, 'withWorkers' | 'resettable'>;
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

  const withWorkers = (name: string): HasWorkers | undefined => server.plugins.withWorkers().find((p) => p.name === name);

  rpc.register('informer', {
    List: () => server.plugins.withWorkers().map((p) => p.name),
    Workers: async (arg) => {
      const plugin = withWorkers(pluginName(arg));
      // RoadRunner answers {"workers":null} for unknown plugins, which makes PHP's WorkerPool throw; [] is kinder.
      return { workers: plugin ? await plugin.workers() : [] };
    },
    // RoadRunner's jobs.State with Go's field names (the JSON codec); [] for a plugin without pipelines
    Jobs: async (arg) => {
      const name = pluginName(arg);
      const plugin = server.plugins.withWorkers().find((p) => p.name === name);
      if (!plugin || !hasPipelines(plugin)) return [];
      return (await plugin.pipelineStates()).map((s) => ({
        Pipeline: s.pipeline,
        Driver: s.driver,
        Queue: s.queue,
        Active: s.active,
        Delayed: s.delayed,
        Reserved: s.reserved,
        Ready: s.ready,
        Priority: s.priority,
        ErrorMessage: s.errorMessage,
      }));
    },
    AddWorker: async (arg) => {
      await managed(withWorkers, pluginName(arg)).addWorker();
      return true;
    },
    RemoveWorker: async (arg) => {
      await managed(withWorkers, pluginName(arg)).removeWorker();
      return true;
    },
  });

  rpc.register('resetter', {
    List: () => server.plugins.resettable().map((p) => p.name),
    Reset: async (arg) => {
      const name = pluginName(arg);
      const plugin = server.plugins.resettable().find((p) => p.name === name);
      if (!plugin) throw new UnknownPluginError(`resetter_rpc_reset:\n\tresetter_plugin_reset_by_name: no such plugin: ${name}`);
      // The pool runs one reset at a time (SIGHUP's too): this one waits for a running one, then resets again.
      const started = Date.now();
      try {
        await plugin.reset();
      } catch (err) {
        throw new ResetError(`resetter_rpc_reset:\n\t${name}: reset failed, the old workers keep serving: ${(err as Error).message}`, { cause: err });
      }
      log?.info({ plugin: name, elapsed_ms: Date.now() - started }, `${name}: workers reset (rpc)`);
      return true;
    },
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
  throw new RpcCodecError(`json: cannot unmarshal ${type} into Go value of type string`);
}

function managed(find: (name: string) => HasWorkers | undefined, name: string): HasWorkers {
  const plugin = find(name);
  if (!plugin) throw new UnknownPluginError(`plugin ${name} does not support workers management`);
  return plugin;
}
