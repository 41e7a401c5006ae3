// Tests for writeWhole (src/native/direct-write.ts) on real loopback TCP sockets and real pipes: a write on an idle
// socket skips the stream, a reader that does not read makes the kernel take part of a frame and the rest (and every
// later frame) goes through the stream in order, and a peer gone mid-write gives the error the stream would give.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import { writeWhole } from '../../src/native/direct-write.js';
import { loadNative, nativeUnavailableReason } from '../../src/native/index.js';
import { openWorkerPipes, type WorkerPipes } from '../../src/spawn/exec-pipes.js';

assert.ok(loadNative(), `the native addon must load here: ${nativeUnavailableReason()}`);

const servers: net.Server[] = [];
const sockets: net.Socket[] = [];
const pipes: WorkerPipes[] = [];

after(() => {
  for (const socket of sockets) socket.destroy();
  for (const server of servers) server.close();
  for (const p of pipes) {
    p.closeChildEnds();
    p.jobs.destroy();
    p.answers.destroy();
  }
});

/** A connected loopback pair: `writer` is the accepted side, `reader` the client, paused until a test reads. */
async function tcpPair(): Promise<{ writer: net.Socket; reader: net.Socket }> {
  const server = net.createServer();
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const reader = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  reader.pause();
  sockets.push(reader);
  await once(reader, 'connect');
  const [writer] = await accepted;
  sockets.push(writer);
  return { writer, reader };
}

/** Frame `i` of `size` bytes: its index in the first 4 bytes, then a byte pattern that depends on it. */
function frame(i: number, size: number): Buffer {
  const out = Buffer.alloc(size);
  out.writeUInt32BE(i, 0);
  for (let k = 4; k < size; k++) out[k] = (i * 31 + k) & 0xff;
  return out;
}

/** Reads `total` bytes from a socket (resumed for it, paused again after). */
function readAll(socket: net.Socket, total: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      got += chunk.length;
      if (got < total) return;
      socket.pause();
      socket.off('data', onData);
      socket.off('error', reject);
      resolve(Buffer.concat(chunks));
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.resume();
  });
}

/** Counts the writes that go through the socket's stream (the fallback) and lets them through. */
function countStreamWrites(socket: net.Socket): { count: number } {
  const counter = { count: 0 };
  const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
  socket.write = (...args: unknown[]) => {
    counter.count++;
    return write(...args);
  };
  return counter;
}

describe('writeWhole', () => {
  it('writes a frame on an idle socket with one write(2), without the stream', async () => {
    const { writer, reader } = await tcpPair();
    const streamWrites = countStreamWrites(writer);
    const data = frame(7, 300);
    writeWhole(writer, data);
    assert.equal(streamWrites.count, 0, 'the stream was not used');
    assert.equal(writer.writableLength, 0);
    assert.deepEqual(await readAll(reader, data.length), data);
  });

  it('keeps frames whole and in order when a TCP reader does not read (partial writes, EAGAIN)', async () => {
    const { writer, reader } = await tcpPair();
    const streamWrites = countStreamWrites(writer);
    // 256 frames of 64 KiB, 16 MiB: more than the largest socket buffers Linux gives by default (tcp_wmem 4 MiB,
    // tcp_rmem 6 MiB) hold while the reader sleeps.
    const frames = Array.from({ length: 256 }, (_, i) => frame(i, 64 * 1024 + (i % 3)));
    for (const f of frames) writeWhole(writer, f);
    assert.ok(streamWrites.count > 0, 'the kernel took only part: the rest went through the stream');
    assert.ok(writer.writableLength > 0, 'the stream holds what the kernel did not take');
    const expected = Buffer.concat(frames);
    const got = await readAll(reader, expected.length);
    assert.equal(got.length, expected.length);
    assert.ok(got.equals(expected), 'every byte, in order');
    if (writer.writableLength > 0) await once(writer, 'drain');
    // Drained: the next frame goes straight to the fd again.
    const before = streamWrites.count;
    writeWhole(writer, frame(99, 100));
    assert.equal(streamWrites.count, before);
    assert.deepEqual(await readAll(reader, 100), frame(99, 100));
  });

  it('keeps frames whole and in order on a real pipe whose reader does not read', async () => {
    const p = openWorkerPipes();
    // The jobs pipe's read end, read by this process as a worker's stdin would be, once every frame is written;
    // the socket owns that fd from here on (closed with it), the answers pipe's write end is closed by hand.
    const stdin = new net.Socket({ fd: p.childStdin, readable: true, writable: false });
    stdin.pause();
    try {
      const streamWrites = countStreamWrites(p.jobs);
      // A pipe holds 64 KiB: frames of 20-100 KiB, some small ones between them that must wait their turn.
      const frames = Array.from({ length: 40 }, (_, i) => frame(i, i % 4 === 3 ? 16 : 20_000 + i * 2_000));
      for (const f of frames) writeWhole(p.jobs, f);
      assert.ok(streamWrites.count > 0, 'the pipe filled up: the rest went through the stream');
      const expected = Buffer.concat(frames);
      const got = await readAll(stdin, expected.length);
      assert.ok(got.equals(expected), 'every byte, in order');
    } finally {
      stdin.destroy();
      fs.closeSync(p.childStdout);
      p.jobs.destroy();
      p.answers.destroy();
    }
  });

  it('a pipe whose reader is gone: the socket fails with write EPIPE, as the stream reports it', async () => {
    const p = openWorkerPipes();
    pipes.push(p);
    p.closeChildEnds(); // nobody holds the read end any more
    const failed = once(p.jobs, 'error') as Promise<[NodeJS.ErrnoException]>;
    writeWhole(p.jobs, frame(1, 100));
    const [err] = await failed;
    assert.equal(err.code, 'EPIPE');
    assert.equal(err.syscall, 'write');
    assert.equal(err.message, 'write EPIPE');
    assert.equal(p.jobs.destroyed, true);
    // Later frames on the failed socket are dropped by the stream, as before, not thrown.
    writeWhole(p.jobs, frame(2, 100));
  });

  it('a TCP peer that reset the connection mid-write: the socket fails with a write error', async () => {
    const { writer, reader } = await tcpPair();
    // Fill the path so that a write is pending, then the reader resets (RST) instead of reading.
    for (let i = 0; i < 32; i++) writeWhole(writer, frame(i, 64 * 1024));
    const failed = once(writer, 'error') as Promise<[NodeJS.ErrnoException]>;
    reader.resetAndDestroy();
    // Bounded: the error comes from the pending stream write or, once the stream is idle, from the next direct one.
    for (let i = 0; i < 50 && !writer.destroyed; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      if (writer.writableLength === 0) writeWhole(writer, frame(i, 1024));
    }
    const [err] = await failed;
    assert.ok(err.code === 'ECONNRESET' || err.code === 'EPIPE', `write error: ${err.code}`);
    assert.equal(writer.destroyed, true);
  });

  it('leaves TLS sockets and anything that is not idle to the stream', async () => {
    const { writer, reader } = await tcpPair();
    const streamWrites = countStreamWrites(writer);
    writer.cork(); // the stream holds a corked write: the next one must queue behind it
    writer.write(frame(0, 10));
    writeWhole(writer, frame(1, 10));
    writer.uncork();
    assert.equal(streamWrites.count, 2);
    assert.ok((await readAll(reader, 20)).equals(Buffer.concat([frame(0, 10), frame(1, 10)])));
    const fakeTls = Object.assign(writer, { encrypted: true });
    writeWhole(fakeTls, frame(2, 10));
    assert.equal(streamWrites.count, 3);
    assert.deepEqual(await readAll(reader, 10), frame(2, 10));
  });
});
