// The RPC plugin with real rrts and real PHP, in both pool modes: our PHP RPC client (informer, resetter, rpc.Config),
// msgpack from Node, and the `rrts workers` / `rrts reset` commands against the running instance.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Packr } from 'msgpackr';
import { stringify } from 'yaml';
import { Flag } from '../../src/goridge/flags.js';
import { FrameDecoder } from '../../src/goridge/frame.js';
import { decodeRpc, encodeRpc } from '../../src/goridge/messages.js';
import { alive, BIN, freePort, MODES, ROOT, startRrts, type RrtsInstance } from './harness.js';
import { backgroundTraffic, request } from './client.js';
import type { WorkerInfo } from '../../src/pool/info.js';
import { sleep } from '../support/sleep.js';

const run = promisify(execFile);
const PHP_CLIENT = path.join(ROOT, 'test', 'fixtures', 'php', 'rpc-client.php');
const SECRET = 'hunter2-not-for-your-eyes';

/** What informer.Workers answers: RoadRunner's State plus rrts's additions. */
type State = WorkerInfo & { masterPid?: number };

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

async function runQuiet(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<Ran> {
  try {
    const { stdout, stderr } = await run(cmd, args, { env: { ...process.env, NO_COLOR: '1', ...env }, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** Our PHP RPC client: `php rpc-client.php <address> <method> <json>`; the decoded result. */
async function php(address: string, method: string, arg?: unknown): Promise<unknown> {
  const r = await runQuiet('php', [PHP_CLIENT, address, method, ...(arg === undefined ? [] : [JSON.stringify(arg)])]);
  if (r.code !== 0) throw new Error(`php rpc-client ${method}: exit ${r.code}: ${r.stdout}${r.stderr}`);
  return JSON.parse(r.stdout);
}

function rrts(...args: string[]): Promise<Ran> {
  return runQuiet(process.execPath, [BIN, ...args]);
}

/** One msgpack call over a fresh connection. */
function msgpackCall(address: string, method: string, arg: unknown): Promise<{ flags: number; seq: number; value: unknown }> {
  const packr = new Packr({ useRecords: false, mapsAsObjects: true });
  const m = /^tcp:\/\/(.*):(\d+)$/.exec(address)!;
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(m[2]), m[1]);
    const decoder = new FrameDecoder();
    socket.on('connect', () => socket.write(encodeRpc({ seq: 9, method, flags: Flag.CODEC_MSGPACK, body: packr.pack(arg) })));
    socket.on('data', (chunk: Buffer) => {
      const [frame] = decoder.push(chunk);
      if (!frame) return;
      socket.destroy();
      const msg = decodeRpc(frame);
      if (msg.flags & Flag.ERROR) reject(new Error(msg.body.toString()));
      else resolve({ flags: msg.flags, seq: msg.seq, value: packr.unpack(msg.body) });
    });
    socket.on('error', reject);
  });
}

const sorted = (pids: number[]): number[] => [...pids].sort((a, b) => a - b);

for (const mode of MODES) {
  describe(`rpc plugin with real rrts (${mode} mode)`, () => {
    let rr: RrtsInstance;
    let address: string;
    let configFile: string;

    before(async () => {
      address = `tcp://127.0.0.1:${await freePort()}`;
      rr = await startRrts({ mode, workers: 2, config: { rpc: { listen: address }, server: { env: { DB_PASSWORD: SECRET } } } });
      configFile = path.join(rr.dir, '.rr.yaml');
      await rr.waitForWorkers(2);
    });
    after(async () => {
      await rr?.stop();
    });

    it('informer.Workers from PHP lists exactly the live worker pids, in the State shape', async () => {
      const list = (await php(address, 'informer.Workers', 'http')) as { workers: State[] };
      assert.deepEqual(sorted(list.workers.map((w) => w.pid)), rr.workerPids());
      for (const w of list.workers) {
        assert.equal(w.statusStr, 'ready');
        assert.equal(w.status, 1);
        assert.equal(typeof w.created, 'number');
        assert.ok(Math.abs(w.created / 1e6 - Date.now()) < 10 * 60_000, 'created is Unix nanoseconds');
        assert.ok(w.memoryUsage > 1_000_000, 'RSS of a php process');
        assert.equal(w.command, '');
        if (mode === 'fork') assert.equal(w.masterPid, rr.masterPids()[0]);
        else assert.equal(w.masterPid, undefined);
      }
      assert.deepEqual(await php(address, 'informer.List', true), ['http']);
      assert.deepEqual(await php(address, 'informer.Workers', 'nosuch'), { workers: [] });
    });

    it('workers get RR_RPC, and the PHP client reads it from there', async () => {
      const env = JSON.parse((await request(`${rr.url}/env`)).body.toString()) as { server: Record<string, string> };
      assert.equal(env.server.RR_RPC, address);
      const r = await runQuiet('php', [PHP_CLIENT, 'rpc.Version'], { RR_RPC: address });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /^"\d{4}\.\d+\.\d+"\n$/);
    });

    it('rpc.Config hides server.env DB_PASSWORD', async () => {
      const b64 = (await php(address, 'rpc.Config', true)) as string;
      const text = Buffer.from(b64, 'base64').toString('utf8');
      assert.ok(!text.includes(SECRET), 'the secret leaked');
      const config = JSON.parse(text) as { server: { env: Record<string, string> }; rpc: { listen: string } };
      // Keys come back lower-cased, as RoadRunner's viper-based config has them.
      assert.equal(config.server.env.db_password, '******');
      assert.equal(config.server.env.app_flavor, 'blue');
      assert.equal(config.rpc.listen, address);
    });

    it('the same informer call through msgpack', async () => {
      const reply = await msgpackCall(address, 'informer.Workers', 'http');
      assert.equal(reply.flags, Flag.CODEC_MSGPACK);
      assert.equal(reply.seq, 9);
      const workers = (reply.value as { workers: State[] }).workers;
      assert.deepEqual(sorted(workers.map((w) => w.pid)), rr.workerPids());
    });

    it('`rrts workers --json` lists the workers, and their pids exist', async () => {
      const r = await rrts('workers', '--json', '-c', configFile);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout) as Record<string, State[]>;
      assert.deepEqual(Object.keys(out), ['http']);
      assert.equal(out.http!.length, 2);
      for (const w of out.http!) assert.ok(alive(w.pid), `pid ${w.pid} is not alive`);
      assert.deepEqual(sorted(out.http!.map((w) => w.pid)), rr.workerPids());
    });

    it("`rrts workers` prints rr's table with every pid", async () => {
      const r = await rrts('workers', '-c', configFile);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^Workers of \[http\]:\n/);
      assert.match(r.stdout, /PID.*STATUS.*EXECS.*MEMORY.*CPU%.*CREATED/);
      for (const pid of rr.workerPids()) assert.match(r.stdout, new RegExp(`│ ${pid} +│ ready `));
      for (const line of r.stdout.split('\n')) assert.ok([...line].length <= 80, `wider than 80: ${line}`);
      if (mode === 'fork') {
        assert.match(r.stdout, new RegExp(`\nmaster: ${rr.masterPids()[0]}\n`));
        assert.match(r.stdout, /USS/);
      }
      const named = await rrts('workers', 'nosuch', '-c', configFile);
      assert.equal(named.code, 1);
      assert.match(named.stderr, /unknown plugin: nosuch/);
    });

    it('informer.AddWorker / RemoveWorker change the number of workers', async () => {
      assert.equal(await php(address, 'informer.AddWorker', 'http'), true);
      await rr.waitForWorkers(3);
      const three = (await php(address, 'informer.Workers', 'http')) as { workers: State[] };
      assert.equal(three.workers.length, 3);
      assert.equal(await php(address, 'informer.RemoveWorker', 'http'), true);
      await rr.waitForWorkers(2);
      const two = (await php(address, 'informer.Workers', 'http')) as { workers: State[] };
      assert.equal(two.workers.length, 2);
      const r = await runQuiet('php', [PHP_CLIENT, address, 'informer.AddWorker', '"grpc"']);
      assert.equal(r.code, 1);
      assert.equal(r.stdout, 'ERROR: plugin grpc does not support workers management\n');
    });

    it('resetter.Reset from PHP replaces every worker', async () => {
      const before = rr.workerPids();
      assert.equal(await php(address, 'resetter.Reset', 'http'), true);
      const list = (await php(address, 'informer.Workers', 'http')) as { workers: State[] };
      const fresh = sorted(list.workers.map((w) => w.pid));
      assert.equal(fresh.length, 2);
      for (const pid of fresh) assert.ok(!before.includes(pid), `pid ${pid} survived the reset`);
      await rr.waitFor(() => JSON.stringify(rr.workerPids()) === JSON.stringify(fresh), 'the old workers to go');
      const r = await runQuiet('php', [PHP_CLIENT, address, 'resetter.Reset', '"foo"']);
      assert.equal(r.code, 1);
      assert.equal(r.stdout, 'ERROR: resetter_rpc_reset:\n\tresetter_plugin_reset_by_name: no such plugin: foo\n');
    });

    it('`rrts reset` under load loses no request and replaces every worker', async () => {
      const before = rr.workerPids();
      const traffic = backgroundTraffic(rr.url);
      await sleep(200);
      const r = await rrts('reset', '-c', configFile);
      await sleep(200);
      const result = await traffic.stop();
      assert.equal(r.code, 0, r.stderr);
      // a slow stretch of the machine may add 'still resetting' lines between the two
      assert.match(r.stdout, /^resetting plugin: \[http\]\n(still resetting plugin: \[http\] after \d+ s .*\n)*plugin reset: \[http\] in \d+ ms\n$/);
      assert.equal(result.failed, 0, result.failures.slice(0, 5).join('; '));
      assert.ok(result.ok > 20, `only ${result.ok} requests went through`);
      await rr.waitFor(() => rr.workerPids().length === 2 && rr.workerPids().every((p) => !before.includes(p)), 'fresh workers only');
      const silent = await rrts('reset', 'http', '-s', '-c', configFile);
      assert.equal(silent.code, 0, silent.stderr);
      assert.equal(silent.stdout, '');
    });

    it('`rrts reset` says it is still resetting while an old worker finishes a long request', async () => {
      const slow = request(`${rr.url}/sleep?ms=4500`);
      await sleep(300);
      const r = await rrts('reset', 'http', '-c', configFile);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /still resetting plugin: \[http\] after \d+ s/);
      assert.match(r.stdout, /plugin reset: \[http\] in \d+ ms\n$/);
      assert.equal((await slow).status, 200, 'the old worker finished its request');
    });

    it('`rrts workers -i` redraws every second and exits 0 on SIGTERM', async () => {
      const child = spawn(process.execPath, [BIN, 'workers', '-i', '-c', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      await rr.waitFor(() => out.split('Workers of [http]:').length > 2, 'two redraws', 5000);
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
      for (const pid of rr.workerPids()) assert.ok(out.includes(`│ ${pid} `));
    });

    it('`rrts reset nosuch` exits 1 with the error', async () => {
      const r = await rrts('reset', 'nosuch', '-c', configFile);
      assert.equal(r.code, 1);
      assert.match(r.stdout, /resetting plugin: \[nosuch\]/);
      assert.match(r.stderr, /plugin reset failed: \[nosuch\]: resetter_rpc_reset:\n\tresetter_plugin_reset_by_name: no such plugin: nosuch/);
    });
  });
}

describe('rrts workers / reset without a server', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-rpc-cli-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("no rpc section: RoadRunner's tip, exit 1", async () => {
    const file = path.join(dir, 'no-rpc.yaml');
    fs.writeFileSync(file, stringify({ version: '3', server: { command: 'php x.php' } }));
    for (const cmd of ['workers', 'reset']) {
      const r = await rrts(cmd, '-c', file);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /rpc service not specified in the configuration\. Tip: add rpc: listen: tcp:\/\/127\.0\.0\.1:6001/);
    }
  });

  it('rpc.listen already taken: rrts serve fails at start naming rpc.listen', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    const rr = await startRrts({ config: { rpc: { listen: `tcp://127.0.0.1:${port}` } }, expectFailure: true });
    try {
      const exit = await rr.exited;
      assert.equal(exit.code, 1);
      assert.match(rr.stderr, new RegExp(`rpc: cannot listen on 'tcp://127\\.0\\.0\\.1:${port}' \\(rpc\\.listen\\): .*EADDRINUSE`));
      assert.deepEqual(rr.workerPids(), []);
    } finally {
      await rr.stop();
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });

  it('nothing listening: a dial error naming the address, exit 1', async () => {
    const port = await freePort();
    const file = path.join(dir, 'refused.yaml');
    fs.writeFileSync(file, stringify({ version: '3', rpc: { listen: `tcp://127.0.0.1:${port}` } }));
    for (const cmd of ['workers', 'reset']) {
      const r = await rrts(cmd, '-c', file);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`dial tcp 127\\.0\\.0\\.1:${port}: connect: connection refused`));
    }
    const unix = path.join(dir, 'unix.yaml');
    fs.writeFileSync(unix, stringify({ version: '3', rpc: { listen: 'unix://missing.sock' } }));
    const r = await rrts('workers', '-c', unix, '-o', 'rpc.listen=unix://gone.sock');
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`dial unix ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/gone\\.sock: connect: no such file or directory`));
  });
});
