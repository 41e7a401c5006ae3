// The forked workers' own output streams: WorkerOutputServer over a real unix socket (this process is the peer its
// SO_PEERCRED check sees), and WorkerOutputLines, which keeps a line that arrives in pieces one record.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { WorkerOutputLines } from '../../../src/log/index.js';
import { WorkerOutputServer } from '../../../src/spawn/fork/output.js';
import { sleep } from '../../support/sleep.js';

const tempDirs: string[] = [];
after(() => {
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** A pino logger whose records (parsed) land in `records`. */
function collectingLogger(): { log: pino.Logger; records: Array<Record<string, unknown>> } {
  const records: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) records.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level: 'debug' }, sink), records };
}

async function until(predicate: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !predicate(); i++) await sleep(10);
  assert.ok(predicate(), `timed out waiting for ${what}`);
}

function connect(socketPath: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const client = net.createConnection(socketPath, () => resolve(client));
    client.once('error', reject);
  });
}

describe('WorkerOutputServer', () => {
  it('logs each line under the pid of the process that connected, whole however it was cut, the last one at EOF', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-output-'));
    tempDirs.push(dir);
    const { log, records } = collectingLogger();
    const server = new WorkerOutputServer(path.join(dir, 'output.sock'), log, (pid) => pid === process.pid);
    assert.equal(await server.listen(null), true);
    try {
      assert.equal(fs.statSync(server.path).mode & 0o777, 0o600);
      const client = await connect(server.path);
      const long = 'x'.repeat(200_000);
      const euro = Buffer.from('price: 3 \u20ac\n'); // the euro sign is 3 bytes: cut between its first two
      const cut = euro.indexOf(0xe2) + 1;
      for (const piece of [`first ${long.slice(0, 70_000)}`, long.slice(70_000), '\r\nsecond\n\n']) {
        client.write(piece);
        await sleep(20); // separate reads on the server's side
      }
      client.write(euro.subarray(0, cut));
      await sleep(20);
      client.write(euro.subarray(cut));
      client.end('no newline at the end');
      await until(() => records.length >= 4, 'four records');
      await sleep(50);
      assert.deepEqual(
        records.map((r) => [r.pid, r.msg]),
        [
          [process.pid, `first ${long}`],
          [process.pid, 'second'],
          [process.pid, 'price: 3 \u20ac'],
          [process.pid, 'no newline at the end'],
        ],
      );
    } finally {
      await server.close();
    }
    assert.equal(fs.existsSync(server.path), false, 'the socket file is removed');
  });

  it("quotes a failed start's lines when its connection is accepted only after the start was seen failing", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-output-'));
    tempDirs.push(dir);
    const { log, records } = collectingLogger();
    const server = new WorkerOutputServer(path.join(dir, 'output.sock'), log, (pid) => pid === process.pid);
    assert.equal(await server.listen(null), true);
    try {
      // the worker's exit came first (its connection still in the backlog): the error asks before the connection
      const quoted = server.startFailed(process.pid);
      const client = await connect(server.path);
      client.end('PHP Fatal error: boom\n');
      assert.deepEqual(await quoted, ['PHP Fatal error: boom']);
      await sleep(50);
      assert.deepEqual(records, [], 'quoted, not logged as well');
    } finally {
      await server.close();
    }
  });

  it('holds the lines of a process reaped before its connection was read, for the start that names its pid', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-output-'));
    tempDirs.push(dir);
    const { log, records } = collectingLogger();
    const server = new WorkerOutputServer(path.join(dir, 'output.sock'), log, () => false); // /proc cannot tell any more
    assert.equal(await server.listen(null), true);
    try {
      // spawnSync blocks this loop: the child connects, writes, exits and is reaped before the server accepts
      const script = `const c = require('net').createConnection(${JSON.stringify(server.path)}, () => c.write('Fatal: preload failed\\n', () => process.exit(0)));`;
      const child = spawnSync(process.execPath, ['-e', script], { timeout: 10_000 });
      assert.equal(child.status, 0, child.stderr.toString());
      assert.deepEqual(await server.startFailed(child.pid), ['Fatal: preload failed']);
      assert.deepEqual(records, [], 'quoted, not dropped or logged');
    } finally {
      await server.close();
    }
  });

  it('drops, with a warning, a connection from a process that is not a child of our masters', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-output-'));
    tempDirs.push(dir);
    const { log, records } = collectingLogger();
    const server = new WorkerOutputServer(path.join(dir, 'output.sock'), log, () => false);
    await server.listen(null);
    try {
      const client = await connect(server.path);
      const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
      client.on('error', () => undefined);
      client.write('not logged\n');
      await closed;
      assert.deepEqual(
        records.map((r) => r.msg),
        [`worker output connection dropped: pid ${process.pid} is not a child of a fork master of ours`],
      );
    } finally {
      await server.close();
    }
  });
});

describe('WorkerOutputLines', () => {
  it('cuts a line longer than the limit into records of the limit, without losing a byte', () => {
    const { log, records } = collectingLogger();
    const lines = new WorkerOutputLines(log, 42, 10);
    lines.push(Buffer.from('abcdefghijklmnopqrstuvwxy\nshort\n0123'));
    lines.push(Buffer.from('456789ABCDEF'));
    lines.end();
    assert.deepEqual(
      records.map((r) => r.msg),
      ['abcdefghij', 'klmnopqrst', 'uvwxy', 'short', '0123456789', 'ABCDEF'],
    );
    assert.ok(records.every((r) => r.pid === 42));
  });
});
