// RemoteGeneration, the primary's stand-in for a fork master of a front process: when the master's control
// connection is handed over, every frame the primary had read (the hello's chunk, and what the socket's stream had
// buffered since) goes with it, and a partial frame refuses the master instead of being lost. Real unix sockets;
// the host that posts to the front is a recorder. And the host's own roots (real php): stopped before close() returns.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { encodeFrame, FrameDecoder } from '../../src/goridge/frame.js';
import pino from 'pino';
import { RemoteGeneration, RootHost } from '../../src/front/root-host.js';
import type { RootEvent, RootReply } from '../../src/front/messages.js';
import type { MasterOptions } from '../../src/spawn/fork/root.js';
import { FIXTURE, ROOT } from '../support/paths.js';
import { alive } from '../support/processes.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-root-host-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A connected pair over a unix socket: [the server's end, the client's end]. */
async function pair(name: string): Promise<{ server: net.Socket; client: net.Socket; close: () => void }> {
  const file = path.join(dir, name);
  const listener = net.createServer();
  await new Promise<void>((resolve) => listener.listen(file, resolve));
  const accepted = new Promise<net.Socket>((resolve) => listener.once('connection', resolve));
  const client = net.connect(file);
  const server = await accepted;
  return {
    server,
    client,
    close: () => {
      client.destroy();
      server.destroy();
      listener.close();
    },
  };
}

/** Read from `socket` until its first frame, as the root does for a hello; leaves it paused. */
function firstFrames(socket: net.Socket, decoder: FrameDecoder): Promise<Array<{ payload: Buffer }>> {
  return new Promise((resolve) => {
    const onData = (chunk: Buffer): void => {
      const frames = decoder.push(chunk);
      if (frames.length === 0) return;
      socket.off('data', onData);
      socket.pause();
      resolve(frames);
    };
    socket.on('data', onData);
  });
}

function recorder(): {
  posts: Array<{ msg: RootReply | RootEvent; socket?: net.Socket }>;
  post: (front: number, msg: RootReply | RootEvent, socket?: net.Socket) => void;
} {
  const posts: Array<{ msg: RootReply | RootEvent; socket?: net.Socket }> = [];
  return { posts, post: (_front, msg, socket) => posts.push({ msg, socket }) };
}

describe('RemoteGeneration: handing a master over to its front', () => {
  it('takes along the frames the paused socket read after the hello', async () => {
    const { server, client, close } = await pair('a.sock');
    try {
      const decoder = new FrameDecoder();
      const hello = firstFrames(server, decoder);
      client.write(encodeFrame({ payload: 'hello' }));
      const early = await hello;
      // a paused net.Socket still reads into its buffer: the master's next message lands there, not in the kernel
      client.write(encodeFrame({ payload: 'ready' }));
      for (let i = 0; i < 200 && server.readableLength === 0; i++) await new Promise((r) => setTimeout(r, 5));
      assert.ok(server.readableLength > 0, 'the ready frame is buffered in the stream');
      const host = recorder();
      const generation = new RemoteGeneration(4242, 1, 7, 0, host, 10_000);
      generation.attach(server, decoder, early.slice(1));
      assert.equal(host.posts.length, 1);
      const reply = host.posts[0]!.msg as RootReply;
      assert.equal(reply.t, 'rootReply');
      assert.equal(reply.id, 7);
      assert.equal(reply.pid, 4242);
      assert.deepEqual(
        (reply.frames ?? []).map((f) => Buffer.from(f).toString()),
        ['ready'],
      );
      assert.equal(host.posts[0]!.socket, server);
      generation.gone({ code: 0, signal: null });
    } finally {
      close();
    }
  });

  it('refuses the master when only part of a frame was read', async () => {
    const { server, client, close } = await pair('b.sock');
    try {
      const decoder = new FrameDecoder();
      const hello = firstFrames(server, decoder);
      const next = encodeFrame({ payload: 'ready' });
      client.write(Buffer.concat([encodeFrame({ payload: 'hello' }), next.subarray(0, 5)]));
      const early = await hello;
      const host = recorder();
      const generation = new RemoteGeneration(4243, 1, 8, 0, host, 10_000);
      generation.attach(server, decoder, early.slice(1));
      const reply = host.posts[0]!.msg as RootReply;
      assert.match(reply.error ?? '', /fork master 4243 sent a partial frame/);
      assert.equal(host.posts[0]!.socket, undefined);
      assert.ok(server.destroyed);
    } finally {
      close();
    }
  });
});

describe('RootHost: stopping', () => {
  it('close() waits for a root a pool released before, so no root outlives rrts', async () => {
    const host = new RootHost(pino({ level: 'silent' }), null);
    let rootPid = 0;
    try {
      const opts: MasterOptions = {
        command: { php: 'php', flags: [], script: FIXTURE, args: [] },
        preload: null,
        spares: 0,
        env: { ...process.env, RR_MODE: 'jobs' },
        cwd: ROOT,
        log: pino({ level: 'silent' }),
        readyTimeoutMs: 20_000,
      };
      const root = await host.localProvider().root(opts, null);
      rootPid = root.pid;
      const master = await root.startMaster();
      await master.stop();
      await root.stop(); // the last holder let go: the host stops the root, in the background
      await host.close();
      assert.equal(alive(rootPid), false, `the root ${rootPid} is gone (and reaped) once close() returned`);
    } finally {
      await host.close();
      if (rootPid && alive(rootPid)) process.kill(rootPid, 'SIGKILL');
    }
  });
});
