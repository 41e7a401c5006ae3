// adoptConnection (src/native/adopt.ts) on real loopback TCP and unix sockets: the bytes the accepted socket had
// already read come first and in order, later reads go to the callback in the caller's buffer, writes still reach
// the peer, the peer sees no end when the accepted socket is let go, and sees one when the adopted socket closes.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { adoptConnection, canAdopt } from '../../src/native/adopt.js';
import { until } from '../support/sleep.js';

const servers: net.Server[] = [];
const sockets: net.Socket[] = [];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-adopt-'));

after(() => {
  for (const socket of sockets) socket.destroy();
  for (const server of servers) server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function pair(kind: 'tcp' | 'unix'): Promise<{ accepted: net.Socket; client: net.Socket }> {
  const server = net.createServer();
  servers.push(server);
  if (kind === 'tcp') server.listen(0, '127.0.0.1');
  else server.listen(path.join(dir, `s${servers.length}.sock`));
  await once(server, 'listening');
  const accepting = once(server, 'connection') as Promise<[net.Socket]>;
  const client = kind === 'tcp' ? net.connect((server.address() as net.AddressInfo).port, '127.0.0.1') : net.connect(server.address() as string);
  sockets.push(client);
  const [accepted] = await accepting;
  sockets.push(accepted);
  return { accepted, client };
}

for (const kind of ['tcp', 'unix'] as const) {
  describe(`adoptConnection over ${kind}`, { timeout: 20_000 }, () => {
    test('bytes read before the adoption come first, then the reads into the given buffer, in order', async () => {
      assert.ok(canAdopt());
      const { accepted, client } = await pair(kind);
      accepted.pause();
      client.write('first;');
      await until(() => accepted.readableLength >= 6, 'the accepted socket to buffer the first bytes');
      const buffer = Buffer.alloc(16); // small: a longer write takes several reads into it
      const reads: string[] = [];
      const seenBuffers = new Set<Buffer>();
      const adopted = adoptConnection(accepted, buffer, (n, b) => {
        seenBuffers.add(b);
        reads.push(b.toString('latin1', 0, n));
      });
      assert.ok(adopted !== null);
      sockets.push(adopted.socket);
      assert.ok(accepted.destroyed, 'the accepted socket is let go');
      const later = 'second;' + 'x'.repeat(100) + ';third';
      client.write(later);
      await until(() => reads.join('').length === later.length, 'the later bytes');
      assert.equal(Buffer.concat(adopted.early).toString('latin1') + reads.join(''), 'first;' + later);
      assert.deepEqual([...seenBuffers], [buffer], 'every read lands in the one buffer given');
      assert.ok(reads.length >= 7, `a 113-byte write through a 16-byte buffer takes several reads (${reads.length})`);

      // Writes go out on the same connection, and the client saw no end when the accepted socket was destroyed.
      const echoed = once(client, 'data') as Promise<[Buffer]>;
      adopted.socket.write('answer');
      assert.equal((await echoed)[0].toString(), 'answer');
      assert.equal(client.readableEnded, false);

      // The adopted socket's end is the connection's end.
      const ended = once(client, 'end');
      adopted.socket.end();
      await ended;
    });

    test("the peer's end reaches the adopted socket", async () => {
      const { accepted, client } = await pair(kind);
      const adopted = adoptConnection(accepted, Buffer.alloc(64), () => {});
      assert.ok(adopted !== null);
      sockets.push(adopted.socket);
      const ended = once(adopted.socket, 'end');
      client.end();
      await ended;
    });
  });
}

describe('adoptConnection without a free fd', { timeout: 20_000 }, () => {
  test('EMFILE: null, and the accepted socket reads as before', async () => {
    const prlimit = spawnSync('prlimit', ['--pid', String(process.pid), '--nofile'], { encoding: 'utf8' });
    assert.equal(prlimit.status, 0, `prlimit(1) lowers this process's fd limit here: ${prlimit.stderr}`);
    const [soft, hard] = /NOFILE\D+(\d+)\s+(\d+)/.exec(prlimit.stdout)!.slice(1).map(Number) as [number, number];
    const { accepted, client } = await pair('tcp');
    const fillers: number[] = [];
    const open = fs.readdirSync('/proc/self/fd').length;
    assert.equal(spawnSync('prlimit', ['--pid', String(process.pid), `--nofile=${open + 8}:${hard}`]).status, 0);
    try {
      // Take every fd left under the lowered limit (a bounded loop: at most the 8 given and the gaps below).
      for (let i = 0; i < open + 8; i++) {
        try {
          fillers.push(fs.openSync('/dev/null', 'r'));
        } catch (err) {
          assert.equal((err as NodeJS.ErrnoException).code, 'EMFILE');
          break;
        }
      }
      assert.equal(
        adoptConnection(accepted, Buffer.alloc(64), () => assert.fail('no read may come here')),
        null,
      );
    } finally {
      for (const fd of fillers) fs.closeSync(fd);
      spawnSync('prlimit', ['--pid', String(process.pid), `--nofile=${soft}:${hard}`]);
    }
    assert.equal(accepted.destroyed, false);
    const got = once(accepted, 'data') as Promise<[Buffer]>;
    accepted.resume();
    client.write('still here');
    assert.equal((await got)[0].toString(), 'still here');
  });
});
