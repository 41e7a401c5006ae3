// RoadRunner's global flags (docs/compatibility.md §2.1), shared by every command, and the config loading they drive.
import path from 'node:path';
import { Option, type Command } from 'commander';
import { loadConfig, resolveLocations } from '../config/index.js';
import type { Config } from '../config/types.js';
import { ConfigError } from '../errors.js';

export interface GlobalOptions {
  config: string;
  workdir?: string;
  WorkDir?: string;
  override: string[];
  dotenv?: string;
  silent?: boolean;
  debug?: boolean;
  pid?: boolean;
  enableExperimental?: boolean;
  force?: boolean;
  strict?: boolean;
}

export function addGlobalOptions(program: Command): Command {
  return (
    program
      .option('-c, --config <file>', 'config file', '.rr.yaml')
      .option('-w, --workdir <dir>', "working directory (default: the config file's folder)")
      .addOption(new Option('--WorkDir <dir>', 'alias of --workdir, as rr spells it').hideHelp())
      .option('-o, --override <key=value>', 'override a config value (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
      .option('--dotenv <file>', 'load environment variables from a file (DOTENV_PATH wins)')
      .option('-s, --silent', "do not print rrts's own console lines")
      .option('-d, --debug', "rr's pprof debug server: not supported, ignored with a warning")
      .option('-p, --pid', 'write the process id to .pid in the working directory')
      .option('-e, --enable-experimental', 'accepted for compatibility with rr')
      // global, as in rr: `rrts -f stop` and `rrts stop -f` both force
      .option('-f, --force', 'force the stop (rrts stop)')
      .option('--strict', 'a config key rrts does not read or implement is an error, not a warning (or RRTS_STRICT=1)')
  );
}

/** The working directory the flags name, without reading the config (loadConfig's rule): -w, or the config's folder. */
export function workDirOf(opts: GlobalOptions): string {
  try {
    return resolveLocations({ configPath: opts.config, workDir: opts.workdir ?? opts.WorkDir }).workDir;
  } catch (err) {
    if (err instanceof ConfigError) die(`config error: ${err.message}`);
    throw err;
  }
}

/** Load the config named by the flags; a ConfigError is printed and ends the process with exit code 1. */
export function loadConfigOrExit(opts: GlobalOptions): Config {
  try {
    return loadConfig({
      configPath: opts.config,
      workDir: opts.workdir ?? opts.WorkDir,
      overrides: opts.override,
      dotenv: opts.dotenv,
      env: process.env,
      // without the flag, RRTS_STRICT decides
      strict: opts.strict || undefined,
    });
  } catch (err) {
    if (err instanceof ConfigError) die(`config error: ${err.message}`);
    throw err;
  }
}

export function pidFilePath(config: Config): string {
  return path.join(config.workDir, '.pid');
}

export function die(message: string, code = 1): never {
  const color = process.stderr.isTTY && !process.env.NO_COLOR;
  process.stderr.write(color ? `\x1b[1;31m${message}\x1b[0m\n` : `${message}\n`);
  process.exit(code);
}
