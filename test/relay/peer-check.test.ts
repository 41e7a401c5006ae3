// src/relay/peer-check.ts with real sockets and a real connecting process: the answered pid must be the process at
// the other end, and that process must be a spawned one or descend from one.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { checkPeer, peerCheckUnavailableReason } from '../../src/relay/peer-check.js';

/** A node process that connects to `target` and stays; resolves with it and the server side of its connection. */
async function connectFromChild(listener: net.Server, target: string): Promise<{ child: ChildProcess; socket: net.Socket }> {
  const accepted = new Promise<net.Socket>((resolve) => listener.once('connection', resolve));
  const script = `const t = JSON.parse(process.argv[1]); require('node:net').connect(t); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['-e', script, target], { stdio: 'ignore' });
  return { child, socket: await accepted };
}

for (const kind of ['unix', 'tcp'] as const) {
  describe(`checkPeer over ${kind}`, () => {
    let dir: string;
    let listener: net.Server;
    let target: string;
    let child: ChildProcess;
    let socket: net.Socket;

    before(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-peer-'));
      listener = net.createServer();
      if (kind === 'unix') {
        const file = path.join(dir, 'peer.sock');
        await new Promise<void>((resolve) => listener.listen(file, resolve));
        target = JSON.stringify({ path: file });
      } else {
        await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
        target = JSON.stringify({ host: '127.0.0.1', port: (listener.address() as net.AddressInfo).port });
      }
      ({ child, socket } = await connectFromChild(listener, target));
    });

    after(async () => {
      child.kill('SIGKILL');
      socket.destroy();
      await new Promise((resolve) => listener.close(resolve));
      fs.rmSync(dir, { recursive: true, force: true });
    });

    test('the check can run here', () => {
      assert.equal(peerCheckUnavailableReason(kind), null);
    });

    test('the spawned process answering its own pid passes', async () => {
      assert.deepEqual(await checkPeer(socket, kind, child.pid!, (pid) => pid === child.pid), { ok: true, spawnedPid: child.pid });
    });

    test('a descendant of the spawned process passes, filed under the spawned pid', async () => {
      // the child is ours: this test process plays the wrapper rrts spawned
      assert.deepEqual(await checkPeer(socket, kind, child.pid!, (pid) => pid === process.pid), { ok: true, spawnedPid: process.pid });
    });

    test('a process rrts did not start, nor a descendant of one, is refused', async () => {
      const verdict = await checkPeer(socket, kind, child.pid!, () => false);
      assert.equal(verdict.ok, false);
      assert.match(!verdict.ok ? verdict.why : '', new RegExp(`process ${child.pid} is no worker rrts is starting`));
    });

    test('answering another process’s pid is refused, even a spawned one', async () => {
      const claimed = process.pid;
      const verdict = await checkPeer(socket, kind, claimed, (pid) => pid === claimed);
      assert.equal(verdict.ok, false);
      if (verdict.ok) return;
      if (kind === 'unix') {
        assert.equal(verdict.peerPid, child.pid);
        assert.match(verdict.why, new RegExp(`answered pid ${claimed}, but process ${child.pid} connected \\(SO_PEERCRED\\)`));
      } else {
        assert.match(verdict.why, new RegExp(`answered pid ${claimed}, but that process does not hold the connecting socket`));
      }
    });
  });
}
