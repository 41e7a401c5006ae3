// The relay hand-over of fork workers with real php (php/lib/Fork/RelayPipes.php, then the fixture worker on rrts's
// PHP relay): a listener that offers pipes sends them with the pid request and files the worker where its SDK
// answers; a peer that fails acceptPid gets none; a server that closes, sends no fds, or never offers, leaves
// RR_RELAY as it was, and the worker works on the socket.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { jobFrame, parseJobReply, pidRequest } from '../../src/goridge/messages.js';
import { addonFunction, socketFd } from '../../src/native/index.js';
import { openWorkerPipes } from '../../src/spawn/exec-pipes.js';
import { SocketRelayListener, type AcceptedWorker } from '../../src/relay/listener.js';
import { Writable } from 'node:stream';
import { FIXTURE, ROOT } from '../support/paths.js';
import { killQuietly } from '../support/processes.js';

const RELAY_PIPES = path.join(ROOT, 'php', 'lib', 'Fork', 'RelayPipes.php');
const WAIT_MS = 15_000;

// What a forked child does before its script (Child::becomeWorker), then either the fixture worker or a report of
// RR_RELAY as the script would find it.
const CHILD = `
require getenv('RELAY_PIPES');
$_SERVER['RR_RELAY'] = $_ENV['RR_RELAY'] = getenv('RR_RELAY');
\\Rrts\\Master\\RelayPipes::takeOver();
if (getenv('THEN') === 'worker') {
    require getenv('FIXTURE');
    exit(0);
}
echo json_encode(['server' => $_SERVER['RR_RELAY'], 'env' => $_ENV['RR_RELAY'], 'getenv' => getenv('RR_RELAY')]), "\\n";
`;

const children: ChildProcess[] = [];
let dir: string;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-handover-'));
});
after(() => {
  for (const child of children) if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) killQuietly(child.pid);
  fs.rmSync(dir, { recursive: true, force: true });
});

function startChild(relay: string, then: 'worker' | 'report', env: NodeJS.ProcessEnv = {}): { child: ChildProcess; output: Promise<string> } {
  const child = spawn('php', ['-r', CHILD], {
    stdio: ['ignore', 'pipe', 'ignore'], // the worker's fatal error when a test closes its relay is expected
    env: { ...process.env, RR_RELAY: relay, RELAY_PIPES, FIXTURE, THEN: then, ...env },
  });
  children.push(child);
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const output = new Promise<string>((resolve) => child.once('exit', () => resolve(out)));
  return { child, output };
}

function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), WAIT_MS)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** GET `uri` from a filed worker over its relay; the answer's body. */
function get(worker: AcceptedWorker, uri: string): Promise<string> {
  const context = {
    remoteAddr: '127.0.0.1',
    protocol: 'HTTP/1.1',
    method: 'GET',
    uri: `http://localhost${uri}`,
    headers: {},
    rawQuery: '',
    parsed: false,
    uploads: null,
    attributes: {},
  };
  return within(
    new Promise<string>((resolve, reject) => {
      worker.relay.attach({
        frame: (frame) => {
          const reply = parseJobReply(frame);
          if (reply.kind === 'data') resolve(reply.body.toString());
          else reject(new Error(`unexpected reply ${JSON.stringify(reply)}`));
        },
        error: reject,
        close: () => reject(new Error('the worker closed its relay')),
      });
      worker.relay.send(jobFrame(0x08, Buffer.from(JSON.stringify(context)), Buffer.alloc(0)));
    }),
    `the answer to ${uri}`,
  );
}

function socketsOf(pid: number): string[] {
  return fs
    .readdirSync(`/proc/${pid}/fd`)
    .filter((fd) => Number(fd) > 2)
    .map((fd) => {
      try {
        return fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        return '';
      }
    })
    .filter((link) => link.startsWith('socket:'));
}

/** A pino logger whose lines are kept, parsed. */
function keptLog(level: 'debug' | 'info'): { log: pino.Logger; lines: Array<{ level: number; msg: string; pid?: number }> } {
  const lines: Array<{ level: number; msg: string; pid?: number }> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as { level: number; msg: string });
      done();
    },
  });
  return { log: pino({ level }, sink), lines };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < WAIT_MS / 20 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.ok(condition(), `timed out waiting for ${what}`);
}

describe('SocketRelayListener with offerPipes and a real php child', { timeout: 60_000 }, () => {
  const cases = [
    { name: 'sends the child two pipes with the pid request and files it once its SDK answered on them', offerPipes: true, env: {}, kind: 'pipes' },
    { name: 'without the offer the child stays on the socket', offerPipes: false, env: {}, kind: 'unix' },
    {
      name: 'files a child on the socket when its SDK read the offer there (RRTS_RELAY_PIPES=0: the fds were dropped)',
      offerPipes: true,
      env: { RRTS_RELAY_PIPES: '0' },
      kind: 'unix',
    },
  ] as const;
  for (const [i, c] of cases.entries()) {
    it(c.name, async () => {
      const file = path.join(dir, `offer-${i}.sock`);
      const kept = keptLog('info');
      const listener = new SocketRelayListener({ kind: 'unix', path: file }, kept.log, { offerPipes: c.offerPipes });
      await listener.listen();
      try {
        const { child } = startChild(`unix://${file}`, 'worker', c.env);
        const worker = await within(listener.waitFor(child.pid!), `worker ${child.pid}`);
        assert.equal(worker.relay.kind, c.kind);
        assert.equal(worker.sockets.length, c.kind === 'pipes' ? 2 : 1);
        const env = JSON.parse(await get(worker, '/env')) as { server: { RR_RELAY: string }; env: { RR_RELAY: string } };
        if (c.kind === 'pipes') {
          assert.match(env.server.RR_RELAY, /^pipes:\/\/fd\/\d+:fd\/\d+$/);
          assert.equal(env.env.RR_RELAY, env.server.RR_RELAY, 'putenv() too');
          assert.deepEqual(socketsOf(child.pid!), [], 'no relay socket left in the child');
        } else {
          assert.equal(env.server.RR_RELAY, `unix://${file}`);
          assert.equal(socketsOf(child.pid!).length, 1, 'the SDK connection');
        }
        assert.equal(await get(worker, '/pid'), String(child.pid));
        assert.deepEqual(
          kept.lines.filter((l) => l.level >= 40),
          [],
          'nothing warned about',
        );
        worker.relay.close();
        await within(new Promise((resolve) => child.once('exit', resolve)), 'the child to exit once its relay closed');
      } finally {
        await listener.close();
      }
    });
  }

  it('sends no fds to a peer whose pid (SO_PEERCRED) fails acceptPid, and no offer', async () => {
    const file = path.join(dir, 'refused.sock');
    const asked: number[] = [];
    const kept = keptLog('info');
    const listener = new SocketRelayListener({ kind: 'unix', path: file }, kept.log, {
      offerPipes: true,
      acceptPid: (pid) => {
        asked.push(pid);
        return false;
      },
    });
    await listener.listen();
    try {
      // it reads as RelayPipes does (room for the frame and two fds), twice: a listener that sent no fds with the
      // request must not send them after an answer either
      const probe = spawn('php', ['-r', PROBE], { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, RELAY: file } });
      children.push(probe);
      let out = '';
      probe.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      await within(new Promise((resolve) => probe.once('exit', resolve)), `the probe ${probe.pid}`);
      const report = JSON.parse(out) as { fds: number; frames: string[] };
      assert.equal(report.fds, 0, 'no SCM_RIGHTS data');
      assert.deepEqual(report.frames, [`{"pid":${process.pid}}`], 'the plain pid request: no pipes offered');
      assert.equal(asked[0], probe.pid, 'acceptPid was asked about the process that connected');
      await until(() => kept.lines.some((l) => l.level === 40), 'the refusal to be logged');
      assert.match(kept.lines.find((l) => l.level === 40)!.msg, new RegExp(`pid ${probe.pid} is not a worker rrts started`));
    } finally {
      await listener.close();
    }
  });

  it('drops, naming its pid, a child that took the pipes and closed them without an answer', async () => {
    const file = path.join(dir, 'takes-and-leaves.sock');
    const kept = keptLog('info');
    const listener = new SocketRelayListener({ kind: 'unix', path: file }, kept.log, { offerPipes: true });
    await listener.listen();
    try {
      const script = `$s = socket_create(AF_UNIX, SOCK_STREAM, 0); socket_connect($s, getenv('RELAY'));
$m = ['name' => [], 'buffer_size' => 256, 'controllen' => socket_cmsg_space(SOL_SOCKET, SCM_RIGHTS, 2)];
socket_recvmsg($s, $m, 0); echo count($m['control'][0]['data'] ?? []);`;
      const leaver = spawn('php', ['-r', script], { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, RELAY: file } });
      children.push(leaver);
      let out = '';
      leaver.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      await within(new Promise((resolve) => leaver.once('exit', resolve)), `the child ${leaver.pid}`);
      assert.equal(out, '2', 'it received the two fds');
      await until(() => kept.lines.some((l) => l.level === 40), 'the drop to be logged');
      const warning = kept.lines.find((l) => l.level === 40)!;
      assert.equal(warning.pid, leaver.pid);
      assert.match(warning.msg, /relay hand-over: it closed its connection, and its pipes/);
    } finally {
      await listener.close();
    }
  });

  it('logs a connection that closed without a byte at debug, not as a dropped worker', async () => {
    const file = path.join(dir, 'probe-closes.sock');
    const kept = keptLog('debug');
    const listener = new SocketRelayListener({ kind: 'unix', path: file }, kept.log); // exec mode's: no pipes
    await listener.listen();
    try {
      const { child, output } = startChild(`unix://${file}`, 'report');
      const report = JSON.parse(await within(output, `the report of ${child.pid}`)) as Record<string, string>;
      assert.equal(report.server, `unix://${file}`, 'no pipes: RR_RELAY stays');
      await until(() => kept.lines.some((l) => l.msg === 'relay connection closed without a pid answer'), 'the debug line');
      assert.deepEqual(
        kept.lines.filter((l) => l.level >= 40),
        [],
      );
    } finally {
      await listener.close();
    }
  });
});

// Connects to RELAY, reads like RelayPipes (a frame and two fds), answers a pid request with its pid and "pipes"
// (what a child did when rrts offered before sending), reads again, and prints the fds and frames it got.
const PROBE = `
$socket = socket_create(AF_UNIX, SOCK_STREAM, 0);
socket_set_option($socket, SOL_SOCKET, SO_RCVTIMEO, ['sec' => 10, 'usec' => 0]);
socket_connect($socket, getenv('RELAY'));
$fds = 0;
$frames = [];
for ($i = 0; $i < 2; $i++) {
    $message = ['name' => [], 'buffer_size' => 256, 'controllen' => socket_cmsg_space(SOL_SOCKET, SCM_RIGHTS, 2)];
    if (!@socket_recvmsg($socket, $message, 0)) {
        break;
    }
    foreach ($message['control'] ?? [] as $control) {
        $fds += count($control['data'] ?? []);
    }
    $bytes = $message['iov'][0] ?? '';
    if (strlen($bytes) < 12) {
        continue;
    }
    $frames[] = substr($bytes, 12);
    $reply = json_encode(['pid' => getmypid(), 'pipes' => true]);
    $head = pack('CCV', 0x13, 0x09, strlen($reply));
    $frame = $head . pack('V', crc32($head)) . "\\0\\0" . $reply;
    socket_send($socket, $frame, strlen($frame), 0);
}
echo json_encode(['fds' => $fds, 'frames' => $frames]), "\\n";
`;

/**
 * A server in place of rrts: each connection gets `send` (which may hand over fds), then `answer`; it counts the
 * bytes the child sends on the connection (the hand-over sends none).
 */
async function fakeRelay(
  file: string,
  send: (socket: net.Socket) => void,
  answer: (socket: net.Socket) => void,
): Promise<{ server: net.Server; connections: () => number; bytes: () => number }> {
  let connections = 0;
  let bytes = 0;
  const server = net.createServer((socket) => {
    connections++;
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => (bytes += chunk.length));
    send(socket);
    answer(socket);
  });
  await new Promise<void>((resolve) => server.listen(file, resolve));
  return { server, connections: () => connections, bytes: () => bytes };
}

const sendFds = addonFunction('sendFds');

/** Send `frame` with the worker's ends of two new pipes, as rrts does; rrts's ends are closed at once. */
function withPipes(frame: Buffer): (socket: net.Socket) => void {
  return (socket) => {
    const pipes = openWorkerPipes();
    try {
      sendFds!(socketFd(socket)!, [pipes.childStdin, pipes.childStdout], frame);
    } finally {
      pipes.closeChildEnds();
      pipes.jobs.destroy();
      pipes.answers.destroy();
    }
  };
}

describe("the child's hand-over against a server in place of rrts", { timeout: 60_000 }, () => {
  it('takes the pipes sent with the pid request and sends nothing on the connection', async () => {
    assert.ok(sendFds, 'the addon has sendFds');
    const file = path.join(dir, 'fake-offer.sock');
    const fake = await fakeRelay(file, withPipes(pidRequest(process.pid, true)), () => undefined);
    try {
      const { child, output } = startChild(`unix://${file}`, 'report');
      const report = JSON.parse(await within(output, `the report of ${child.pid}`)) as Record<string, string>;
      assert.match(report.server!, /^pipes:\/\/fd\/\d+:fd\/\d+$/);
      assert.equal(report.getenv, report.server);
      assert.equal(fake.connections(), 1);
      assert.equal(fake.bytes(), 0, 'no answer on the connection: the SDK answers on the pipes');
    } finally {
      await new Promise((resolve) => fake.server.close(resolve));
    }
  });
});

describe("the child's fallback: RR_RELAY stays the socket's", { timeout: 60_000 }, () => {
  const cases: Array<{
    name: string;
    send: (socket: net.Socket) => void;
    answer?: (socket: net.Socket) => void;
    env?: NodeJS.ProcessEnv;
    connections: number;
  }> = [
    { name: 'rrts closes the connection without a byte', send: (s) => s.destroy(), connections: 1 },
    { name: 'the offer comes without fds', send: (s) => s.write(pidRequest(process.pid, true)), connections: 1 },
    { name: 'the pid request offers no pipes (a listener that does not: exec mode)', send: (s) => s.write(pidRequest(process.pid)), connections: 1 },
    { name: 'fds come with a pid request that offers no pipes', send: withPipes(pidRequest(process.pid)), connections: 1 },
    { name: 'fds come with a cut frame', send: withPipes(pidRequest(process.pid, true).subarray(0, 20)), answer: (s) => s.end(), connections: 1 },
    { name: 'RRTS_RELAY_PIPES=0', send: (s) => s.write(pidRequest(process.pid, true)), env: { RRTS_RELAY_PIPES: '0' }, connections: 0 },
  ];
  for (const [i, c] of cases.entries()) {
    it(c.name, async () => {
      const file = path.join(dir, `fake-${i}.sock`);
      const fake = await fakeRelay(file, c.send, c.answer ?? (() => undefined));
      try {
        const { child, output } = startChild(`unix://${file}`, 'report', c.env);
        const report = JSON.parse(await within(output, `the report of ${child.pid}`)) as Record<string, string>;
        assert.deepEqual(report, { server: `unix://${file}`, env: `unix://${file}`, getenv: `unix://${file}` });
        assert.equal(child.exitCode, 0);
        assert.equal(fake.connections(), c.connections);
        assert.equal(fake.bytes(), 0, 'it sends nothing on the connection');
      } finally {
        await new Promise((resolve) => fake.server.close(resolve));
      }
    });
  }
});
