// The relay hand-over of fork workers with real php (php/lib/Fork/RelayPipes.php, then the fixture worker on rrts's
// PHP relay): a listener that offers pipes hands them over and files the worker on them; one that does not, or a
// server that closes, sends no fds, or never offers, leaves RR_RELAY as it was, and the worker works on the socket.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { FrameDecoder } from '../../src/goridge/frame.js';
import { jobFrame, parseJobReply, parsePidHandshake, pidRequest } from '../../src/goridge/messages.js';
import { SocketRelayListener, type AcceptedWorker } from '../../src/relay/listener.js';
import { FIXTURE, ROOT } from '../support/paths.js';
import { killQuietly } from '../support/processes.js';

const log = pino({ level: 'silent' });
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

describe('SocketRelayListener with offerPipes and a real php child', { timeout: 60_000 }, () => {
  for (const offerPipes of [true, false]) {
    it(
      offerPipes ? 'hands the child two pipes and files it once its SDK answered the pid request on them' : 'without the offer the child stays on the socket',
      async () => {
        const file = path.join(dir, `offer-${offerPipes}.sock`);
        const listener = new SocketRelayListener({ kind: 'unix', path: file }, log, { offerPipes });
        await listener.listen();
        try {
          const { child } = startChild(`unix://${file}`, 'worker');
          const worker = await within(listener.waitFor(child.pid!), `worker ${child.pid}`);
          assert.equal(worker.relay.kind, offerPipes ? 'pipes' : 'unix');
          assert.equal(worker.sockets.length, offerPipes ? 2 : 1);
          const env = JSON.parse(await get(worker, '/env')) as { server: { RR_RELAY: string }; env: { RR_RELAY: string } };
          if (offerPipes) {
            assert.match(env.server.RR_RELAY, /^pipes:\/\/fd\/\d+:fd\/\d+$/);
            assert.equal(env.env.RR_RELAY, env.server.RR_RELAY, 'putenv() too');
            assert.deepEqual(socketsOf(child.pid!), [], 'no relay socket left in the child');
          } else {
            assert.equal(env.server.RR_RELAY, `unix://${file}`);
            assert.equal(socketsOf(child.pid!).length, 1, 'the SDK connection');
          }
          assert.equal(await get(worker, '/pid'), String(child.pid));
          worker.relay.close();
          await within(new Promise((resolve) => child.once('exit', resolve)), 'the child to exit once its relay closed');
        } finally {
          await listener.close();
        }
      },
    );
  }
});

/** A server in place of rrts: each connection gets `request`, then `onReply` with the child's answer. */
async function fakeRelay(
  file: string,
  request: Buffer | null,
  onReply: (socket: net.Socket, reply: { pid: number; pipes: boolean }) => void,
): Promise<{ server: net.Server; connections: () => number; replies: Array<{ pid: number; pipes: boolean }> }> {
  let connections = 0;
  const replies: Array<{ pid: number; pipes: boolean }> = [];
  const server = net.createServer((socket) => {
    connections++;
    socket.on('error', () => undefined);
    const decoder = new FrameDecoder();
    socket.on('data', (chunk: Buffer) => {
      for (const frame of decoder.push(chunk)) {
        const reply = parsePidHandshake(frame);
        replies.push(reply);
        onReply(socket, reply);
      }
    });
    if (request) socket.write(request);
  });
  await new Promise<void>((resolve) => server.listen(file, resolve));
  return { server, connections: () => connections, replies };
}

describe("the child's fallback: RR_RELAY stays the socket's", { timeout: 60_000 }, () => {
  const cases: Array<{
    name: string;
    request: Buffer | null;
    answer: (socket: net.Socket) => void;
    replies: number;
    env?: NodeJS.ProcessEnv;
    connections: number;
  }> = [
    {
      name: 'rrts closes the connection without a byte (it could not make the pipes)',
      request: pidRequest(process.pid, true),
      answer: (s) => s.destroy(),
      replies: 1,
      connections: 1,
    },
    { name: 'a byte comes without fds', request: pidRequest(process.pid, true), answer: (s) => s.end(Buffer.from([0])), replies: 1, connections: 1 },
    {
      name: 'the pid request offers no pipes (a server that does not know them)',
      request: pidRequest(process.pid),
      answer: () => undefined,
      replies: 0,
      connections: 1,
    },
    { name: 'RRTS_RELAY_PIPES=0', request: pidRequest(process.pid, true), answer: () => undefined, replies: 0, env: { RRTS_RELAY_PIPES: '0' }, connections: 0 },
  ];
  for (const [i, c] of cases.entries()) {
    it(c.name, async () => {
      const file = path.join(dir, `fake-${i}.sock`);
      const fake = await fakeRelay(file, c.request, (socket) => c.answer(socket));
      try {
        const { child, output } = startChild(`unix://${file}`, 'report', c.env);
        const report = JSON.parse(await within(output, `the report of ${child.pid}`)) as Record<string, string>;
        assert.deepEqual(report, { server: `unix://${file}`, env: `unix://${file}`, getenv: `unix://${file}` });
        assert.equal(child.exitCode, 0);
        assert.equal(fake.connections(), c.connections);
        assert.deepEqual(fake.replies, c.replies ? [{ pid: child.pid, pipes: true }] : []);
      } finally {
        await new Promise((resolve) => fake.server.close(resolve));
      }
    });
  }
});
