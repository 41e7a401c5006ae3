// src/system/proc.ts on this machine's real /proc: stat of live processes (a name with spaces and ')', CPU times and
// the informer's CPU % computed from them), which process holds a socket, and the TCP socket tables read for
// loopback connections over IPv4, IPv6 and a dual-stack listener.
import { describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { holdsSocket, ipBytes, procStat, readProcStat, tcpSocketInode } from '../../src/system/proc.js';
import { lifetimeCpuPercent } from '../../src/pool/info.js';
import { sleep } from '../support/sleep.js';

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

describe('procStat', () => {
  it('reads state, parent and CPU times of a process whose name holds spaces and a parenthesis', async () => {
    // The kernel's name of a process is its executable's file name: a copy of sleep named like this
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-proc-'));
    const program = path.join(dir, 'x) y (z');
    fs.copyFileSync('/usr/bin/sleep', program);
    fs.chmodSync(program, 0o755);
    const child = spawn(program, ['30'], { stdio: 'ignore' });
    try {
      assert.ok(child.pid, 'the copy of sleep started');
      const stat = procStat(child.pid);
      assert.ok(stat, `/proc/${child.pid}/stat is there`);
      assert.equal(stat.ppid, process.pid);
      assert.match(stat.state, /^[RSD]$/);
      for (const field of ['utime', 'stime', 'startTime'] as const) {
        assert.ok(Number.isInteger(stat[field]) && stat[field] >= 0, `${field} is a tick count, got ${stat[field]}`);
      }
      assert.ok(stat.startTime >= procStat(process.pid)!.startTime, 'it started after this test process');
    } finally {
      child.kill('SIGKILL');
      await exited(child);
      fs.rmSync(dir, { recursive: true, force: true });
    }
    assert.equal(procStat(child.pid), null, 'gone once reaped');
  });

  it('gives the informer a CPU % above 0 for a busy process and 0 for a gone one', async () => {
    const child = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
    const pid = child.pid!;
    try {
      // wait (bounded) until the kernel has counted some of its CPU time
      for (let i = 0; i < 500; i++) {
        const stat = procStat(pid);
        if (stat && stat.utime + stat.stime >= 5) break;
        await sleep(20);
      }
      const stat = procStat(pid)!;
      assert.ok(stat.utime + stat.stime >= 5, `the busy loop used CPU time (${stat.utime} + ${stat.stime} ticks)`);
      assert.ok(lifetimeCpuPercent(pid) > 0, `CPU % of a busy loop, got ${lifetimeCpuPercent(pid)}`);
    } finally {
      child.kill('SIGKILL');
      await exited(child);
    }
    assert.equal(lifetimeCpuPercent(pid), 0);
  });
});

/** A listener on `host` and one connection to it from this process: [client side, server side]. */
async function connectedPair(listenHost: string, connectHost: string): Promise<{ client: net.Socket; server: net.Socket; close(): Promise<void> }> {
  const listener = net.createServer();
  const accepted = new Promise<net.Socket>((resolve) => listener.once('connection', resolve));
  await new Promise<void>((resolve) => listener.listen(0, listenHost, resolve));
  const client = net.connect((listener.address() as net.AddressInfo).port, connectHost);
  await new Promise((resolve) => client.once('connect', resolve));
  const server = await accepted;
  return {
    client,
    server,
    close: async () => {
      const closed = [client, server].map((socket) => new Promise((resolve) => socket.once('close', resolve)));
      client.destroy();
      server.destroy();
      await Promise.all([...closed, new Promise((resolve) => listener.close(resolve))]);
    },
  };
}

describe('ipBytes', () => {
  test('IPv4, IPv6 and IPv4-mapped addresses in network order', () => {
    assert.deepEqual([...ipBytes('127.0.0.1')!], [127, 0, 0, 1]);
    assert.deepEqual([...ipBytes('::ffff:127.0.0.1')!], [127, 0, 0, 1], 'mapped: the IPv4 address');
    assert.deepEqual([...ipBytes('::ffff:7f00:1')!], [127, 0, 0, 1], 'mapped, written in hex');
    assert.deepEqual([...ipBytes('::1')!], [...Array<number>(15).fill(0), 1]);
    assert.equal(ipBytes('2001:db8::ff00:42:8329')!.toString('hex'), '20010db8000000000000ff0000428329');
    assert.equal(ipBytes('fe80::1%lo')!.toString('hex'), 'fe800000000000000000000000000001');
    assert.equal(ipBytes('1::')!.toString('hex'), '00010000000000000000000000000000');
    assert.equal(ipBytes('localhost'), null);
    assert.equal(ipBytes(''), null);
  });
});

describe('tcpSocketInode and holdsSocket', () => {
  const cases = [
    { name: 'IPv4', listen: '127.0.0.1', connect: '127.0.0.1' },
    { name: 'IPv6', listen: '::1', connect: '::1' },
    { name: 'IPv4 client of a dual-stack listener', listen: '::', connect: '127.0.0.1' },
  ];
  for (const { name, listen, connect } of cases) {
    test(`${name}: the server side finds the client's socket, which this process holds and a child does not`, async () => {
      const pair = await connectedPair(listen, connect);
      const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
      try {
        const { server } = pair;
        const inode = await tcpSocketInode(
          { address: server.remoteAddress!, port: server.remotePort! },
          { address: server.localAddress!, port: server.localPort! },
        );
        assert.ok(inode !== null && inode > 0, `an inode for ${server.remoteAddress}:${server.remotePort}`);
        assert.equal(await holdsSocket(process.pid, inode), true);
        assert.equal(await holdsSocket(sleeper.pid!, inode), false);
        // the server's own socket is the other entry: ends swapped
        const own = await tcpSocketInode(
          { address: server.localAddress!, port: server.localPort! },
          { address: server.remoteAddress!, port: server.remotePort! },
        );
        assert.ok(own !== null && own !== inode);
      } finally {
        sleeper.kill('SIGKILL');
        await pair.close();
      }
    });
  }

  test('a connection that is gone, or an address that is no IP, has no inode', async () => {
    const pair = await connectedPair('127.0.0.1', '127.0.0.1');
    const local = { address: pair.server.localAddress!, port: pair.server.localPort! };
    const remote = { address: pair.server.remoteAddress!, port: pair.server.remotePort! };
    await pair.close();
    assert.equal(await tcpSocketInode(remote, local), null, 'closed: TIME_WAIT leftovers have inode 0');
    assert.equal(await tcpSocketInode({ address: 'nowhere', port: 1 }, local), null);
  });

  test('holdsSocket of a process that does not exist is false', async () => {
    assert.equal(await holdsSocket(2 ** 22 + 1, 1), false); // above the kernel's pid_max limit
  });
});

describe('readProcStat', () => {
  test('agrees with procStat and names the parent', async () => {
    const stat = await readProcStat(process.pid);
    assert.equal(stat?.ppid, process.ppid);
    // state and CPU times move between two reads of a running process; what it is does not
    const sync = procStat(process.pid)!;
    assert.deepEqual([stat?.ppid, stat?.startTime], [sync.ppid, sync.startTime]);
    assert.ok(stat.utime <= sync.utime && stat.stime <= sync.stime, 'CPU times only grow');
    assert.equal(await readProcStat(2 ** 22 + 1), null);
  });
});
