// Stopping leaves nothing behind: after a forced exit (a second stop signal while a request runs; exit 1) and after a
// graceful stop whose grace period a request outlasts (exit 0), every PHP process rrts had (the busy worker too,
// which nothing else would stop) is gone, and no socket file or private directory of rrts is left on disk. Both
// pool modes, with a unix relay (exec) and an RPC unix socket.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { alive, BIN, FIXTURE, killQuietly } from './harness.js';
import { get, serve, sleep, type Served } from './prod-harness.js';

interface State {
  pid: number;
  statusStr: string;
}

/** `rrts workers --json` against the running instance: the http pool's workers. */
function workers(rrts: Served): Promise<State[]> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BIN, 'workers', '--json', '-c', rrts.file], { cwd: rrts.dir, timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`rrts workers: ${err.message} ${stderr}`));
      else resolve((JSON.parse(stdout) as { http: State[] }).http);
    });
  });
}

/** Wait (bounded) until `workers --json` shows a busy worker; returns its pid. */
async function busyWorker(rrts: Served): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const busy = (await workers(rrts)).find((w) => w.statusStr === 'working');
    if (busy) return busy.pid;
    await sleep(50);
  }
  throw new Error(`no worker became busy\n${rrts.stderr.slice(-2000)}`);
}

const CASES: Array<{ mode: 'exec' | 'fork'; first: NodeJS.Signals; second: NodeJS.Signals }> = [
  { mode: 'exec', first: 'SIGTERM', second: 'SIGTERM' },
  { mode: 'fork', first: 'SIGTERM', second: 'SIGTERM' },
  // all three stop signals share one handler; a mixed pair checks that any of them forces
  { mode: 'exec', first: 'SIGINT', second: 'SIGQUIT' },
  { mode: 'fork', first: 'SIGQUIT', second: 'SIGINT' },
];

/** rrts with an RPC unix socket (and a unix relay in exec mode), and the files it made: must all go at exit. */
async function serveWithSockets(mode: 'exec' | 'fork', config: Record<string, unknown> = {}): Promise<{ rrts: Served; files: string[] }> {
  const rrts = await serve({
    config: {
      server: {
        command: `php ${FIXTURE}`,
        fork: { enabled: mode === 'fork', spares: 1 },
        ...(mode === 'exec' ? { relay: 'unix://relay.sock' } : {}),
      },
      rpc: { listen: 'unix://rpc.sock' },
      ...config,
    },
  });
  // a failed check stops it here: the caller's finally is not reached, and rrts and its PHP processes would outlive the test
  try {
    const files = [path.join(rrts.dir, 'rpc.sock')];
    if (mode === 'exec') files.push(path.join(rrts.dir, 'relay.sock'));
    else {
      // the pool's private directory with its sockets (workers.sock, output.sock), and the root host's directory with
      // the shared root's control socket (every pool's masters connect there)
      const relay = /"socket":"unix:\/\/([^"]+)"/.exec(rrts.stderr)?.[1];
      assert.ok(relay, `the fork socket in the log: ${rrts.stderr.slice(-2000)}`);
      const control = /"control":"([^"]+)"/.exec(rrts.stderr)?.[1];
      assert.ok(control, `the root's control socket in the log: ${rrts.stderr.slice(-2000)}`);
      for (const dir of [path.dirname(relay), path.dirname(control)]) files.push(dir, ...fs.readdirSync(dir).map((f) => path.join(dir, f)));
      assert.ok(files.includes(control), 'the control socket exists');
      assert.ok(files.includes(path.join(path.dirname(relay), 'output.sock')), "the pool's output socket exists");
    }
    for (const f of files) assert.ok(fs.existsSync(f), `${f} exists while serving`);
    return { rrts, files };
  } catch (err) {
    await rrts.kill();
    throw err;
  }
}

/** A request no worker finishes within the test (only a kill ends it), and every php process rrts has then. */
async function busyRequest(rrts: Served, mode: 'exec' | 'fork'): Promise<{ slow: ReturnType<typeof get>; php: number[] }> {
  const slow = get(`${rrts.url}/sleep?ms=120000`);
  const busy = await busyWorker(rrts);
  const php = rrts.descendants();
  assert.ok(php.includes(busy), `the busy worker ${busy} is one of rrts's processes ${php.join(', ')}`);
  if (mode === 'fork') assert.ok(php.length >= 5, `root, master, 2 workers and a spare: ${php.join(', ')}`);
  return { slow, php };
}

/** Bounded wait for every pid to be gone, then nothing of rrts on disk. */
async function assertNothingLeft(php: number[], files: string[]): Promise<void> {
  const until = Date.now() + 10_000;
  while (php.some(alive) && Date.now() < until) await sleep(50);
  assert.deepEqual(php.filter(alive), [], 'every php process of rrts is gone');
  assert.deepEqual(
    files.filter((f) => fs.existsSync(f)),
    [],
    'no socket file or private directory left',
  );
}

describe('forced exit', { timeout: 120_000 }, () => {
  for (const { mode, first, second } of CASES) {
    test(`${mode} mode, ${first} then ${second} during a request: exit 1, no php process, no socket file left`, async () => {
      const { rrts, files } = await serveWithSockets(mode);
      let php: number[] = [];
      try {
        const request = await busyRequest(rrts, mode);
        php = request.php;
        rrts.proc.kill(first);
        await rrts.waitFor(() => rrts.stdout.includes('stop signal received'), 'the stop to begin');
        rrts.proc.kill(second);
        const exit = await rrts.exited;
        assert.equal(exit.code, 1, rrts.stderr.slice(-2000));
        assert.match(rrts.stdout, /exit forced/);
        await assertNothingLeft(php, files);
        assert.equal((await request.slow).kind, 'failed', 'the request in flight was cut');
      } finally {
        await rrts.kill();
        for (const pid of php.filter(alive)) killQuietly(pid); // what a failed forced exit left behind
      }
    });
  }
});

describe('stop during start', { timeout: 60_000 }, () => {
  test('SIGTERM while server.on_init runs: exit 0, the on_init process is gone, no worker started', async () => {
    const rrts = await serve({
      config: {
        server: { command: `php ${FIXTURE}`, on_init: { command: ['php', '-r', 'sleep(120);'], exec_timeout: '300s' } },
        rpc: { listen: 'unix://rpc.sock' },
      },
      expectFailure: true, // it never gets to "server started"
    });
    let onInit: number[] = [];
    try {
      await rrts.waitFor(() => rrts.descendants().length > 0, 'on_init to run');
      onInit = rrts.descendants();
      rrts.proc.kill('SIGTERM');
      const exit = await rrts.exited;
      assert.equal(exit.code, 0, rrts.stderr.slice(-2000));
      assert.doesNotMatch(rrts.stdout, /server started/);
      assert.doesNotMatch(rrts.stderr, /on_init command failed/, 'a stop that kills on_init is not its failure');
      await assertNothingLeft(onInit, [path.join(rrts.dir, 'rpc.sock')]);
    } finally {
      await rrts.kill();
      for (const pid of onInit.filter(alive)) killQuietly(pid);
    }
  });
});

describe('graceful stop past the grace period', { timeout: 120_000 }, () => {
  for (const mode of ['exec', 'fork'] as const) {
    test(`${mode} mode: a request outlasting endure.grace_period is cut, exit 0, nothing left`, async () => {
      const { rrts, files } = await serveWithSockets(mode, { endure: { grace_period: '1s' } });
      let php: number[] = [];
      try {
        const request = await busyRequest(rrts, mode);
        php = request.php;
        rrts.proc.kill('SIGTERM');
        const exit = await rrts.exited;
        assert.equal(exit.code, 0, rrts.stderr.slice(-2000));
        await assertNothingLeft(php, files);
        assert.notEqual((await request.slow).kind, 'ok', 'the request outlasting the grace period got no answer');
      } finally {
        await rrts.kill();
        for (const pid of php.filter(alive)) killQuietly(pid);
      }
    });
  }
});
