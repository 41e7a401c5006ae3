// The command line's habits, through the real bin/rrts: global flags in every command's help, `-f` before or after
// `stop`, `stop` with only the pid file, one line for rr commands rrts lacks, and a word about `-d`.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep } from '../support/sleep.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const bin = path.join(root, 'bin', 'rrts');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-cli-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function rrts(args: string[], cwd = tmp): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd, encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A process that records the SIGTERMs it gets into `file` and stays until SIGKILL (bounded by the test). */
function sigtermRecorder(file: string): Promise<number> {
  const code = `process.on('SIGTERM', () => require('fs').appendFileSync(${JSON.stringify(file)}, 'TERM\\n'));
console.log('ready'); setTimeout(() => {}, 30000);`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'ignore'] });
  after(() => child.kill('SIGKILL'));
  return new Promise((resolve, reject) => {
    child.stdout.once('data', () => resolve(child.pid!));
    child.once('error', reject);
  });
}

async function waitForLines(file: string, n: number): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const lines = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).length : 0;
    if (lines >= n) return lines;
    await sleep(50);
  }
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).length : 0;
}

describe('rrts command line', () => {
  it("every command's help shows the global flags", () => {
    for (const command of ['serve', 'workers', 'reset', 'stop']) {
      const r = rrts([command, '--help']);
      assert.equal(r.status, 0, command);
      for (const flag of ['-c, --config', '-w, --workdir', '-o, --override', '--dotenv']) assert.ok(r.stdout.includes(flag), `${command} --help names ${flag}`);
    }
  });

  it('stop needs only the pid file: no config, -f before or after the command', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'stop-'));
    for (const args of [
      ['-f', 'stop'],
      ['stop', '-f'],
    ]) {
      const record = path.join(dir, `${args[0]}.log`);
      const pid = await sigtermRecorder(record);
      fs.writeFileSync(path.join(dir, '.pid'), String(pid));
      // no .rr.yaml in dir: stop must not need one
      const r = rrts(['-c', path.join(dir, '.rr.yaml'), ...args]);
      assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`stopping process with PID: ${pid}`));
      assert.equal(await waitForLines(record, 2), 2, `${args.join(' ')}: two SIGTERMs (forced)`);
      process.kill(pid, 'SIGKILL');
    }
  });

  it('stop without a pid file says where it looked', () => {
    const r = rrts(['stop', '-w', tmp]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`no pid file at ${path.join(tmp, '.pid').replace(/[.]/g, '\\.')}`));
  });

  it('jobs without exactly one mode, or a mode without names, says how to call it in one line', () => {
    for (const args of [['jobs'], ['jobs', '--list', '--pause', 'a']]) {
      const r = rrts(args);
      assert.equal(r.status, 1);
      assert.equal(r.stderr.trim().split('\n').length, 1);
      assert.match(r.stderr, /command should be in form of: `rrts jobs --<destroy\/resume\/pause> pipe1,pipe2`/);
    }
    const r = rrts(['jobs', '--pause']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /incorrect command usage, should be: rrts jobs --pause pipe1,pipe2/);
  });

  it('-d says it is not supported', () => {
    const r = rrts(['serve', '-d', '-c', path.join(tmp, 'missing.yaml')]);
    assert.match(r.stderr, /-d \(the pprof debug server\) is not supported by rrts/);
  });
});
