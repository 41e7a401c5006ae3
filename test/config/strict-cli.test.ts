// Unread config keys through the real bin/rrts: `serve --strict` and RRTS_STRICT=1 exit 1 with one config error
// line; without them `serve` starts and logs the warning with the file and the line.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeConfig } from './tmp.js';
import { sleep } from '../support/sleep.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const bin = path.join(root, 'bin', 'rrts');
const worker = path.join(root, 'php', 'worker.php');

const CONFIG = `version: '3'
server:
  command: php ${worker}
http:
  address: 127.0.0.1:0
  pool:
    num_workers: 1
    num_worker: 4
logs:
  mode: production
  level: warn
`;

function serve(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, 'serve', ...args], {
    encoding: 'utf8',
    timeout: 20_000,
    env: { ...process.env, NO_COLOR: '1', RRTS_STRICT: '', ...env },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const expected = (file: string): string =>
  `config error: ${file}:8, key 'http.pool.num_worker': unknown key (did you mean 'num_workers'?); refused by --strict or RRTS_STRICT=1\n`;

describe('rrts serve and unread keys', () => {
  test('--strict: exit 1 and one line naming the file, the line and the key', () => {
    const { file } = writeConfig(CONFIG);
    const r = serve(['--strict', '-c', file]);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stderr, expected(file));
    assert.equal(r.stdout, '');
  });

  test('RRTS_STRICT=1 does the same', () => {
    const { file } = writeConfig(CONFIG);
    const r = serve(['-c', file], { RRTS_STRICT: '1' });
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stderr, expected(file));
  });

  test('--strict names the -o flag that set an unread key', () => {
    const { file } = writeConfig(CONFIG.replace('    num_worker: 4\n', ''));
    const r = serve(['--strict', '-c', file, '-o', 'http.pool.num_wrkers=3']);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(
      r.stderr,
      `config error: ${file}, key 'http.pool.num_wrkers': unknown key (did you mean 'num_workers'?) (set by -o http.pool.num_wrkers=3); refused by --strict or RRTS_STRICT=1\n`,
    );
  });

  test('without strict mode it starts and logs the warning once', async () => {
    const { file, dir } = writeConfig(CONFIG);
    const child = spawn(process.execPath, [bin, 'serve', '-c', file], {
      cwd: dir,
      env: { ...process.env, RRTS_STRICT: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    after(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    for (let i = 0; i < 400 && !stdout.includes('server started') && child.exitCode === null; i++) await sleep(25);
    assert.match(stdout, /server started/, stderr);
    child.kill('SIGTERM');
    await exited;
    const warnings = stderr.split('\n').filter((line) => line.includes('num_worker'));
    assert.equal(warnings.length, 1, stderr);
    const record = JSON.parse(warnings[0]!) as { level: string; msg: string };
    assert.equal(record.level, 'warn');
    assert.equal(record.msg, `${file}:8, key 'http.pool.num_worker': unknown key (did you mean 'num_workers'?); ignored`);
  });
});
