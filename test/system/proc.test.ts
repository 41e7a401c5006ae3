// src/system/proc.ts on this machine's real /proc: stat of a live process, which process holds a socket, and the
// TCP socket tables read for loopback connections over IPv4, IPv6 and a dual-stack listener.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { holdsSocket, ipBytes, procStat, readProcStat, tcpSocketInode } from '../../src/system/proc.js';

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
    assert.deepEqual(stat, procStat(process.pid));
    assert.equal(await readProcStat(2 ** 22 + 1), null);
  });
});
