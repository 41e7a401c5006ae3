// `rrts serve`: load the config, start every plugin, and stop gracefully on SIGINT/SIGTERM/SIGQUIT/SIGABRT
// (a second signal forces exit 1), as `rr serve` does (docs/compatibility.md §2.2, §3.1).
import fs from 'node:fs';
import { createLogs } from '../log/index.js';
import { RrtsServer } from '../server.js';
import { ConfigError, PoolStoppedError, ReloadError } from '../errors.js';
import { OrphanReaper } from '../system/orphans.js';
import { SdNotifier } from '../system/sdnotify.js';
import { RRTS_VERSION } from '../version.js';
import { loadConfig } from '../config/index.js';
import { die, loadConfigOrExit, pidFilePath, type GlobalOptions } from './options.js';
import { logStartupSummary } from './summary.js';

export async function serveCommand(opts: GlobalOptions): Promise<void> {
  const config = loadConfigOrExit(opts);
  let logs;
  try {
    logs = createLogs(config.logs);
  } catch (err) {
    // the log files open after the config loaded: the error knows the key, the config its file
    const key = err instanceof ConfigError ? err.key : 'logs';
    const problem = err instanceof ConfigError ? err.problem : (err as Error).message;
    die(`config error: ${new ConfigError(problem, { file: config.file, key }).message}`);
  }
  const log = logs.channel('rrts');
  for (const warning of config.warnings) log.warn(warning);
  let stdoutBroken = false;
  process.stdout.on('error', () => (stdoutBroken = true)); // nobody reads our stdout any more: keep serving
  const say = (line: string): void => {
    if (!opts.silent && !stdoutBroken) process.stdout.write(`${line}\n`);
  };

  const pidFile = opts.pid ? pidFilePath(config) : null;
  if (pidFile) fs.writeFileSync(pidFile, String(process.pid));
  const removePidFile = (): void => {
    if (pidFile) fs.rmSync(pidFile, { force: true });
  };

  // Subreaper (and maybe PID 1 of a container): whatever the workers leave behind comes to us to be reaped.
  const orphans = new OrphanReaper(logs.channel('rrts'));
  orphans.start();

  const server = new RrtsServer(config, logs);
  const systemd = new SdNotifier(log, { watchdogSec: config.endure.watchdogSec });
  let stopping = false;
  // Nothing may outlive rrts: every process it started is SIGKILLed and every socket file it made is removed.
  const exitForced = (): never => {
    try {
      server.forceStop();
    } catch (err) {
      log.error(`forced exit: ${(err as Error).message}`);
    }
    removePidFile();
    logs.flush();
    process.exit(1);
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      say('exit forced');
      exitForced();
    }
    stopping = true;
    systemd.stopping();
    say(`stop signal received (${signal}), grace timeout is: ${Math.round(config.endure.gracePeriod / 1000)} seconds`);
    server.stop(config.endure.gracePeriod).then(
      () => {
        removePidFile();
        logs.flush();
        process.exit(0);
      },
      (err: Error) => {
        log.error(`error while stopping: ${err.message}`);
        exitForced();
      },
    );
  };
  // SIGABRT too, as RoadRunner stops on it
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGQUIT', 'SIGABRT'] as const) process.on(sig, onSignal);
  // rr dies on SIGHUP; rrts makes it useful: a zero-downtime rolling reset of every pool (new PHP code). A signal
  // that comes while a reload runs is not dropped (it may carry a newer deploy): its reset runs after that one.
  let reloading = 0;
  const onReload = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    log.info(`${signal} received: reloading ${config.file} and resetting the workers of every pool`);
    let next;
    try {
      next = loadConfig({
        configPath: config.file,
        workDir: config.workDir,
        overrides: opts.override,
        dotenv: opts.dotenv,
        env: process.env,
        strict: opts.strict || undefined,
      });
    } catch (err) {
      log.error(`config reload failed, still running on the previous configuration: ${(err as Error).message}`);
      return;
    }
    if (reloading++ === 0) systemd.reloading();
    server
      .reload(next)
      .then((warnings) => warnings.forEach((w) => log.warn(w)))
      .catch((err: Error) => {
        if (err instanceof PoolStoppedError) log.info(`${signal}: reload abandoned, rrts is stopping`);
        else log.error(err instanceof ReloadError ? err.message : `reset failed, the old workers keep serving: ${err.message}`);
      })
      .finally(() => {
        if (--reloading === 0 && !stopping) systemd.reloaded();
      });
  };
  for (const sig of ['SIGHUP', 'SIGUSR2'] as const) process.on(sig, onReload);
  // The daemon must outlive a bug in one request's path: log it and keep serving.
  process.on('uncaughtException', (err) => log.error({ err: err.stack }, `internal error: ${err.message}`));
  process.on('unhandledRejection', (err) => log.error({ err: (err as Error)?.stack }, `internal error: ${(err as Error)?.message ?? err}`));

  const startedMs = performance.now();
  try {
    await server.start();
  } catch (err) {
    log.error((err as Error).message);
    logs.flush();
    await server.stop(1000).catch(() => undefined);
    removePidFile();
    die(`serve: ${(err as Error).message}`);
  }
  if (stopping) return; // a stop signal came during the start: nothing was started after it
  systemd.ready();
  await logStartupSummary(server, log, startedMs);
  say(`[INFO] rrts server started; version: ${RRTS_VERSION}`);
}
