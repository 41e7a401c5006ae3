// Unix socket paths longer than sun_path holds, through the real CLI: `rpc.listen` and `server.relay` over 107
// bytes (counted in UTF-8 bytes, relative paths against the working directory) and fork mode under a long TMPDIR
// are config errors naming the file, key, length and limit, and nothing is left on disk; 107 bytes still listens.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config/index.js';
import { tempDir, writeConfig, writeFiles } from '../config/tmp.js';
import { assertConfigError, BIN, serve } from './cli-helpers.js';
const LIMIT = 107;

/** A file name in `dir` making the absolute path exactly `bytes` bytes long (ASCII). */
function nameOfLength(dir: string, bytes: number, suffix = '.sock'): string {
  const room = bytes - Buffer.byteLength(dir) - 1 - suffix.length;
  assert.ok(room > 0, `the temp dir ${dir} is too long for this test`);
  return 's'.repeat(room) + suffix;
}

function leftovers(dir: string): string[] {
  return fs.readdirSync(dir).filter((name) => name !== 'rr.yaml');
}

const WORKER = 'server:\n  command: php worker.php\n';

describe('rrts serve: unix socket paths over 107 bytes', () => {
  it('rpc.listen, relative to the working directory: refused with the byte length; nothing on disk', () => {
    const dir = tempDir();
    const name = nameOfLength(dir, 130);
    fs.writeFileSync(path.join(dir, 'rr.yaml'), `version: '3'\nrpc:\n  listen: unix://${name}\n`);
    assertConfigError(serve(dir), /^config error: rr\.yaml:3, key 'rpc\.listen': unix socket path ".*" is 130 bytes, over the limit of 107 \(/);
    assert.deepEqual(leftovers(dir), []);
    // a second start gives the same error, not EADDRINUSE from a socket left under a shortened name
    assertConfigError(serve(dir), /is 130 bytes, over the limit of 107/);
    assert.deepEqual(leftovers(dir), []);
  });

  it('server.relay: bytes are counted, not characters (100 characters, 3 bytes each for the €)', () => {
    const dir = tempDir();
    const chars = 100 - dir.length - 1 - '.sock'.length;
    const name = `${'€'.repeat(20)}${'s'.repeat(chars - 20)}.sock`;
    const file = path.join(dir, name);
    assert.equal(file.length, 100);
    assert.equal(Buffer.byteLength(file), 140);
    fs.writeFileSync(path.join(dir, 'rr.yaml'), `version: '3'\n${WORKER}  relay: unix://${file}\nhttp:\n  address: 127.0.0.1:0\n`);
    assertConfigError(serve(dir), /^config error: rr\.yaml:4, key 'server\.relay': unix socket path ".*" is 140 bytes, over the limit of 107 \(/);
    assert.deepEqual(leftovers(dir), []);
  });

  it('a -o override names its flag', () => {
    const dir = writeFiles({ 'rr.yaml': "version: '3'\nrpc:\n  listen: tcp://127.0.0.1:0\n" });
    const flag = `rpc.listen=unix://${nameOfLength(dir, 120)}`;
    assertConfigError(
      serve(dir, ['-o', flag]),
      new RegExp(`^config error: rr\\.yaml, key 'rpc\\.listen': unix socket path ".*" is 120 bytes, over the limit of 107 .*\\(set by -o ${flag}\\)$`),
    );
    assert.deepEqual(leftovers(dir), []);
  });

  it('fork mode under a TMPDIR too long for its private socket is refused at start', () => {
    const dir = writeFiles({ 'rr.yaml': `version: '3'\n${WORKER}  fork:\n    enabled: true\nhttp:\n  address: 127.0.0.1:0\n` });
    const longTmp = path.join(os.tmpdir(), 't'.repeat(100));
    const result = serve(dir, [], { ...process.env, TMPDIR: longTmp });
    assertConfigError(
      result,
      new RegExp(
        `^config error: rr\\.yaml:5, key 'server\\.fork\\.enabled': fork mode's unix sockets go in a private directory under the temp dir "${longTmp}" \\(TMPDIR\\): the longest, ".*/control-9+\\.sock", is ${Buffer.byteLength(longTmp) + 36} bytes, over the limit of 107 for a socket path; set TMPDIR to a directory of at most 71 bytes$`,
      ),
    );
    assert.equal(fs.existsSync(longTmp), false);
  });

  it('fork mode: a TMPDIR of 71 bytes is fine, 72 is refused', () => {
    const { file } = writeConfig(`version: '3'\n${WORKER}  fork:\n    enabled: true\nhttp:\n  address: 127.0.0.1:0\n`);
    const saved = process.env.TMPDIR;
    const base = os.tmpdir();
    try {
      for (const [bytes, ok] of [
        [71, true],
        [72, false],
      ] as const) {
        process.env.TMPDIR = path.join(base, 't'.repeat(bytes - Buffer.byteLength(base) - 1));
        assert.equal(Buffer.byteLength(os.tmpdir()), bytes);
        const load = (): unknown => loadConfig({ configPath: file, env: {} });
        if (ok) assert.equal((load() as { server: { fork: { enabled: boolean } } }).server.fork.enabled, true);
        else assert.throws(load, /is 108 bytes, over the limit of 107/);
      }
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
  });

  it('a path of exactly 107 bytes listens, under its full name', async () => {
    const dir = tempDir();
    const name = nameOfLength(dir, LIMIT);
    fs.writeFileSync(path.join(dir, 'rr.yaml'), `version: '3'\nrpc:\n  listen: unix://${name}\n`);
    const child = spawn(process.execPath, [BIN, 'serve', '-c', 'rr.yaml'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      const socket = path.join(dir, name);
      let connected = false;
      for (let attempt = 0; attempt < 200 && !connected && child.exitCode === null; attempt++) {
        connected = await new Promise<boolean>((resolve) => {
          const probe = net.connect(socket, () => {
            probe.destroy();
            resolve(true);
          });
          probe.once('error', () => setTimeout(() => resolve(false), 50));
        });
      }
      assert.ok(connected, `rrts did not listen on ${socket}: ${stderr}`);
      assert.deepEqual(leftovers(dir), [name]);
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
  });
});
