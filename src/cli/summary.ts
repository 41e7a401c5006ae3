// The start-up summary `rrts serve` logs once every plugin serves: where the config came from, the mode, each
// listener with its bound address, how many workers are ready and how long the start took, and in fork mode the
// master and its preload. An operator reading the log at 3 a.m. sees what runs without opening the config.
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { RrtsServer } from '../server.js';
import { JobsPlugin } from '../jobs/plugin.js';

function hostPort(address: AddressInfo | null): string | null {
  if (!address) return null;
  return address.family === 'IPv6' ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`;
}

/** The listeners that serve, by role, with the address each one is bound to. */
export function listenersOf(server: RrtsServer): Record<string, string> {
  const out: Record<string, string> = {};
  const http = server.http ?? server.front;
  if (http) {
    const plain = server.config.http?.address ? hostPort(http.address) : null;
    if (plain) out[server.config.http?.http2.h2c ? 'http (and h2c)' : 'http'] = plain;
    const tls = hostPort(http.tlsAddress);
    if (tls) out.https = tls;
  }
  if (server.rpc) out.rpc = server.rpc.address;
  const status = hostPort(server.status?.address ?? null);
  if (status) out.status = status;
  const metrics = hostPort(server.metrics?.address ?? null);
  if (metrics) out.metrics = metrics;
  return out;
}

/** Log the summary at info: one line per fact, each with its fields for a JSON log. */
export async function logStartupSummary(server: RrtsServer, log: Logger, startedMs: number): Promise<void> {
  const { config } = server;
  const elapsedMs = Math.round(performance.now() - startedMs);
  log.info({ config: config.file, workdir: config.workDir }, `config ${config.file}, working directory ${config.workDir}`);
  const listeners = listenersOf(server);
  for (const [role, address] of Object.entries(listeners)) log.info({ listener: role, address }, `${role} listening on ${address}`);
  for (const plugin of server.plugins.withWorkers()) {
    const name = plugin.name;
    const workers = await plugin.workers().catch(() => []);
    const ready = workers.length;
    const mode = plugin.workerMode;
    log.info({ plugin: name, mode, workers: ready, elapsed_ms: elapsedMs }, `${name}: ${ready} workers ready in ${elapsedMs} ms (${mode} mode)`);
    if (mode === 'fork') {
      const preload = config.server.fork.preload;
      const master = workers.find((w) => w.masterPid !== undefined)?.masterPid ?? null;
      log.info({ plugin: name, master, preload }, `${name}: fork master ${master ?? '?'}, preload ${preload ?? 'none'}`);
    }
  }
  for (const plugin of server.plugins.all) {
    if (!(plugin instanceof JobsPlugin)) continue;
    for (const { pipeline, driver, state } of await plugin.pipelineSummary()) {
      log.info({ plugin: 'jobs', pipeline, driver, state }, `jobs: pipeline ${pipeline}, driver ${driver}, ${state}`);
    }
  }
}
