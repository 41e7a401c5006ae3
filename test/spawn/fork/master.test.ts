// Drives the real php/master.php from Node: msgpack control frames over fd 3, forked children that connect back to
// a unix socket and speak the worker protocol, reaping, the msgpack codec across the boundary, and shutdown on EOF.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Packr } from 'msgpackr';
import { encodeFrame, FrameDecoder, type Frame } from '../../../src/goridge/frame.js';
import { jobFrame, parseJobReply, parsePidReply, pidRequest } from '../../../src/goridge/messages.js';
import { procStat } from '../../../src/system/proc.js';
import { loadNative, socketFd } from '../../../src/native/index.js';
import { childrenOf, zombiesOf } from '../../support/processes.js';
import { sleep } from '../../support/sleep.js';

// The compiled test runs from dist/test/spawn/fork/: the repository root is four levels up.
const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const MASTER_SCRIPT = path.join(ROOT, 'php/master.php');
const FIXTURE_WORKER = 'test/fixtures/php/worker.php';
const CODEC_MSGPACK = 0x10;
const WAIT_MS = 5_000;

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

type Message = Record<string, unknown>;

/** Every process and temp dir the tests create, cleaned up at the end whatever happened. */
const masters = new Set<MasterProcess>();
const servers = new Set<{ close(): Promise<void> }>();
const tempDirs: string[] = [];

after(async () => {
  for (const m of masters) m.killAll();
  for (const s of servers) await s.close();
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-fork-test-'));
  tempDirs.push(dir);
  return dir;
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** What a connection received, in order: next() takes the oldest, or waits (bounded) for the next to arrive. */
class Inbox<T> {
  private readonly items: T[] = [];
  private waiter: ((item: T) => void) | null = null;

  push(item: T): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w(item);
    } else {
      this.items.push(item);
    }
  }

  next(what: string): Promise<T> {
    const queued = this.items.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return within(new Promise<T>((resolve) => (this.waiter = resolve)), WAIT_MS, what);
  }
}

/** Wait (bounded) until the master has exactly `count` live children that are not in `besides`: its parked spares. */
async function sparesOf(master: MasterProcess, count: number, besides: number[] = []): Promise<number[]> {
  const until = Date.now() + WAIT_MS;
  for (;;) {
    const spares = childrenOf(master.pid).filter((pid) => !besides.includes(pid));
    if (spares.length === count || Date.now() > until) return spares;
    await sleep(10);
  }
}

/** The socket inodes a process holds, by fd ("socket:[123]" links), skipping the fds listed. */
function socketInodes(pid: number, skip: number[] = []): Set<string> {
  const inodes = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    if (skip.includes(Number(fd))) continue;
    try {
      const link = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (link.startsWith('socket:')) inodes.add(link);
    } catch {
      /* closed meanwhile */
    }
  }
  return inodes;
}

/** Pids of the processes started with this NAME=value in their environment. */
function processesWithEnv(entry: string): number[] {
  const found: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (fs.readFileSync(`/proc/${name}/environ`, 'latin1').split('\0').includes(entry)) found.push(Number(name));
    } catch {
      /* gone, or not ours */
    }
  }
  return found;
}

/** The fixture's /env answer: four RR_ entries of $_SERVER, getenv() and $_ENV. */
type EnvReport = { server: Record<string, string | null>; env: Record<string, string>; envArray: Record<string, string> };

/** The environment of the test process without the fixture's boot switches. */
function baseEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FIXTURE_') && !k.startsWith('RR_')) env[k] = v;
  return { ...env, ...extra };
}

/** One php/master.php process and its control channel. */
class MasterProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly forked = new Set<number>();
  output = '';
  private readonly decoder = new FrameDecoder();
  private readonly inbox = new Inbox<Message>();
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null = null;

  constructor(args: string[], opts: { cwd?: string; env: NodeJS.ProcessEnv; php?: string[] }) {
    this.child = spawn('php', ['-d', 'opcache.enable_cli=1', '-d', 'opcache.file_update_protection=0', ...(opts.php ?? []), MASTER_SCRIPT, ...args], {
      cwd: opts.cwd ?? ROOT,
      env: opts.env,
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    });
    masters.add(this);
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      }),
    );
    const collect = (chunk: Buffer): void => {
      this.output += chunk.toString('utf8');
    };
    this.child.stdout!.on('data', collect);
    this.child.stderr!.on('data', collect);
    this.channel.on('error', () => undefined);
    this.channel.on('data', (chunk: Buffer) => {
      for (const frame of this.decoder.push(chunk)) this.deliver(frame);
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  get channel(): Duplex {
    return this.child.stdio[3] as Duplex;
  }

  /** The next control message. */
  next(what = 'a control message'): Promise<Message> {
    return this.inbox.next(`${what}; master output: ${this.output}`);
  }

  send(message: Message): void {
    this.channel.write(encodeFrame({ flags: CODEC_MSGPACK, payload: packr.pack(message) }));
  }

  /** The master answers in order, one answer a request. */
  async request(message: Message): Promise<Message> {
    this.send(message);
    return this.next(`the answer to ${String(message.op)}`);
  }

  async fork(id: number, env: Record<string, string>): Promise<number> {
    const reply = await this.request({ op: 'fork', id, env });
    assert.equal(reply.op, 'forked', `fork answer: ${JSON.stringify(reply)}`);
    assert.equal(reply.id, id);
    assert.equal(typeof reply.pid, 'number');
    const pid = reply.pid as number;
    this.forked.add(pid);
    return pid;
  }

  /** reap until done (the kernel may not have finished the child yet). */
  async reapWhenGone(pid: number): Promise<Message> {
    const until = Date.now() + WAIT_MS;
    for (;;) {
      const reply = await this.request({ op: 'reap', pid });
      if (reply.done === true || reply.error != null || Date.now() > until) return reply;
      await sleep(10);
    }
  }

  waitExit(ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return within(this.exited, ms, `the master ${this.pid} to exit; its output: ${this.output}`);
  }

  /** SIGKILL the master and every child it forked (or parked as a spare) that is still its child; for a root, its masters' children too. */
  killAll(): void {
    const grandchildren = childrenOf(this.pid).flatMap((pid) => childrenOf(pid).map((child) => ({ pid: child, parent: pid })));
    for (const { pid, parent } of grandchildren) {
      if (procStat(pid)?.ppid === parent) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    for (const pid of new Set([...this.forked, ...childrenOf(this.pid)])) {
      if (procStat(pid)?.ppid === this.pid) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    if (this.exitInfo === null) this.child.kill('SIGKILL');
  }

  private deliver(frame: Frame): void {
    assert.equal(frame.flags, CODEC_MSGPACK, 'master frames carry CODEC_MSGPACK');
    assert.deepEqual(frame.options, []);
    this.inbox.push(packr.unpack(frame.payload) as Message);
  }
}

/** A worker connected to the test's socket: the pid handshake is done on connect, then HTTP jobs. */
class WorkerConnection {
  private readonly decoder = new FrameDecoder();
  private readonly frames = new Inbox<Frame>();

  constructor(readonly socket: net.Socket) {
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      for (const f of this.decoder.push(chunk)) this.frames.push(f);
    });
  }

  nextFrame(): Promise<Frame> {
    return this.frames.next('a frame from the worker');
  }

  async handshake(): Promise<number> {
    this.socket.write(pidRequest(process.pid));
    return parsePidReply(await this.nextFrame());
  }

  /** GET <pathAndQuery>; returns the response body as text. */
  async get(pathAndQuery: string): Promise<string> {
    const url = new URL(pathAndQuery, 'http://localhost:8080');
    const context = {
      remoteAddr: '127.0.0.1',
      protocol: 'HTTP/1.1',
      method: 'GET',
      uri: url.href,
      headers: { Accept: ['*/*'] },
      cookies: {},
      rawQuery: url.search.slice(1),
      parsed: false,
      uploads: null,
      attributes: {},
    };
    this.socket.write(jobFrame(0x08, Buffer.from(JSON.stringify(context)), Buffer.alloc(0)));
    const reply = parseJobReply(await this.nextFrame());
    assert.equal(reply.kind, 'data', `job reply: ${JSON.stringify(reply)}`);
    return reply.kind === 'data' ? reply.body.toString('utf8') : '';
  }
}

/**
 * A unix socket the test listens on, filing each connection under the pid it names first: the rrts side of
 * RR_RELAY=unix://<path> (the pid handshake) or of a root's --control socket (a master's hello).
 */
class PidServer<C> {
  readonly address: string;
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly byPid = new Map<number, C>();
  private readonly waiters = new Map<number, (c: C) => void>();

  private constructor(
    readonly path: string,
    accept: (socket: net.Socket) => { conn: C; pid: Promise<number> },
  ) {
    this.address = `unix://${path}`;
    this.server = net.createServer((socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      const { conn, pid } = accept(socket);
      pid.then(
        (p) => {
          this.byPid.set(p, conn);
          this.waiters.get(p)?.(conn);
        },
        () => socket.destroy(),
      );
    });
    servers.add(this);
  }

  static async listen<C>(file: string, accept: (socket: net.Socket) => { conn: C; pid: Promise<number> }): Promise<PidServer<C>> {
    const server = new PidServer(file, accept);
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.server.listen(file, resolve);
    });
    return server;
  }

  /** The connection that named `pid`. */
  get(pid: number): Promise<C> {
    const known = this.byPid.get(pid);
    if (known) return Promise.resolve(known);
    return within(new Promise<C>((resolve) => this.waiters.set(pid, resolve)), WAIT_MS, `pid ${pid} on ${this.address}`);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** The rrts side of RR_RELAY=unix://<path>: accepts the forked workers and files them by handshake pid. */
type RelayServer = PidServer<WorkerConnection> & { worker(pid: number): Promise<WorkerConnection> };
const RelayServer = {
  async listen(dir: string, name: string): Promise<RelayServer> {
    const server = await PidServer.listen(path.join(dir, name), (socket) => {
      const conn = new WorkerConnection(socket);
      return { conn, pid: conn.handshake() };
    });
    return Object.assign(server, { worker: (pid: number) => server.get(pid) });
  },
};

describe('php/master.php with the fixture worker', () => {
  let dir: string;
  let relayA: RelayServer;
  let relayB: RelayServer;
  let master: MasterProcess;
  let first: number;
  let second: number;
  const utf8 = 'grüße ✓ 日本語 🐘';
  const long = 'é'.repeat(300); // 600 bytes: str16 on the wire

  before(async () => {
    dir = tempDir();
    relayA = await RelayServer.listen(dir, 'a.sock');
    relayB = await RelayServer.listen(dir, 'b.sock');
    master = new MasterProcess([`--script=${FIXTURE_WORKER}`], { env: baseEnv({ RR_RELAY: relayA.address, RR_MODE: 'master-mode' }) });
  });

  it('reports ready once, with its pid, PHP version, opcache and no preload', async () => {
    const ready = await master.next('ready');
    assert.deepEqual(ready, { op: 'ready', pid: master.pid, php: ready.php, opcache: true, preload: null, resources: 0 });
    assert.match(String(ready.php), /^8\.\d+\.\d+/);
  });

  it('forks two children of the master that answer the pid handshake with their own pid', async () => {
    first = await master.fork(1, { RR_RELAY: relayA.address, RR_MODE: 'http' });
    second = await master.fork(2, { RR_RELAY: relayB.address, RR_MODE: 'jobs', RRTS_TEST_UTF8: utf8, RRTS_TEST_LONG: long });
    assert.notEqual(first, second);
    for (const pid of [first, second]) assert.equal(procStat(pid)?.ppid, master.pid, `parent of ${pid}`);
    // Each relay files a connection under the pid its handshake answered: the child's own pid.
    const [a, b] = await Promise.all([relayA.worker(first), relayB.worker(second)]);
    assert.equal(await a.get('/pid'), String(first));
    assert.equal(await b.get('/pid'), String(second));
  });

  it('gives each child the env of its fork message, in $_SERVER and getenv()', async () => {
    const a = JSON.parse(await (await relayA.worker(first)).get('/env')) as { server: Record<string, string | null>; env: Record<string, string> };
    assert.equal(a.server.RR_MODE, 'http', 'the master had RR_MODE=master-mode: the child must set $_SERVER');
    assert.equal(a.server.RR_RELAY, relayA.address);
    assert.equal(a.env.RR_MODE, 'http');
    const b = JSON.parse(await (await relayB.worker(second)).get('/env')) as { server: Record<string, string | null>; env: Record<string, string> };
    assert.equal(b.server.RR_MODE, 'jobs');
    assert.equal(b.server.RR_RELAY, relayB.address, 'the second child connected to the relay of its fork message');
    assert.equal(b.env.RR_RELAY, relayB.address);
    assert.equal(b.env.RRTS_TEST_UTF8, utf8, 'UTF-8 survives msgpack -> putenv');
    assert.equal(b.env.RRTS_TEST_LONG, long);
  });

  it('gives a child no variable of an earlier fork env that its own env does not have', async () => {
    // the master applies each fork's env before forking: what the second fork set must be put back
    const third = await master.fork(3, { RR_RELAY: relayA.address, RR_MODE: 'http' });
    try {
      const got = JSON.parse(await (await relayA.worker(third)).get('/env')) as EnvReport;
      assert.equal(got.server.RR_MODE, 'http');
      assert.equal(got.env.RR_RELAY, relayA.address);
      for (const name of ['RRTS_TEST_UTF8', 'RRTS_TEST_LONG']) {
        assert.equal(got.env[name], undefined, `getenv('${name}') of the second fork`);
        assert.equal(got.envArray[name], undefined, `$_ENV['${name}'] of the second fork`);
      }
      const secondGot = JSON.parse(await (await relayB.worker(second)).get('/env')) as EnvReport;
      assert.equal(secondGot.envArray.RRTS_TEST_UTF8, utf8, 'the second child has it in $_ENV too');
    } finally {
      process.kill(third, 'SIGKILL'); // the tests below count two children
      assert.equal((await master.reapWhenGone(third)).done, true);
    }
  });

  it('does not leave its control channel in the children', async (t) => {
    if (execFileSync('php', ['-r', "echo extension_loaded('ffi') ? 'yes' : 'no';"]).toString() !== 'yes') {
      t.skip('without FFI the children keep an inert copy of descriptor 3');
      return;
    }
    const channel = socketInodes(master.pid, [1, 2]);
    assert.equal(channel.size, 1, `the master holds one control socket besides stdout/stderr: ${[...channel].join(', ')}`);
    for (const pid of [first, second]) {
      const held = socketInodes(pid);
      for (const inode of channel) assert.ok(!held.has(inode), `child ${pid} holds the control channel ${inode}`);
    }
  });

  it('answers ping with the count of unreaped children and its memory', async () => {
    const pong = await master.request({ op: 'ping', id: 3 });
    assert.equal(pong.op, 'pong');
    assert.equal(pong.id, 3);
    assert.equal(pong.children, 2);
    assert.ok(typeof pong.memory === 'number' && pong.memory > 0, `memory: ${String(pong.memory)}`);
  });

  it('carries ints of every width, floats, strings and nil across the msgpack boundary', async () => {
    const ids: unknown[] = [
      ...[0, 31, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), 1.5, -0.25],
      ...['', 'ünï', 'x'.repeat(40), 'é'.repeat(300), 'y'.repeat(70_000)], // fixstr, str8, str16, str32
      ...[null, true, false, [1, 'a', [null]], { nested: { map: [2] } }],
    ];
    for (const id of ids) {
      const pong = await master.request({ op: 'ping', id });
      assert.deepEqual(pong.id, id, `ping id ${JSON.stringify(id).slice(0, 40)}`);
    }
    // msgpackr writes undefined as fixext 1 type 0: the master reads nil. Binary comes back as str when it is UTF-8,
    // as bin otherwise.
    assert.equal((await master.request({ op: 'ping', id: undefined })).id, null);
    assert.equal((await master.request({ op: 'ping', id: Buffer.from('abc') })).id, 'abc');
    const binary = (await master.request({ op: 'ping', id: Buffer.from([0xff, 0x00, 0x01]) })).id as Uint8Array;
    assert.deepEqual(Buffer.from(binary), Buffer.from([0xff, 0x00, 0x01]));
    // msgpackr sends 2**40 (a JS number) as float64; the master echoes the float.
    assert.equal((await master.request({ op: 'ping', id: 2 ** 40 })).id, 2 ** 40);
    // A BigInt goes out as int64, PHP reads an int and answers uint64, which this Packr reads back as a BigInt.
    assert.equal((await master.request({ op: 'ping', id: 2n ** 40n })).id, 2n ** 40n);
    assert.equal((await master.request({ op: 'ping', id: -(2n ** 40n) })).id, -(2n ** 40n));
  });

  it('reaps a child killed with SIGKILL and leaves no zombie', async () => {
    process.kill(first, 'SIGKILL');
    const reaped = await master.reapWhenGone(first);
    assert.deepEqual(reaped, { op: 'reaped', pid: first, done: true, code: null, signal: 9, error: null });
    assert.equal(procStat(first), null, `/proc/${first} is gone after the reap`);
    assert.equal((await master.request({ op: 'ping', id: 4 })).children, 1);
  });

  it('says not done for a child that still runs', async () => {
    const reply = await master.request({ op: 'reap', pid: second });
    assert.equal(reply.done, false);
    assert.equal(reply.error, null);
    assert.equal(reply.code, null);
    assert.equal(reply.signal, null);
  });

  it('refuses to reap a pid it did not fork, and twice the same child', async () => {
    const stranger = await master.request({ op: 'reap', pid: process.pid });
    assert.equal(stranger.op, 'reaped');
    assert.equal(stranger.pid, process.pid);
    assert.equal(stranger.done, false);
    assert.match(String(stranger.error), /not my child/);
    const again = await master.request({ op: 'reap', pid: first });
    assert.equal(again.done, false);
    assert.match(String(again.error), /not my child/);
  });

  it('answers an unknown op with an error and a bad env with fork_failed', async () => {
    assert.deepEqual(await master.request({ op: 'frobnicate', id: 5 }), { op: 'error', id: 5, error: 'unknown op frobnicate' });
    const failed = await master.request({ op: 'fork', id: 6, env: { GOOD: 'x', BAD: 5 } });
    assert.equal(failed.op, 'fork_failed');
    assert.equal(failed.id, 6);
    assert.match(String(failed.error), /BAD/);
    const badName = await master.request({ op: 'fork', id: 7, env: { 'A=B': 'x' } });
    assert.equal(badName.op, 'fork_failed');
    assert.equal((await master.request({ op: 'ping', id: 8 })).children, 1, 'nothing was forked');
  });

  it('keeps its memory flat over many fork/reap cycles', async () => {
    const before = await master.request({ op: 'ping', id: 9 });
    for (let i = 0; i < 25; i++) {
      const pid = await master.fork(100 + i, { RR_RELAY: relayA.address, RR_MODE: 'http' });
      process.kill(pid, 'SIGKILL');
      const reaped = await master.reapWhenGone(pid);
      assert.equal(reaped.done, true);
      assert.equal(procStat(pid), null);
    }
    const afterCycles = await master.request({ op: 'ping', id: 10 });
    assert.equal(afterCycles.children, before.children);
    assert.equal(afterCycles.memory, before.memory);
  });

  it('kills its remaining children and exits 0 when the channel closes', async () => {
    assert.equal(procStat(second)?.ppid, master.pid);
    master.channel.destroy();
    const exit = await master.waitExit(2_000);
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.equal(procStat(second), null, `child ${second} is gone (killed and reaped by the master)`);
  });
});

for (const spares of [0, 1])
  describe(`php/master.php with a preload, --spares=${spares}`, () => {
    let dir: string;
    let relay: RelayServer;
    let master: MasterProcess;
    let pids: number[] = [];

    before(async () => {
      dir = tempDir();
      relay = await RelayServer.listen(dir, 'relay.sock');
      fs.writeFileSync(
        path.join(dir, 'preload.php'),
        `<?php
declare(strict_types=1);
function rrts_test_preloaded(): string { return 'from the preload'; }
$preloadRand = mt_rand();                       // consumes the random state every child inherits
$preloadSocket = stream_socket_server('tcp://127.0.0.1:0'); // a socket the ready message counts
pcntl_async_signals(true);                      // the child must undo both of these
pcntl_signal(SIGTERM, static function (): void {});
`,
      );
      fs.writeFileSync(
        path.join(dir, 'worker.php'),
        `<?php
declare(strict_types=1);
require ${JSON.stringify(path.join(ROOT, 'php/lib/rr.php'))};
$marker = 'a top-level variable';
function marker(): string { global $marker; return $marker; }
$http = Rrts\\Lite\\HttpWorker::create();
while ($request = $http->waitRequest()) {
    $http->respond(200, json_encode([
        'pid' => getmypid(),
        'rand' => mt_rand(),
        'preloaded' => function_exists('rrts_test_preloaded'),
        'marker' => marker(),
        'argv' => $argv,
        'argc' => $argc,
        'serverArgv' => $_SERVER['argv'],
        'serverArgc' => $_SERVER['argc'],
        'script' => [$_SERVER['SCRIPT_FILENAME'], $_SERVER['SCRIPT_NAME'], $_SERVER['PHP_SELF'], $_SERVER['PATH_TRANSLATED']],
        'file' => __FILE__,
        'asyncSignals' => pcntl_async_signals(),
        'sigterm' => pcntl_signal_get_handler(SIGTERM),
        'gc' => gc_enabled(),
        'fastExit' => in_array('rrts-fast-exit', stream_get_wrappers(), true),
    ]));
}
`,
      );
      master = new MasterProcess(['--script=worker.php', '--preload=preload.php', `--spares=${spares}`, '--', 'one', 'two words'], {
        cwd: dir,
        env: baseEnv({ RR_RELAY: relay.address, RR_MODE: 'http' }),
      });
    });

    it('reports the preload and the stream it left open', async () => {
      const ready = await master.next('ready');
      assert.equal(ready.op, 'ready');
      assert.equal(ready.preload, 'preload.php');
      assert.equal(ready.resources, 1);
      assert.equal(ready.opcache, true);
    });

    it('starts every child like `php worker.php one "two words"`, warm from the preload, with its own random state', async () => {
      pids = [await master.fork(1, { RR_RELAY: relay.address }), await master.fork(2, { RR_RELAY: relay.address })];
      const answers = [];
      for (const pid of pids) answers.push(JSON.parse(await (await relay.worker(pid)).get('/')) as Record<string, unknown>);
      for (const [i, a] of answers.entries()) {
        assert.equal(a.pid, pids[i]);
        assert.equal(a.preloaded, true);
        assert.equal(a.marker, 'a top-level variable', 'the script ran at the top level: its variables are globals');
        assert.deepEqual(a.argv, ['worker.php', 'one', 'two words']);
        assert.equal(a.argc, 3);
        assert.deepEqual(a.serverArgv, ['worker.php', 'one', 'two words']);
        assert.equal(a.serverArgc, 3);
        assert.deepEqual(a.script, ['worker.php', 'worker.php', 'worker.php', 'worker.php']);
        assert.equal(a.file, fs.realpathSync(path.join(dir, 'worker.php')));
        assert.equal(a.asyncSignals, false);
        assert.equal(a.sigterm, 0, 'SIGTERM is back to SIG_DFL');
        assert.equal(a.gc, true, 'the cycle collector is on again (the master runs without it)');
        assert.equal(a.fastExit, true, 'FastExit opened its stream before the script (php/lib/Fork/FastExit.php)');
      }
      assert.notEqual(answers[0]!.rand, answers[1]!.rand, 'the children were reseeded after the fork');
    });

    it('lets SIGTERM end a child again, though the preload had caught it', async () => {
      process.kill(pids[0]!, 'SIGTERM');
      const reaped = await master.reapWhenGone(pids[0]!);
      assert.equal(reaped.done, true);
      assert.equal(reaped.signal, 15);
    });

    it('exits 0 on EOF, leaving no child behind', async () => {
      const parked = await sparesOf(master, spares, pids);
      assert.equal(parked.length, spares, `parked spares: ${parked.join(', ')}`);
      master.channel.destroy();
      assert.deepEqual(await master.waitExit(2_000), { code: 0, signal: null });
      for (const pid of [...pids, ...parked]) assert.equal(procStat(pid), null, `child ${pid} is gone`);
    });
  });

describe('php/master.php reading a burst of requests', () => {
  let dir: string;
  let relay: RelayServer;

  before(async () => {
    dir = tempDir();
    relay = await RelayServer.listen(dir, 'burst.sock');
  });

  const frame = (message: Message): Buffer => encodeFrame({ flags: CODEC_MSGPACK, payload: packr.pack(message) });

  it('handles requests written together in order and answers each once, after the forks of the burst', async () => {
    const master = new MasterProcess([`--script=${FIXTURE_WORKER}`], { env: baseEnv({ RR_RELAY: relay.address, RR_MODE: 'http' }) });
    assert.equal((await master.next('ready')).op, 'ready');
    const env = { RR_RELAY: relay.address, RR_MODE: 'http' };
    const burst = [1, 2, 3, 4, 5].map((id) => ({ op: 'fork', id, env }));
    master.channel.write(Buffer.concat([...burst.slice(0, 2), { op: 'ping', id: 'p' }, ...burst.slice(2)].map(frame)));
    const answers: Message[] = [];
    for (let i = 0; i < 6; i++) answers.push(await master.next(`answer ${i + 1} of the burst`));
    assert.deepEqual(
      answers.map((a) => a.id),
      [1, 2, 'p', 3, 4, 5],
      'answered in the order of the requests',
    );
    assert.equal(answers[2]!.children, 2, 'the ping came after two forks: handled in order');
    const pids = answers.filter((a) => a.op === 'forked').map((a) => a.pid as number);
    for (const pid of pids) master.forked.add(pid);
    assert.equal(new Set(pids).size, 5);
    for (const pid of pids) {
      assert.equal(procStat(pid)?.ppid, master.pid);
      assert.equal(await (await relay.worker(pid)).get('/pid'), String(pid), 'each child is a worker');
    }
    // nothing more: no answer twice (a child must not send what the master had queued when it forked)
    assert.equal((await master.request({ op: 'ping', id: 'q' })).id, 'q');
    master.channel.destroy();
    assert.deepEqual(await master.waitExit(2_000), { code: 0, signal: null });
    for (const pid of pids) assert.equal(procStat(pid), null, `child ${pid} is gone`);
  });

  it('forks the requests read with an EOF, then kills them and exits 0', async () => {
    // the children carry this in their environment (as started: what /proc/<pid>/environ shows)
    const mark = `RRTS_BURST_TEST=${process.pid}-${Date.now()}`;
    const master = new MasterProcess([`--script=${FIXTURE_WORKER}`], {
      env: { ...baseEnv({ RR_RELAY: relay.address, RR_MODE: 'http' }), RRTS_BURST_TEST: mark.split('=')[1] },
    });
    assert.equal((await master.next('ready')).op, 'ready');
    const env = { RR_RELAY: relay.address, RR_MODE: 'http' };
    master.channel.end(Buffer.concat([1, 2, 3].map((id) => frame({ op: 'fork', id, env }))));
    assert.deepEqual(await master.waitExit(2_000), { code: 0, signal: null });
    assert.deepEqual(processesWithEnv(mark), [], 'no child of the burst is left');
  });
});

describe('a parked spare outlives default_socket_timeout', () => {
  let dir: string;
  let relay: RelayServer;
  let master: MasterProcess;

  before(async () => {
    dir = tempDir();
    relay = await RelayServer.listen(dir, 'a.sock');
    // PHP's read timeout on the spare's socket is default_socket_timeout (60 s): 1 s here, so a timeout shows fast
    master = new MasterProcess([`--script=${FIXTURE_WORKER}`, '--spares=1'], {
      env: baseEnv({ RR_RELAY: relay.address }),
      php: ['-d', 'default_socket_timeout=1'],
    });
    assert.equal((await master.next('ready')).op, 'ready');
  });

  it('is still parked (not a zombie) after three timeouts, and becomes the next worker', async () => {
    const [spare] = await sparesOf(master, 1);
    assert.ok(spare, 'a parked spare');
    await sleep(3_500);
    assert.match(procStat(spare)?.state ?? 'gone', /^[SR]$/, `the spare ${spare} is still alive and parked`);
    const pid = await master.fork(2, { RR_RELAY: relay.address });
    assert.equal(pid, spare, 'the fork was answered by the parked spare');
    assert.match(await (await relay.worker(pid)).get('/pid'), new RegExp(`^${pid}$`));
  });
});

describe('php/master.php with --spares=2', () => {
  let dir: string;
  let relayA: RelayServer;
  let relayB: RelayServer;
  let master: MasterProcess;
  let parked: number[] = [];
  const workers: number[] = [];

  before(async () => {
    dir = tempDir();
    relayA = await RelayServer.listen(dir, 'a.sock');
    relayB = await RelayServer.listen(dir, 'b.sock');
    master = new MasterProcess([`--script=${FIXTURE_WORKER}`, '--spares=2'], { env: baseEnv({ RR_RELAY: relayA.address, RR_MODE: 'master-mode' }) });
    assert.equal((await master.next('ready')).op, 'ready');
  });

  it('parks two children that do not connect, and counts them apart from the forked ones', async () => {
    parked = await sparesOf(master, 2);
    assert.equal(parked.length, 2, `children of the master: ${childrenOf(master.pid).join(', ')}`);
    const pong = await master.request({ op: 'ping', id: 1 });
    assert.equal(pong.children, 0);
    assert.equal(pong.spares, 2);
  });

  it('answers a fork with the oldest spare, which runs the script with the env of that fork', async () => {
    const pid = await master.fork(2, { RR_RELAY: relayA.address, RR_MODE: 'http' });
    assert.equal(pid, parked[0], 'the first parked child became the worker');
    workers.push(pid);
    const env = JSON.parse(await (await relayA.worker(pid)).get('/env')) as { server: Record<string, string | null>; env: Record<string, string> };
    assert.equal(env.server.RR_MODE, 'http', 'the master had RR_MODE=master-mode: the spare set $_SERVER');
    assert.equal(env.env.RR_MODE, 'http');
    assert.equal(env.server.RR_RELAY, relayA.address);
  });

  it('refills its spares, which apply the env of that fork before parking and any other env when woken', async () => {
    const refilled = await sparesOf(master, 2, workers);
    assert.equal(refilled.length, 2);
    assert.ok(refilled.includes(parked[1]!), 'the second spare is still parked');
    // parked[1] was forked before any fork request; the new one after the first: it applied RR_MODE=http already.
    // Both must run with the env of the request that wakes them.
    for (const [i, pid] of [parked[1]!, refilled.find((p) => p !== parked[1])!].entries()) {
      const got = await master.fork(3 + i, { RR_RELAY: relayB.address, RR_MODE: `jobs-${i}`, RRTS_TEST_EXTRA: 'x' });
      assert.equal(got, pid, `fork ${i} took the oldest spare`);
      workers.push(got);
      const env = JSON.parse(await (await relayB.worker(got)).get('/env')) as { server: Record<string, string | null>; env: Record<string, string> };
      assert.equal(env.server.RR_MODE, `jobs-${i}`);
      assert.equal(env.env.RR_MODE, `jobs-${i}`);
      assert.equal(env.server.RR_RELAY, relayB.address, 'connected to the relay of its own fork message');
      assert.equal(env.env.RRTS_TEST_EXTRA, 'x');
    }
    assert.notEqual(await (await relayB.worker(workers[1]!)).get('/rand'), await (await relayB.worker(workers[2]!)).get('/rand'));
  });

  it('wakes a spare with the env it applied when parking (the usual case) with nothing to decode', async () => {
    // both spares parked after the last fork above: they expect its env, and this fork sends that env again
    const expected = { RR_RELAY: relayB.address, RR_MODE: 'jobs-1', RRTS_TEST_EXTRA: 'x' };
    const spares = await sparesOf(master, 2, workers);
    assert.equal(spares.length, 2);
    const got = await master.fork(5, expected);
    assert.ok(spares.includes(got), `fork 5 took a spare (${got} of ${spares.join(', ')})`);
    workers.push(got);
    const env = JSON.parse(await (await relayB.worker(got)).get('/env')) as { server: Record<string, string | null>; env: Record<string, string> };
    assert.equal(env.server.RR_MODE, 'jobs-1');
    assert.equal(env.env.RR_MODE, 'jobs-1');
    assert.equal(env.server.RR_RELAY, relayB.address);
    assert.equal(env.env.RRTS_TEST_EXTRA, 'x');
  });

  it('refills its spares 20 ms after the last fork, even while other messages keep coming', async () => {
    const spares = await sparesOf(master, 2, workers);
    assert.equal(spares.length, 2);
    workers.push(await master.fork(6, { RR_RELAY: relayA.address, RR_MODE: 'http' }));
    // a ping every 5 ms: the channel is never quiet for 20 ms, as with workers exiting (reaps) under load
    const until = Date.now() + 2_000;
    let pong: Message = {};
    let pings = 0;
    while (Date.now() < until) {
      pong = await master.request({ op: 'ping', id: 100 + pings++ });
      if (pong.spares === 2) break;
      await sleep(5);
    }
    assert.equal(pong.spares, 2, `refilled while pinged (${pings} pings)`);
  });

  it('forks on request in a burst, and skips a spare that was killed while parked, leaving no zombie', async () => {
    // Right after the forks above the channel was never quiet for long: there may be no spare yet. Wait for them.
    const spares = await sparesOf(master, 2, workers);
    assert.equal(spares.length, 2);
    process.kill(spares[0]!, 'SIGKILL');
    await sleep(50);
    const [a, b, c] = [
      await master.fork(10, { RR_RELAY: relayA.address }),
      await master.fork(11, { RR_RELAY: relayA.address }),
      await master.fork(12, { RR_RELAY: relayA.address }),
    ];
    assert.equal(a, spares[1], 'the dead spare was skipped for the live one');
    assert.ok(![spares[0], spares[1]].includes(b) && ![spares[0], spares[1]].includes(c), 'then forked on request');
    // the spare parked with RR_MODE=http (fork 6) and the master applied it too: this env has no RR_MODE, so both
    // put the master's own back
    for (const pid of [a, b]) {
      const got = JSON.parse(await (await relayA.worker(pid)).get('/env')) as EnvReport;
      assert.equal(got.server.RR_MODE, 'master-mode', `$_SERVER['RR_MODE'] of ${pid === a ? 'the spare' : 'a direct fork'}`);
      assert.equal(got.env.RR_MODE, 'master-mode', `getenv('RR_MODE') of ${pid === a ? 'the spare' : 'a direct fork'}`);
    }
    for (const pid of [a, b, c]) {
      workers.push(pid);
      assert.equal(await (await relayA.worker(pid)).get('/pid'), String(pid));
    }
    assert.equal(procStat(spares[0]!), null, 'the killed spare was reaped by the master');
    assert.deepEqual(zombiesOf(master.pid), []);
    assert.equal((await master.request({ op: 'ping', id: 13 })).children, workers.length);
  });

  it('a spares request sets how many it keeps: more are parked, the newest go at once when fewer, a bad count is an error', async () => {
    assert.deepEqual(await master.request({ op: 'spares', id: 20, count: 3 }), { op: 'spares', id: 20, count: 3 });
    assert.equal((await sparesOf(master, 3, workers)).length, 3);
    assert.deepEqual(await master.request({ op: 'spares', id: 21, count: 1 }), { op: 'spares', id: 21, count: 1 });
    assert.equal(childrenOf(master.pid).filter((pid) => !workers.includes(pid)).length, 1, 'two spares gone, and reaped, by the answer');
    assert.deepEqual(zombiesOf(master.pid), []);
    const bad = await master.request({ op: 'spares', id: 22, count: 17 });
    assert.equal(bad.op, 'error');
    assert.match(String(bad.error), /spares: count must be an integer from 0 to 16, got 17/);
    assert.equal((await master.request({ op: 'ping', id: 23 })).spares, 1);
  });

  it('answers a request that comes while it parks spares before it parks the rest', async () => {
    // Stopped (SIGSTOP) once its first new spare is there, the master has parked k; a ping sent then is answered
    // after at most the fork under way: with k < 15, a pong counting 16 means it parked them all first.
    let checked = false;
    for (let attempt = 0; attempt < 20 && !checked; attempt++) {
      const id = 30 + attempt * 3;
      assert.equal((await master.request({ op: 'spares', id, count: 0 })).count, 0);
      const before = new Set(childrenOf(master.pid));
      assert.equal((await master.request({ op: 'spares', id: id + 1, count: 16 })).count, 16);
      const fresh = (): number[] => childrenOf(master.pid).filter((pid) => !before.has(pid));
      for (let i = 0; i < 20_000 && fresh().length === 0; i++) await new Promise((resolve) => setImmediate(resolve));
      process.kill(master.pid, 'SIGSTOP');
      let pong: Message;
      let parked: number;
      try {
        parked = fresh().length;
        const answer = master.request({ op: 'ping', id: id + 2 });
        await sleep(20); // the ping is in the master's socket before it runs again
        process.kill(master.pid, 'SIGCONT');
        pong = await answer;
      } finally {
        process.kill(master.pid, 'SIGCONT');
      }
      if (parked >= 15) continue; // it had parked (nearly) all before it was stopped: nothing to tell, again
      checked = true;
      assert.ok((pong.spares as number) <= parked + 1, `the ping was answered with ${String(pong.spares)} spares parked, ${parked} when it came`);
    }
    assert.ok(checked, 'the master was never stopped while parking');
    assert.equal((await master.request({ op: 'spares', id: 99, count: 2 })).count, 2);
  });

  it('kills its workers and its spares and exits 0 when the channel closes', async () => {
    const spares = await sparesOf(master, 2, workers);
    assert.equal(spares.length, 2);
    master.channel.destroy();
    assert.deepEqual(await master.waitExit(2_000), { code: 0, signal: null });
    for (const pid of [...workers, ...spares]) assert.equal(procStat(pid), null, `child ${pid} is gone`);
  });
});

/** rrts' private control socket: a root's generation masters connect here and say hello with their pid. */
type ControlServer = PidServer<ControlConnection> & { connection(pid: number): Promise<ControlConnection> };
const ControlServer = {
  async listen(dir: string): Promise<ControlServer> {
    const server = await PidServer.listen(path.join(dir, 'control.sock'), (socket) => {
      const conn = new ControlConnection(socket);
      const pid = conn.next('hello').then((hello) => {
        assert.equal(hello.op, 'hello');
        return hello.pid as number;
      });
      return { conn, pid };
    });
    return Object.assign(server, { connection: (pid: number) => server.get(pid) });
  },
};

/** A generation master's control connection: the same frames as fd 3. */
class ControlConnection {
  private readonly decoder = new FrameDecoder();
  private readonly inbox = new Inbox<Message>();

  constructor(readonly socket: net.Socket) {
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      for (const frame of this.decoder.push(chunk)) this.inbox.push(packr.unpack(frame.payload) as Message);
    });
  }

  next(what = 'a control message'): Promise<Message> {
    return this.inbox.next(what);
  }

  async request(message: Message): Promise<Message> {
    this.socket.write(encodeFrame({ flags: CODEC_MSGPACK, payload: packr.pack(message) }));
    return this.next(`the answer to ${String(message.op)}`);
  }
}

describe('php/master.php --root', () => {
  let dir: string;
  let relay: RelayServer;
  let control: ControlServer;
  /** --output: every forked child connects here (its fds 1 and 2), named by its SO_PEERCRED pid */
  let output: PidServer<net.Socket>;
  let root: MasterProcess;
  let masterA: number;
  let connA: ControlConnection;
  let worker: number;
  const boots = (): string[] => fs.readFileSync(path.join(dir, 'boots.log'), 'utf8').trim().split('\n');
  const writeLib = (version: number, past: boolean): void => {
    const file = path.join(dir, 'lib.php');
    fs.writeFileSync(file, `<?php\nfunction lib_version(): string { return 'lib${version}'; }\n`);
    // opcache compares whole-second mtimes: the first version is dated back so the change is seen
    if (past) fs.utimesSync(file, new Date(Date.now() - 120_000), new Date(Date.now() - 120_000));
  };

  before(async () => {
    dir = tempDir();
    relay = await RelayServer.listen(dir, 'workers.sock');
    control = await ControlServer.listen(dir);
    output = await PidServer.listen(path.join(dir, 'output.sock'), (socket) => {
      socket.resume();
      return { conn: socket, pid: Promise.resolve(loadNative()!.peerCred(socketFd(socket)!).pid) };
    });
    writeLib(1, true);
    fs.writeFileSync(
      path.join(dir, 'preload.php'),
      "<?php\nrequire __DIR__ . '/lib.php';\nfile_put_contents(__DIR__ . '/boots.log', getmypid() . ' ' . lib_version() . \"\\n\", FILE_APPEND);\n",
    );
    root = new MasterProcess(
      [
        `--script=${FIXTURE_WORKER}`,
        `--preload=${path.join(dir, 'preload.php')}`,
        '--root',
        `--control=${control.path}`,
        `--output=${path.join(dir, 'output.sock')}`,
      ],
      {
        env: baseEnv({ RR_RELAY: relay.address, RR_MODE: 'http' }),
        php: ['-d', 'opcache.validate_timestamps=0'], // production opcache: a new generation must still see changed files
      },
    );
  });

  it('reports ready as a root once a warm-up child has required the preload and died', async () => {
    const ready = await root.next('ready');
    assert.deepEqual(ready, { op: 'ready', pid: root.pid, php: ready.php, opcache: true, preload: null, resources: 0, root: true, warm: true });
    const [warmUp] = boots();
    assert.equal(boots().length, 1);
    const pid = Number(warmUp!.split(' ')[0]);
    assert.notEqual(pid, root.pid);
    assert.equal(procStat(pid), null, 'the warm-up child is gone and reaped');
    assert.match(fs.readFileSync(`/proc/${root.pid}/cmdline`, 'utf8'), /^rrts: fork root: /);
  });

  it('forks a generation master that says hello on the control socket, preloads and forks workers', async () => {
    const reply = await root.request({ op: 'generation', id: 7 });
    assert.equal(reply.op, 'generation');
    assert.equal(reply.id, 7);
    masterA = reply.pid as number;
    assert.equal(procStat(masterA)?.ppid, root.pid);
    connA = await control.connection(masterA);
    const ready = await connA.next('the master ready');
    assert.equal(ready.op, 'ready');
    assert.equal(ready.pid, masterA);
    assert.equal(ready.output, true, 'its children will connect their own output');
    assert.equal(boots().at(-1), `${masterA} lib1`);
    assert.doesNotMatch(
      fs.readFileSync(`/proc/${masterA}/cmdline`, 'utf8'),
      /--root|--control|--output/,
      'a master shows the command line without the root arguments',
    );
    const forked = await connA.request({ op: 'fork', id: 1, env: { RR_RELAY: relay.address, RR_MODE: 'http' } });
    assert.equal(forked.op, 'forked');
    worker = forked.pid as number;
    assert.equal(procStat(worker)?.ppid, masterA);
    await relay.worker(worker);
    await output.get(worker); // it connected its output
    const [stdout, stderr] = [1, 2].map((fd) => fs.readlinkSync(`/proc/${worker}/fd/${fd}`));
    assert.match(stderr!, /^socket:/);
    assert.equal(stdout, stderr, 'stdout and stderr are the same connection');
    assert.notEqual(stderr, fs.readlinkSync(`/proc/${masterA}/fd/2`), "not the master's stderr");
  });

  it('gives a later generation the changed code, though opcache.validate_timestamps is 0', async () => {
    writeLib(2, false);
    const reply = await root.request({ op: 'generation', id: 8 });
    const masterB = reply.pid as number;
    const connB = await control.connection(masterB);
    assert.equal((await connB.next('the second master ready')).op, 'ready');
    assert.equal(boots().at(-1), `${masterB} lib2`);

    process.kill(masterB, 'SIGKILL');
    const exited = await root.next('the exit report');
    assert.deepEqual(exited, { op: 'exited', pid: masterB, code: null, signal: 9 });
    assert.equal(procStat(masterB), null, 'reaped by the root');
  });

  it('on EOF waits for its masters to quit, then exits 0, leaving no process behind', async () => {
    connA.socket.destroy(); // the master sees EOF: it kills its worker and exits
    root.channel.destroy();
    assert.deepEqual(await root.waitExit(WAIT_MS), { code: 0, signal: null });
    for (const pid of [masterA, worker]) assert.equal(procStat(pid), null, `${pid} is gone`);
  });
});

describe('php/master.php --root with a restricted opcache API', () => {
  it('reports warm false and refuses a generation, naming why', async () => {
    const dir = tempDir();
    const root = new MasterProcess([`--script=${FIXTURE_WORKER}`, '--root', `--control=${path.join(dir, 'control.sock')}`], {
      env: baseEnv({}),
      php: ['-d', 'opcache.restrict_api=/nonexistent/'],
    });
    const ready = await root.next('ready');
    assert.equal(ready.warm, false);
    const reply = await root.request({ op: 'generation', id: 1 });
    assert.equal(reply.op, 'generation_failed');
    assert.match(String(reply.error), /restrict_api/);
    root.channel.destroy();
    assert.deepEqual(await root.waitExit(WAIT_MS), { code: 0, signal: null });
  });
});

describe('php/master.php start-up and protocol errors', () => {
  const env = baseEnv({ RR_RELAY: 'unix:///nonexistent.sock' });

  it('exits 1 on a --spares that is not an integer from 0 to 16', async () => {
    for (const bad of ['x', '-1', '17']) {
      const master = new MasterProcess([`--script=${FIXTURE_WORKER}`, `--spares=${bad}`], { env: baseEnv({}) });
      assert.deepEqual(await master.waitExit(WAIT_MS), { code: 1, signal: null });
      assert.match(master.output, new RegExp(`--spares must be an integer from 0 to 16, got '${bad}'`));
    }
  });

  it('exits 1 on --root without --control', async () => {
    const master = new MasterProcess([`--script=${FIXTURE_WORKER}`, '--root'], { env });
    assert.deepEqual(await master.waitExit(WAIT_MS), { code: 1, signal: null });
    assert.match(master.output, /--root needs --control=<socket>/);
  });

  it('exits 1 without --script', async () => {
    const master = new MasterProcess([], { env });
    assert.deepEqual(await master.waitExit(WAIT_MS), { code: 1, signal: null });
    assert.match(master.output, /--script is required/);
  });

  it('exits 1 naming a missing script, before any control message', async () => {
    const master = new MasterProcess(['--script=missing-worker.php'], { env });
    let messages = 0;
    master.channel.on('data', () => messages++);
    assert.deepEqual(await master.waitExit(WAIT_MS), { code: 1, signal: null });
    assert.match(master.output, /worker script not found.*missing-worker\.php/);
    assert.equal(messages, 0);
  });

  it('exits 1 naming a missing preload, before ready', async () => {
    const missing = path.join(tempDir(), 'missing-preload.php');
    const master = new MasterProcess([`--script=${FIXTURE_WORKER}`, `--preload=${missing}`], { env });
    let messages = 0;
    master.channel.on('data', () => messages++);
    assert.deepEqual(await master.waitExit(WAIT_MS), { code: 1, signal: null });
    assert.ok(master.output.includes(`preload file not found or not readable: ${missing}`), master.output);
    assert.equal(messages, 0);
  });

  it('exits 2 with a line on stderr on a malformed frame', async () => {
    const master = new MasterProcess([`--script=${FIXTURE_WORKER}`], { env });
    assert.equal((await master.next('ready')).op, 'ready');
    master.channel.write(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    assert.deepEqual(await master.waitExit(WAIT_MS), { code: 2, signal: null });
    assert.match(master.output, /malformed control frame/);
  });

  it('exits 2 on a frame whose payload is not a msgpack map', async () => {
    const master = new MasterProcess([`--script=${FIXTURE_WORKER}`], { env });
    assert.equal((await master.next('ready')).op, 'ready');
    master.channel.write(encodeFrame({ flags: CODEC_MSGPACK, payload: packr.pack(['op', 'ping']) }));
    assert.deepEqual(await master.waitExit(WAIT_MS), { code: 2, signal: null });
    assert.match(master.output, /not a msgpack map/);
  });
});

describe("php/master.php's PCRE warm-up", () => {
  it('compiles the relay pattern that php/lib/rr.php (like the SDK) matches RR_RELAY against at start', () => {
    const master = fs.readFileSync(path.join(ROOT, 'php/lib/Fork/Prewarm.php'), 'utf8');
    const pattern = /SDK_RELAY_PATTERN = '([^']+)';/.exec(master)?.[1];
    assert.ok(pattern, 'Prewarm::SDK_RELAY_PATTERN is defined');
    assert.match(master, /preg_match\(self::SDK_RELAY_PATTERN, /, 'Prewarm::master() matches it');
    // the PCRE cache is keyed by the pattern string: another spelling would be compiled again in every worker
    const lib = fs.readFileSync(path.join(ROOT, 'php/lib/rr.php'), 'utf8');
    assert.ok(lib.includes(`preg_match('${pattern}', $address`), 'php/lib/rr.php parses RR_RELAY with the same pattern');
  });
});

describe('a forked worker ends without PHP module shutdown (FastExit)', () => {
  // A real php process requires php/lib/fork-master.php (php/lib/Fork/) and forks children that end as a worker does
  // (after FastExit::open() and, once the script returned, FastExit::arm()) or as PHP does by itself; the parent reports
  // each child's exit status and page faults (pcntl_waitpid's rusage).
  let result: Record<string, { code: number; minflt: number }>;
  let out: string;
  let stdout: string;

  before(() => {
    const dir = tempDir();
    out = path.join(dir, 'out.txt');
    const script = path.join(dir, 'ends.php');
    fs.writeFileSync(
      script,
      `<?php
declare(strict_types=1);
require ${JSON.stringify(path.join(ROOT, 'php/lib/fork-master.php'))};
use Rrts\\Master\\FastExit;
final class Marker { public function __construct(private string $what) {} public function __destruct() { file_put_contents(${JSON.stringify(out)}, "destructor {$this->what}\\n", FILE_APPEND); if ($this->what === 'fatal-in-destructor') throw new RuntimeException('thrown at shutdown'); } }
function child(string $how): array {
    $pid = pcntl_fork();
    if ($pid === 0) {
        if ($how !== 'php') FastExit::open();
        register_shutdown_function(static function () use ($how): void {
            file_put_contents(${JSON.stringify(out)}, "shutdown function $how\\n", FILE_APPEND);
            if ($how === 'exit-in-shutdown') exit(4);
        });
        $GLOBALS['marker'] = new Marker($how);
        ob_start();
        echo "buffered $how\\n";
        if ($how === 'exit-3') exit(3); // the script exits itself: PHP's own exit, with its status
        if ($how !== 'php') FastExit::arm(); // what php/master.php does when the script returns
        exit(0);
    }
    pcntl_waitpid($pid, $status, 0, $usage);
    return ['code' => pcntl_wexitstatus($status), 'minflt' => $usage['ru_minflt']];
}
$result = [];
foreach (['php', 'fast', 'exit-3', 'exit-in-shutdown', 'fatal-in-destructor'] as $how) $result[$how] = child($how);
file_put_contents(${JSON.stringify(out)} . '.json', json_encode($result));
`,
    );
    const run = spawnSync('php', ['-d', 'opcache.enable_cli=1', script], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(run.status, 0, run.stderr);
    result = JSON.parse(fs.readFileSync(`${out}.json`, 'utf8')) as typeof result;
    stdout = run.stdout;
  });

  it('runs the shutdown functions, the destructors and the output buffers, and exits 0', () => {
    const lines = fs.readFileSync(out, 'utf8');
    for (const how of ['php', 'fast']) {
      assert.equal(result[how]!.code, 0, how);
      assert.match(lines, new RegExp(`shutdown function ${how}\\n`));
      assert.match(lines, new RegExp(`destructor ${how}\\n`));
      assert.match(stdout, new RegExp(`buffered ${how}\\n`));
    }
  });

  it('skips the module shutdown: far fewer copy-on-write page faults than the same exit by PHP', () => {
    // measured here: ~80 against ~900 with no app (1,500 with the framework)
    assert.ok(result.fast!.minflt < result.php!.minflt * 0.5, JSON.stringify(result));
  });

  it('keeps the status of an exit() in the script or in a shutdown function, and of a fatal error at shutdown', () => {
    assert.equal(result['exit-3']!.code, 3);
    assert.equal(result['exit-in-shutdown']!.code, 4);
    assert.equal(result['fatal-in-destructor']!.code, 255, 'an exception thrown by a destructor after the script returned');
    assert.match(fs.readFileSync(out, 'utf8'), /destructor exit-3\n/);
  });
});
