// Temp folders for the config tests: each call gets a fresh folder under os.tmpdir(), all removed when the
// test file ends.
import { after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { loadConfig, type Config, type LoadOptions } from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';

const made: string[] = [];

after(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'rrts-config-test-'));
  made.push(dir);
  return dir;
}

/** Writes `files` (relative name -> text) into a fresh folder and returns the folder. */
export function writeFiles(files: Record<string, string>): string {
  const dir = tempDir();
  for (const [name, text] of Object.entries(files)) {
    const path = join(dir, name);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
  }
  return dir;
}

/** Writes one config file (default name .rr.yaml) into a fresh folder; returns its absolute path and folder. */
export function writeConfig(text: string, name = '.rr.yaml'): { file: string; dir: string } {
  const dir = writeFiles({ [name]: text });
  return { file: join(dir, name), dir };
}

/** Loads `yaml` from a fresh file named `name` (no environment, 4 CPUs unless `opts` says otherwise). */
export function loadYaml(yaml: string, opts: Partial<LoadOptions> = {}, name?: string): Config {
  const { file } = writeConfig(yaml, name);
  return loadConfig({ configPath: file, env: {}, cpus: 4, ...opts });
}

/** The ConfigError loading `yaml` must throw. */
export function loadYamlError(yaml: string, opts: Partial<LoadOptions> = {}, name?: string): ConfigError {
  try {
    loadYaml(yaml, opts, name);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error;
  }
  return assert.fail('expected loadConfig to throw');
}
