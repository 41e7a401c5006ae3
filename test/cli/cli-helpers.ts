// Running the real CLI on a config in a temp dir, and what a config error must look like on stderr.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bin/rrts');

/** Runs `rrts serve -c <config> ...args` in `dir`; a config error ends it at once, a start is killed after 20 s. */
export function serve(
  dir: string,
  args: string[] = [],
  env: NodeJS.ProcessEnv = process.env,
  config = 'rr.yaml',
): { status: number | null; stderr: string; lines: string[] } {
  const run = spawnSync(process.execPath, [BIN, 'serve', '-c', config, ...args], { cwd: dir, env, encoding: 'utf8', timeout: 20_000, killSignal: 'SIGKILL' });
  const lines = run.stderr.split('\n').filter((line) => line !== '');
  return { status: run.status, stderr: run.stderr, lines };
}

/** Exit code 1 and exactly one stderr line, matching `pattern`, with no stack frame. */
export function assertConfigError(result: ReturnType<typeof serve>, pattern: RegExp): void {
  assert.doesNotMatch(result.stderr, /^ {4}at /m, `a stack trace on stderr:\n${result.stderr}`);
  assert.equal(result.status, 1, `exit code, stderr:\n${result.stderr}`);
  assert.equal(result.lines.length, 1, `one line on stderr, got:\n${result.stderr}`);
  assert.match(result.lines[0]!, pattern);
}
