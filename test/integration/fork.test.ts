// Fork mode specifics with real php: shared opcache, reaping, master death, forged connections, reset, rrts killed.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { encodeFrame } from '../../src/goridge/frame.js';
import { Flag } from '../../src/goridge/flags.js';
import { stringify, parse } from 'yaml';
import { alive, childrenOf, FIXTURE, isForkSpare, killQuietly, procStat, ROOT, sleep, startRrts, type RrtsInstance } from './harness.js';
import { backgroundTraffic, request } from './client.js';

/** Zombie processes whose parent is one of `parents`. */
function zombiesOf(parents: number[]): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const s = procStat(Number(entry));
    if (s && s.state === 'Z' && parents.includes(s.ppid)) out.push(Number(entry));
  }
  return out;
}

/** The inode of the opcache shared memory mapping of a process (the largest shared writable anonymous map). */
function opcacheInode(pid: number): string | null {
  const maps = fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n');
  let best: { size: number; inode: string } | null = null;
  for (const line of maps) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) rw-s \S+ \S+ (\d+)\s+(.*)$/.exec(line);
    if (!m || m[3] === '0' || !/zero|memfd|SYSV|opcache/i.test(m[4]!)) continue;
    const size = parseInt(m[2]!, 16) - parseInt(m[1]!, 16);
    if (!best || size > best.size) best = { size, inode: m[3]! };
  }
  return best?.inode ?? null;
}

describe('fork mode', () => {
  let rr: RrtsInstance;
  let preloadDir: string;
  before(async () => {
    preloadDir = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'rrts-preload-'));
    const preload = path.join(preloadDir, 'preload.php');
    fs.writeFileSync(preload, '<?php\nmt_rand();\nfunction rrts_test_preloaded(): bool { return true; }\n');
    rr = await startRrts({ mode: 'fork', workers: 4, config: { server: { fork: { preload } } } });
  });
  after(async () => {
    await rr?.stop();
    fs.rmSync(preloadDir, { recursive: true, force: true });
  });

  it('forks every worker from one master', async () => {
    const masters = rr.masterPids();
    assert.equal(masters.length, 1);
    const workers = await rr.waitForWorkers(4);
    for (const pid of workers) assert.equal(procStat(pid)?.ppid, masters[0]);
  });

  it('workers share one opcache segment; exec workers do not', async () => {
    const inodes = new Set(rr.workerPids().map(opcacheInode));
    assert.equal(inodes.size, 1, `fork workers map ${[...inodes].join(',')}`);
    assert.notEqual([...inodes][0], null);
    const execRr = await startRrts({ mode: 'exec', workers: 2, config: { server: { command: `php -d opcache.enable_cli=1 ${FIXTURE}` } } });
    try {
      const execInodes = new Set(execRr.workerPids().map(opcacheInode));
      assert.equal(execInodes.size, 2, `exec workers map ${[...execInodes].join(',')}`);
    } finally {
      await execRr.stop();
    }
  });

  it('reseeds mt_rand in every worker after a preload that used it, and keeps what the preload defined', async () => {
    const seen = new Map<number, number>();
    for (let i = 0; i < 40 && seen.size < 4; i++) {
      const r = JSON.parse((await request(`${rr.url}/rand`)).body.toString());
      assert.equal(r.preloaded, true);
      if (!seen.has(r.pid)) seen.set(r.pid, r.rand);
    }
    assert.ok(seen.size >= 2);
    assert.equal(new Set(seen.values()).size, seen.size, 'first mt_rand() values differ between workers');
  });

  it('starts the first worker of a new root alone: the others are forked once it is ready (it compiled the script into the shared opcache for them)', async () => {
    // the pool started 4 workers at once; 4 requests that each keep a worker busy reach all of them
    const answers = await Promise.all(Array.from({ length: 4 }, () => request(`${rr.url}/rand?ms=300`)));
    const began = new Map(answers.map((a) => JSON.parse(a.body.toString()) as { pid: number; began: number }).map((r) => [r.pid, r.began * 1000]));
    assert.equal(began.size, 4, `4 busy requests reached ${began.size} workers`);
    const ready = rr
      .logs()
      .filter((l) => l.msg === 'worker is ready' && began.has(Number(l.pid)))
      .map((l) => ({ pid: Number(l.pid), at: Math.round(Number(l.ts) / 1e6) }))
      .sort((a, b) => a.at - b.at);
    assert.equal(ready.length, 4, `ready records: ${JSON.stringify(ready)}`);
    const first = ready[0]!;
    for (const { pid } of ready.slice(1)) {
      // the log's ts has millisecond precision (floored), the worker's REQUEST_TIME_FLOAT microseconds
      assert.ok(began.get(pid)! >= first.at, `worker ${pid} began at ${began.get(pid)} ms, before the first worker ${first.pid} was ready at ${first.at} ms`);
    }
  });

  it('kill -9 of a busy worker: that request 500, the parked spare replaces it quickly, no zombie', async (t) => {
    const before = await rr.waitForWorkers(4);
    await rr.waitFor(() => rr.sparePids().length === 1, 'the master to park its spare (server.fork.spares: 1)');
    const [spare] = rr.sparePids();
    const slow = request(`${rr.url}/sleep?ms=3000`);
    await sleep(200);
    const sleeping = findSleeping(before);
    assert.ok(sleeping, 'one worker sleeps in the request');
    killQuietly(sleeping);
    const killedAt = Date.now();
    const r = await slow;
    assert.equal(r.status, 500);
    await rr.waitFor(() => rr.workerPids().length === 4, 'a replacement worker', 5000);
    const replacedMs = Date.now() - killedAt;
    // how quickly is a bench figure (fork.mjs), not an assertion: that the spare took the place is the check
    t.diagnostic(`replacement worker running ${replacedMs} ms after the kill (25 ms polling)`);
    assert.ok(rr.workerPids().includes(spare!), `the spare ${spare} became the replacement: ${rr.workerPids().join(', ')}`);
    await rr.waitFor(() => rr.sparePids().length === 1 && rr.sparePids()[0] !== spare, 'a new spare');
    assert.equal((await request(`${rr.url}/hello`)).status, 200);
    assert.deepEqual(zombiesOf([rr.pid, ...rr.masterPids()]), []);
  });

  it('keeps the worker socket private: directory 0700, socket 0600', () => {
    const sock = findWorkerSocket(rr);
    assert.ok(sock);
    assert.equal(fs.statSync(path.dirname(sock)).mode & 0o777, 0o700);
    assert.equal(fs.statSync(sock).mode & 0o777, 0o600);
  });

  it('refuses and logs a connection that forges a pid', async () => {
    const sock = findWorkerSocket(rr);
    assert.ok(sock, 'the worker socket exists');
    const client = net.createConnection(sock);
    client.resume(); // read (and drop) the pid request, so the close is seen
    await new Promise<void>((resolve, reject) => {
      client.once('connect', resolve);
      client.once('error', reject);
    });
    // answer the pid request with the pid of a real worker that we are not
    const victim = rr.workerPids()[0]!;
    client.write(encodeFrame({ flags: Flag.CONTROL, payload: `{"pid":${victim}}` }));
    const closed = await new Promise<boolean>((resolve) => {
      client.once('close', () => resolve(true));
      setTimeout(() => resolve(false), 3000);
    });
    client.destroy();
    assert.ok(closed, 'rrts closed the forged connection');
    await rr.waitFor(() => rr.logs().some((l) => String(l.msg).includes(`pid ${victim} is not a worker rrts started`)), 'the refusal in the log', 3000);
    assert.equal((await request(`${rr.url}/hello`)).status, 200);
  });

  it('SIGHUP resets under load: a new master, all-new workers, no failed request', async () => {
    const oldMaster = rr.masterPids()[0]!;
    const oldWorkers = await rr.waitForWorkers(4);
    const traffic = backgroundTraffic(rr.url);
    await sleep(300);
    rr.proc.kill('SIGHUP');
    await rr.waitFor(() => rr.logs().some((l) => String(l.msg) === 'http: workers reset'), 'the reset to finish', 15_000);
    await sleep(300);
    const result = await traffic.stop();
    assert.equal(result.failed, 0, result.failures.slice(0, 5).join('; '));
    assert.ok(result.ok > 20);
    await rr.waitFor(() => !alive(oldMaster), 'the old master to leave', 10_000);
    const masters = rr.masterPids();
    assert.equal(masters.length, 1);
    assert.notEqual(masters[0], oldMaster);
    const workers = await rr.waitForWorkers(4);
    assert.equal(workers.filter((p) => oldWorkers.includes(p)).length, 0);
  });

  it('kill -9 of the master under load: no zombie, a new master, requests keep succeeding', async () => {
    const [master] = rr.masterPids();
    const traffic = backgroundTraffic(rr.url);
    await sleep(200);
    killQuietly(master!);
    await rr.waitFor(
      () => rr.masterPids().some((p) => p !== master && childrenOf(p).filter((c) => !isForkSpare(c)).length === 4),
      'a new master with 4 workers',
      15_000,
    );
    await sleep(300);
    const result = await traffic.stop();
    assert.ok(result.failed <= 4, `${result.failed} failed: ${result.failures.slice(0, 5).join('; ')}`);
    assert.ok(result.ok > 20);
    await rr.waitFor(() => zombiesOf([rr.pid, ...rr.masterPids()]).length === 0, 'no zombies', 5000);
  });
});

/** The worker that runs /sleep: the one blocked in a nanosleep system call. */
function findSleeping(pids: number[]): number | null {
  for (const pid of pids) {
    try {
      const syscall = fs.readFileSync(`/proc/${pid}/syscall`, 'utf8').split(' ')[0];
      if (syscall === '35' || syscall === '230') return pid; // nanosleep, clock_nanosleep (x86_64)
    } catch {
      /* gone or not permitted */
    }
  }
  return null;
}

function findWorkerSocket(rr: RrtsInstance): string | null {
  // the root's ready record names the private socket (the processes' /proc/<pid>/environ is overwritten by their titles)
  const record = rr.logs().find((l) => String(l.msg).startsWith('fork root ') && typeof l.socket === 'string');
  return record ? String(record.socket).slice('unix://'.length) : null;
}

describe('fork mode: reset from the root', () => {
  it('forks the new master from the same root: changed preload, script and lazily loaded files are served even with validate_timestamps=0; a changed env gets a new root', async () => {
    const app = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'rrts-warm-'));
    const write = (name: string, text: string, past = false): void => {
      const file = path.join(app, name);
      fs.writeFileSync(file, text);
      // opcache compares whole-second mtimes: the first version is dated back so the change is seen
      if (past) fs.utimesSync(file, new Date(Date.now() - 120_000), new Date(Date.now() - 120_000));
    };
    const version = (n: number, past: boolean): void => {
      write('lib.php', `<?php\nfunction app_version(): string { return 'lib${n}'; }\n`, past);
      write('lazy.php', `<?php\nfunction lazy_version(): string { return 'lazy${n}'; }\n`, past);
      write(
        'worker.php',
        `<?php\nrequire_once ${JSON.stringify(path.join(ROOT, 'php/lib/rr.php'))};\n$http = Rrts\\Lite\\HttpWorker::create();\n` +
          `while ($http->waitRequest()) {\n    require_once __DIR__ . '/lazy.php'; // only the workers load it\n` +
          `    $http->respond(200, 'script${n} ' . app_version() . ' ' . lazy_version());\n}\n`,
        past,
      );
    };
    version(1, true);
    write('preload.php', "<?php\nrequire __DIR__ . '/lib.php';\n", true);
    const rr = await startRrts({
      mode: 'fork',
      workers: 2,
      config: { server: { command: `php -d opcache.validate_timestamps=0 ${path.join(app, 'worker.php')}`, fork: { preload: path.join(app, 'preload.php') } } },
    });
    try {
      assert.equal((await request(`${rr.url}/`)).body.toString(), 'script1 lib1 lazy1');
      const [root] = rr.rootPids();
      const [oldMaster] = rr.masterPids();
      assert.ok(root && oldMaster);
      assert.equal(procStat(oldMaster)?.ppid, root);
      const oldWorkers = await rr.waitForWorkers(2);
      version(2, false);

      const resets = (): number => rr.logs().filter((l) => l.msg === 'http: workers reset').length;
      rr.proc.kill('SIGHUP'); // the same config: a reset, and the root stays
      await rr.waitFor(() => resets() === 1, 'the reset', 20_000);
      await rr.waitFor(() => rr.workerPids().length === 2 && !rr.workerPids().some((p) => oldWorkers.includes(p)), 'the old workers to leave', 10_000);
      await rr.waitFor(() => rr.masterPids().length === 1 && !alive(oldMaster), 'the old master to leave', 10_000);
      assert.deepEqual(rr.rootPids(), [root], 'the same root');
      const [master] = rr.masterPids();
      assert.equal(procStat(master!)?.ppid, root);
      assert.equal(opcacheInode(master!), opcacheInode(root), 'the new master maps the root opcache segment');
      assert.equal((await request(`${rr.url}/`)).body.toString(), 'script2 lib2 lazy2');

      // a changed environment is the root's to carry: the next reset starts a new root
      const file = path.join(rr.dir, '.rr.yaml');
      const config = parse(fs.readFileSync(file, 'utf8')) as { server: { env: Record<string, string> } };
      config.server.env.APP_FLAVOR = 'green';
      fs.writeFileSync(file, stringify(config));
      rr.proc.kill('SIGHUP');
      await rr.waitFor(() => resets() === 2, 'the second reset', 20_000);
      // (an exiting process loses its command line before it is gone: wait for the old root itself)
      await rr.waitFor(() => !alive(root) && rr.rootPids().length === 1, 'a new root, the old one gone', 10_000);
      assert.notEqual(rr.rootPids()[0], root);
      assert.equal((await request(`${rr.url}/`)).body.toString(), 'script2 lib2 lazy2');
    } finally {
      await rr.stop();
      fs.rmSync(app, { recursive: true, force: true });
    }
  });
});

describe('fork mode: the root dies', () => {
  it('the master keeps serving; the next reset starts a new root; nothing is left as a zombie', async () => {
    const rr = await startRrts({ mode: 'fork', workers: 2 });
    try {
      const [root] = rr.rootPids();
      const [master] = rr.masterPids();
      assert.ok(root && master);
      const traffic = backgroundTraffic(rr.url);
      await sleep(200);
      process.kill(root, 'SIGKILL');
      await rr.waitFor(() => rr.logs().some((l) => String(l.msg).startsWith(`the fork root ${root} died`)), 'the root death in the log', 5000);
      await sleep(300);
      assert.equal(alive(master), true, 'the master outlives its root');
      rr.proc.kill('SIGHUP');
      await rr.waitFor(() => rr.logs().some((l) => l.msg === 'http: workers reset'), 'the reset', 20_000);
      await rr.waitFor(() => !alive(master), 'the old master to leave', 10_000);
      const result = await traffic.stop();
      assert.equal(result.failed, 0, result.failures.slice(0, 5).join('; '));
      assert.ok(result.ok > 10);
      const roots = rr.rootPids();
      assert.equal(roots.length, 1);
      assert.notEqual(roots[0], root);
      assert.equal(procStat(rr.masterPids()[0]!)?.ppid, roots[0]);
      await rr.waitFor(() => zombiesOf([rr.pid, ...roots, ...rr.masterPids()]).length === 0, 'no zombies', 6000);
    } finally {
      await rr.stop();
    }
  });
});

describe('fork mode: rrts killed', () => {
  it('SIGKILL of rrts takes the master, workers and spare with it within 2 s', async () => {
    const rr = await startRrts({ mode: 'fork', workers: 3 });
    await rr.waitFor(() => rr.sparePids().length === 1, 'the parked spare');
    const pids = [...rr.masterPids(), ...rr.workerPids(), ...rr.sparePids()];
    assert.equal(pids.length, 5);
    rr.proc.kill('SIGKILL');
    await rr.exited;
    const until = Date.now() + 2000;
    while (pids.some(alive) && Date.now() < until) await sleep(50);
    const left = pids.filter(alive);
    for (const pid of left) killQuietly(pid);
    await rr.stop();
    assert.deepEqual(left, []);
  });
});

describe('fork mode: each worker its own stdout and stderr', () => {
  const LONG_LINE = 65_536;
  const LINES = 24;
  let rr: RrtsInstance;
  let app: string;
  before(async () => {
    app = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'rrts-output-'));
    // every line names the pid that wrote it; /long writes LINES lines of 64 KiB (each one write(2) of 64 KiB + 15)
    fs.writeFileSync(
      path.join(app, 'worker.php'),
      `<?php
require_once ${JSON.stringify(path.join(ROOT, 'php/lib/rr.php'))};
ini_set('display_errors', 'stderr');
ini_set('log_errors', '0');
$http = Rrts\\Lite\\HttpWorker::create();
$pid = getmypid();
while ($request = $http->waitRequest()) {
    switch (parse_url((string) $request['ctx']['uri'], PHP_URL_PATH)) {
        case '/long':
            $letter = chr(97 + $pid % 26);
            for ($i = 0; $i < ${LINES}; $i++) {
                fwrite(STDERR, "long $pid $i " . str_repeat($letter, ${LONG_LINE}) . "\\n");
            }
            break;
        case '/ways':
            fwrite(STDERR, "via STDERR $pid\\n");
            error_log("via error_log $pid");
            file_put_contents('php://stderr', "via file_put_contents $pid\\n");
            $stream = fopen('php://stderr', 'w');
            fwrite($stream, "via fopen $pid\\n");
            fclose($stream);
            fwrite(STDOUT, "via STDOUT $pid\\n");
            break;
        case '/fatal':
            fwrite(STDERR, "dying $pid\\n");
            rrts_no_such_function();
    }
    $http->respond(200, (string) $pid);
}
`,
    );
    rr = await startRrts({ mode: 'fork', workers: 2, config: { server: { command: `php ${path.join(app, 'worker.php')}` } } });
  });
  after(async () => {
    await rr?.stop();
    fs.rmSync(app, { recursive: true, force: true });
  });

  /** The log records of worker output whose message starts with `prefix`. */
  const records = (prefix: string): Array<Record<string, unknown>> => rr.logs().filter((l) => String(l.msg).startsWith(prefix));

  /**
   * Two requests at once, which reach the two idle workers (asked again, up to 5 times, if both went to one): the
   * pids that answered, and how many requests were sent in all.
   */
  async function onBothWorkers(route: string): Promise<{ pids: number[]; sent: number }> {
    let pids: number[] = [];
    let sent = 0;
    for (let attempt = 0; attempt < 5 && new Set(pids).size < 2; attempt++) {
      const answers = await Promise.all([request(`${rr.url}${route}`), request(`${rr.url}${route}`)]);
      sent += answers.length;
      pids = answers.map((a) => Number(a.body.toString()));
    }
    return { pids, sent };
  }

  /** Each of the five ways PHP writes to stderr or stdout came from `pid` and is logged under it. */
  async function assertWaysLoggedUnder(pid: number): Promise<void> {
    const ways = ['STDERR', 'error_log', 'file_put_contents', 'fopen', 'STDOUT'].map((how) => `via ${how} ${pid}`);
    await rr.waitFor(() => ways.every((msg) => rr.logs().some((l) => l.msg === msg)), `the five lines of worker ${pid}`, 5_000);
    for (const msg of ways)
      assert.deepEqual(
        rr
          .logs()
          .filter((l) => l.msg === msg)
          .map((l) => l.pid),
        [pid],
        msg,
      );
  }

  it('two workers writing 64 KiB lines at once: every line is one record, whole, under the pid that wrote it', async () => {
    const workers = await rr.waitForWorkers(2);
    const { pids, sent } = await onBothWorkers('/long');
    assert.deepEqual([...new Set(pids)].sort(), [...workers].sort(), 'both workers wrote at once');
    const written = sent * LINES;
    await rr.waitFor(() => records('long ').length >= written, `${written} long lines`, 10_000);
    let whole = 0;
    for (const record of records('long ')) {
      const msg = String(record.msg);
      const m = /^long (\d+) (\d+) /.exec(msg);
      assert.ok(m, `a record cut from a line: ${msg.slice(0, 40)}... (${msg.length} bytes)`);
      const pid = Number(m[1]);
      const line = `long ${pid} ${m[2]} ${String.fromCharCode(97 + (pid % 26)).repeat(LONG_LINE)}`;
      assert.ok(msg === line, `line ${m[2]} of worker ${pid} is not whole or mixed: ${msg.length} bytes, ${line.length} written`);
      assert.equal(record.pid, pid, `line ${m[2]} of worker ${pid} logged under ${String(record.pid)}`);
      whole++;
    }
    assert.equal(whole, written, 'every line is one record');
  });

  it("fwrite(STDERR), error_log(), php://stderr and STDOUT of a forked worker are logged under its pid, not the root's", async () => {
    const root = rr.rootPids()[0];
    const pids = new Set((await onBothWorkers('/ways')).pids);
    assert.equal(pids.size, 2);
    for (const pid of pids) {
      assert.notEqual(pid, root);
      await assertWaysLoggedUnder(pid);
    }
  });

  it("a fatal error's message is logged under the worker's pid; the spare that replaces it logs under its own", async () => {
    await rr.waitFor(() => rr.sparePids().length === 1, 'the parked spare');
    const [spare] = rr.sparePids();
    const reply = await request(`${rr.url}/fatal`);
    assert.equal(reply.status, 500);
    await rr.waitFor(() => records('dying ').length === 1, 'the line before the fatal error', 5_000);
    const dead = Number(String(records('dying ')[0]!.msg).slice('dying '.length));
    assert.equal(records('dying ')[0]!.pid, dead);
    await rr.waitFor(() => rr.logs().some((l) => String(l.msg).includes('rrts_no_such_function')), 'the fatal error in the log', 5_000);
    const fatal = rr.logs().filter((l) => String(l.msg).includes('rrts_no_such_function'));
    assert.ok(
      fatal.some((l) => /Fatal error/.test(String(l.msg))),
      JSON.stringify(fatal),
    );
    assert.deepEqual([...new Set(fatal.map((l) => l.pid))], [dead], JSON.stringify(fatal));

    // the spare took the dead worker's place: it connected its output before it parked
    await rr.waitFor(() => rr.workerPids().includes(spare!), `the spare ${spare} to replace worker ${dead}`, 5_000);
    assert.ok((await onBothWorkers('/ways')).pids.includes(spare!), `the former spare ${spare} served a request`);
    await assertWaysLoggedUnder(spare!);
  });

  it("without FFI (ffi.enable=0) the workers keep the root's output, and rrts says why, once", async () => {
    const plain = await startRrts({ mode: 'fork', workers: 2, config: { server: { command: `php -d ffi.enable=0 ${path.join(app, 'worker.php')}` } } });
    try {
      const why = (): Array<Record<string, unknown>> =>
        plain.logs().filter((l) => String(l.msg).includes("workers' output is logged under the fork root's pid"));
      assert.equal(why().length, 1, JSON.stringify(why()));
      assert.match(String(why()[0]!.msg), /FFI is not loaded or not allowed \(ffi\.enable\)/);
      const pid = Number((await request(`${plain.url}/ways`)).body.toString());
      const root = plain.rootPids()[0];
      await plain.waitFor(() => plain.logs().some((l) => l.msg === `via STDERR ${pid}`), 'the worker line', 5_000);
      assert.deepEqual(
        plain
          .logs()
          .filter((l) => l.msg === `via STDERR ${pid}`)
          .map((l) => l.pid),
        [root],
      );
    } finally {
      await plain.stop();
    }
  });
});
