#!/usr/bin/env node
// Fork mode vs exec mode on a framework-sized app, side by side in one run.
//
// The app: test/bench/app/preload.php loads Debian's Laravel 8 framework (apt-get install -y php-laravel-framework),
// boots a Container, an Events\Dispatcher and a Router with 50 routes, and loads the ~530 classes of 22 Illuminate
// components found by scanning the installed directory (~11 MiB of opcache; RRTS_BENCH_COMPONENTS=all loads all of
// them, ~1000); test/bench/app/worker.php answers every request through that Router with php/lib/rr.php's
// HttpWorker. exec mode: each worker is `php -d opcache.enable_cli=1 test/bench/app/worker.php` and boots the
// framework itself; fork mode: the same config plus `server.fork.enabled: true` and
// `server.fork.preload: test/bench/app/preload.php`.
//
// What it measures (8 workers unless said otherwise):
//   1. memory: `rrts serve`, after 1000 requests (keep-alive, 8 connections): total PSS of the PHP side (master +
//      workers) and worker USS (sum, median), from /proc/<pid>/smaps_rollup (dist's readMemory), plus the median
//      worker's smaps_rollup fields. Ratio fork / exec total PSS (target <= 0.15).
//   2. worker start latency: the spawner classes from dist/ directly (ExecSpawner, ForkSpawner; pino at
//      'silent'), 30 sequential `await spawner.spawnWorker({})` after one untimed warm-up, each worker stopped
//      afterwards (not timed), p50/p95 for the framework app and for php/worker.php (hello; fork without preload).
//      Also: the master's answer to `fork`, the new worker's page faults until ready, and the machine's fork floor
//      (pcntl_fork() until the child runs, in php). Targets: exec p50 / fork p50 >= 80, fork p50 <= 3 ms.
//   3. reset: `rrts serve` with 4 and 16 workers per mode, SIGHUP to rrts (a rolling reset of every pool) while 4
//      keep-alive connections send requests; the reset time is the `elapsed_ms` of the `http: workers reset` log
//      record (production JSON log on stderr), with the wall time from the signal to that record, to the new fork
//      master's ready record, and until the old workers (and the old master) are gone. Failed requests must be 0.
//   The CPU other processes used during each phase is reported (a busy machine disturbs the numbers).
// Prints the tables and ratios on stdout, progress on stderr, and the result as JSON on stdout's last line.
//
// Run (after `npm run build`; needs `apt-get install -y php-laravel-framework`):
//   node test/bench/fork.mjs            # full: about 1 min on 2 cores
//   node test/bench/fork.mjs --quick    # 300 requests, 10 start samples, reset with 4 and 8 workers (~30 s)
//   node test/bench/fork.mjs --json /tmp/fork.json
// Everything listens on and talks to 127.0.0.1 only, config files live in a temp dir, and every process started
// (rrts, PHP workers and masters) is stopped by pid at the end, on SIGINT/SIGTERM and on error; the temp dir is
// removed.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');
const DIST = path.join(REPO, 'dist', 'src');
const RRTS_BIN = path.join(REPO, 'bin', 'rrts');
const APP_PRELOAD = path.join(HERE, 'app', 'preload.php');
const APP_WORKER = path.join(HERE, 'app', 'worker.php');
const HELLO_WORKER = path.join(REPO, 'php', 'worker.php');
const HOST = '127.0.0.1';
const PHP_FLAGS = ['-d', 'opcache.enable_cli=1'];

const USAGE = `usage: node test/bench/fork.mjs [--quick] [--json FILE]
  --quick      300 requests, 10 start samples, reset with 4 and 8 workers (< 60 s)
  --json FILE  write the JSON result to FILE instead of stdout's last line
  -h, --help`;

// ---------------------------------------------------------------------------------------------- bookkeeping

/** rrts processes we started: { name, child, pid, exited, exit, stderr, stdout, seen: Set<pid> of its PHP side } */
const servers = new Set();
/** spawners (in this process) with their live workers */
const spawners = new Set();
/** pids of PHP processes started by the spawners in this process (killed on exit if still there) */
const spawnedPids = new Set();
let tmpDir = null;
let cleaning = null;

function log(line) {
  process.stderr.write(`[bench] ${line}\n`);
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

function procStat(pid) {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0], ppid: Number(rest[1]) };
  } catch {
    return null;
  }
}

function alive(pid) {
  const st = procStat(pid);
  return st !== null && st.state !== 'Z';
}

function childrenOf(ppid) {
  const out = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const st = procStat(Number(entry));
    if (st && st.ppid === ppid && st.state !== 'Z') out.push(Number(entry));
  }
  return out.sort((a, b) => a - b);
}

function killQuietly(pid, sig = 'SIGKILL') {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone */
  }
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------------------------------------- rrts serve

/** Start `rrts serve` on a generated config; resolves once it printed "server started" and `workers` PHP workers run. */
async function startRrts({ name, mode, workers }) {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(tmpDir, `${name}-`));
  const config = [
    'version: "3"',
    'server:',
    `  command: "php ${PHP_FLAGS.join(' ')} ${APP_WORKER}"`,
    '  relay: pipes',
    '  fork:',
    `    enabled: ${mode === 'fork'}`,
    ...(mode === 'fork' ? [`    preload: "${APP_PRELOAD}"`] : []),
    'http:',
    `  address: "${HOST}:${port}"`,
    '  pool:',
    `    num_workers: ${workers}`,
    '    allocate_timeout: 60s',
    '    destroy_timeout: 10s',
    'logs:',
    '  mode: production',
    '  level: info',
    '',
  ].join('\n');
  const file = path.join(dir, '.rr.yaml');
  fs.writeFileSync(file, config);
  const child = spawn(process.execPath, [RRTS_BIN, 'serve', '-c', file], {
    cwd: dir,
    env: { ...process.env, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // own process group: a terminal ^C reaches us, and we stop it by pid
  });
  const s = { name, mode, port, child, pid: child.pid, stdout: '', stderr: '', exit: null, seen: new Set(), records: [] };
  let partial = '';
  child.stdout.on('data', (c) => (s.stdout += c.toString()));
  child.stderr.on('data', (c) => {
    const text = c.toString();
    s.stderr += text;
    if (s.stderr.length > 1 << 20) s.stderr = s.stderr.slice(-(1 << 19));
    // production-mode JSON records, each stamped with when it arrived here
    const lines = (partial + text).split('\n');
    partial = lines.pop();
    const at = performance.now();
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      try {
        s.records.push({ at, ...JSON.parse(line) });
      } catch {
        /* not a record */
      }
    }
  });
  s.exited = new Promise((resolve) => {
    child.once('error', (err) => {
      s.exit = { code: null, signal: null, error: err.message };
      resolve(s.exit);
    });
    child.once('exit', (code, signal) => {
      s.exit = { code, signal };
      resolve(s.exit);
    });
  });
  servers.add(s);
  const t0 = Date.now();
  await waitFor(() => s.stdout.includes('server started') || s.exit !== null, `${name}: rrts to start`, 120_000, s);
  if (s.exit) throw new Error(`${name}: rrts exited at start (${JSON.stringify(s.exit)}): ${s.stderr.slice(-3000)}`);
  await waitFor(() => workerPids(s).length === workers, `${name}: ${workers} workers`, 60_000, s);
  s.startMs = Date.now() - t0;
  const res = await get(port, '/');
  if (res.status !== 200 || !res.body.startsWith('home pid')) {
    throw new Error(`${name}: GET / answered ${res.status} ${JSON.stringify(res.body.slice(0, 300))}`);
  }
  return s;
}

/** The PHP workers: rrts's children (exec) or its masters' children (fork). Remembered for the cleanup. */
function workerPids(s) {
  const direct = childrenOf(s.pid);
  for (const pid of direct) s.seen.add(pid);
  if (s.mode === 'exec') return direct;
  const workers = direct.flatMap((pid) => childrenOf(pid));
  for (const pid of workers) s.seen.add(pid);
  return workers;
}

function masterPids(s) {
  return s.mode === 'fork' ? childrenOf(s.pid) : [];
}

async function waitFor(predicate, what, timeoutMs, s = null) {
  const until = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${s ? `\nrrts stderr (tail): ${s.stderr.slice(-3000)}` : ''}`);
    await sleep(20);
  }
}

/** SIGTERM (rrts's graceful stop), SIGKILL after 20 s; then SIGKILL any PHP process of it that outlived it. */
async function stopRrts(s) {
  if (!servers.has(s)) return;
  if (s.exit === null) workerPids(s);
  if (s.exit === null) killQuietly(s.pid, 'SIGTERM');
  const timedOut = await Promise.race([s.exited.then(() => false), sleep(20_000).then(() => true)]);
  if (timedOut) {
    log(`${s.name}: rrts did not stop within 20 s of SIGTERM, SIGKILL`);
    killQuietly(s.pid);
    await Promise.race([s.exited, sleep(2000)]);
  }
  let left = [...s.seen].filter(alive);
  for (let i = 0; i < 40 && left.length; i++) {
    await sleep(50);
    left = left.filter(alive);
  }
  for (const pid of left) killQuietly(pid);
  if (left.length) log(`${s.name}: ${left.length} PHP process(es) outlived rrts and were SIGKILLed: ${left.join(', ')}`);
  s.stopNote = `${s.exit?.signal ?? `exit ${s.exit?.code}`}${left.length ? `, ${left.length} stragglers killed` : ''}`;
  servers.delete(s);
}

/** The text of a log record. */
function msgOf(record) {
  return String(record.msg ?? record.message ?? '');
}

// ---------------------------------------------------------------------------------------------- HTTP load

function get(port, urlPath, agent = undefined) {
  return new Promise((resolve) => {
    const req = http.request({ host: HOST, port, path: urlPath, method: 'GET', agent: agent ?? false, timeout: 60_000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (err) => resolve({ status: 0, body: '', error: err.message }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve({ status: 0, body: '', error: err.message }));
    req.end();
  });
}

/**
 * Keep-alive load: `connections` loops, each sending GET /r<i%50>/<i> one after another on its own socket, until
 * `total` requests were sent (or stop() when total is Infinity). A request fails on a socket error, a status other
 * than 200, or a body that is not the route's answer.
 */
function startLoad(port, connections, total = Infinity) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections });
  const stats = { sent: 0, ok: 0, failed: 0, errors: [], latencies: [], maxMs: 0, stopped: false };
  let next = 0;
  const loop = async () => {
    while (!stats.stopped && next < total) {
      const i = next++;
      const route = i % 50;
      const t0 = performance.now();
      const res = await get(port, `/r${route}/${i}`, agent);
      const ms = performance.now() - t0;
      stats.sent++;
      stats.latencies.push(ms);
      if (ms > stats.maxMs) stats.maxMs = ms;
      if (res.status === 200 && res.body.startsWith(`route ${route} id ${i} pid `)) stats.ok++;
      else {
        stats.failed++;
        if (stats.errors.length < 5) stats.errors.push(res.error ?? `${res.status} ${res.body.slice(0, 200)}`);
      }
    }
  };
  const t0 = performance.now();
  const done = Promise.all(Array.from({ length: connections }, loop)).then(() => {
    stats.elapsedMs = performance.now() - t0;
    agent.destroy();
    return stats;
  });
  return {
    stats,
    done,
    stop() {
      stats.stopped = true;
      return done;
    },
  };
}

// ---------------------------------------------------------------------------------------------- memory

/** Every `Field: N kB` line of /proc/<pid>/smaps_rollup, in bytes. */
function smapsRollup(pid) {
  try {
    const out = {};
    for (const m of fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').matchAll(/^(\w+):\s+(\d+) kB/gm)) out[m[1]] = Number(m[2]) * 1024;
    return out;
  } catch {
    return null;
  }
}

async function measureMemory(mode, requests, readMemory) {
  const s = await startRrts({ name: `memory-${mode}`, mode, workers: 8 });
  log(`memory ${mode}: rrts up with 8 workers in ${s.startMs} ms; ${requests} requests over 8 connections`);
  const load = startLoad(s.port, 8, requests);
  const stats = await load.done;
  if (stats.failed) throw new Error(`memory ${mode}: ${stats.failed} of ${stats.sent} requests failed: ${stats.errors.join('; ')}`);
  const workers = workerPids(s);
  const masters = masterPids(s);
  const read = async (pid) => ({ pid, ...(await readMemory(pid)), rollup: smapsRollup(pid) });
  const w = await Promise.all(workers.map(read));
  const m = await Promise.all(masters.map(read));
  if (w.length !== 8 || w.some((x) => x.pss === undefined)) throw new Error(`memory ${mode}: expected 8 live workers, found ${w.length}`);
  await stopRrts(s);
  const sum = (xs, k) => xs.reduce((a, x) => a + x[k], 0);
  const breakdown = {};
  for (const k of ['Rss', 'Pss', 'Pss_Anon', 'Pss_File', 'Pss_Shmem', 'Shared_Clean', 'Shared_Dirty', 'Private_Clean', 'Private_Dirty', 'Anonymous']) {
    breakdown[k] = median(w.map((x) => x.rollup?.[k] ?? 0));
  }
  return {
    mode,
    requests: stats.sent,
    rps: Math.round(stats.sent / (stats.elapsedMs / 1000)),
    workers: w.length,
    masters: m.length,
    totalPss: sum(w, 'pss') + sum(m, 'pss'),
    masterPss: sum(m, 'pss'),
    masterUss: sum(m, 'uss'),
    workerPssSum: sum(w, 'pss'),
    workerUssSum: sum(w, 'uss'),
    workerUssMedian: median(w.map((x) => x.uss)),
    workerPssMedian: median(w.map((x) => x.pss)),
    workerRssMedian: median(w.map((x) => x.rss)),
    workerBreakdownMedian: breakdown,
    masterBreakdown: m[0]?.rollup ?? null,
  };
}

// ---------------------------------------------------------------------------------------------- start latency

async function measureStart({ app, mode, samples, ExecSpawner, ForkSpawner, logger }) {
  const script = app === 'framework' ? APP_WORKER : HELLO_WORKER;
  const env = { ...process.env, RR_RELAY: 'pipes', RR_MODE: 'http', RR_VERSION: '2025.1.15' };
  const common = { env, cwd: REPO, allocateTimeoutMs: 60_000, streamTimeoutMs: 10_000, log: logger };
  const spawner =
    mode === 'exec'
      ? new ExecSpawner({ ...common, command: ['php', ...PHP_FLAGS, script], relay: 'pipes' })
      : new ForkSpawner({
          ...common,
          command: { php: 'php', flags: [...PHP_FLAGS], script, args: [] },
          preload: app === 'framework' ? APP_PRELOAD : null,
        });
  spawners.add(spawner);
  const t0 = performance.now();
  await spawner.start();
  const startMs = performance.now() - t0;
  if (spawner.masterPid) spawnedPids.add(spawner.masterPid);
  // fork mode: time the master's answer to `fork` (its pcntl_fork() and reply) apart from the whole start, by
  // wrapping the (private) current master's fork() of this spawner instance; skipped if the internals change.
  let forkAnswerMs = null;
  const master = spawner.master;
  if (master && typeof master.fork === 'function') {
    const fork = master.fork.bind(master);
    master.fork = async (env) => {
      const t = performance.now();
      const pid = await fork(env);
      forkAnswerMs = performance.now() - t;
      return pid;
    };
  }
  const one = async () => {
    forkAnswerMs = null;
    const t = performance.now();
    const worker = await spawner.spawnWorker({});
    const ms = performance.now() - t;
    const faults = minorFaults(worker.pid); // page faults the new worker took until it was ready
    spawnedPids.add(worker.pid);
    const s = performance.now();
    await worker.stop();
    const stopMs = performance.now() - s;
    spawnedPids.delete(worker.pid);
    return { ms, stopMs, faults, forkAnswerMs };
  };
  const warm = await one(); // not counted: the first fork compiles the worker script into the shared opcache
  const times = [];
  const stops = [];
  const faults = [];
  const answers = [];
  for (let i = 0; i < samples; i++) {
    const r = await one();
    times.push(r.ms);
    stops.push(r.stopMs);
    if (r.faults !== null) faults.push(r.faults);
    if (r.forkAnswerMs !== null) answers.push(r.forkAnswerMs);
  }
  await spawner.close();
  spawners.delete(spawner);
  if (spawner.masterPid) spawnedPids.delete(spawner.masterPid);
  const sorted = [...times].sort((a, b) => a - b);
  return {
    app,
    mode,
    samples,
    spawnerStartMs: round(startMs, 1),
    firstMs: round(warm.ms, 2),
    p50: round(percentile(sorted, 50), 2),
    p95: round(percentile(sorted, 95), 2),
    min: round(sorted[0], 2),
    max: round(sorted[sorted.length - 1], 2),
    forkAnswerP50: answers.length ? round(median(answers), 2) : null,
    faultsP50: faults.length ? median(faults) : null,
    stopP50: round(median(stops), 2),
  };
}

/** minflt of a process from /proc/<pid>/stat, or null. */
function minorFaults(pid) {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[7]);
  } catch {
    return null;
  }
}

/**
 * The floor under any fork start on this machine: in a php process (bare, and with the app preloaded), the time
 * from pcntl_fork() until the child has written one byte to a socketpair the parent waits on (p50 of 20).
 */
function forkFloor() {
  const code = (preload) => `${preload ? `require ${JSON.stringify(APP_PRELOAD)};` : ''}
    $t = [];
    for ($i = 0; $i < 21; $i++) {
        [$a, $b] = stream_socket_pair(STREAM_PF_UNIX, STREAM_SOCK_STREAM, 0);
        $s = hrtime(true);
        $pid = pcntl_fork();
        if ($pid === 0) { fwrite($b, 'x'); posix_kill(getmypid(), SIGKILL); }
        fread($a, 1);
        if ($i > 0) $t[] = (hrtime(true) - $s) / 1e6;
        pcntl_waitpid($pid, $status);
        fclose($a); fclose($b);
    }
    sort($t);
    preg_match('/^VmRSS:\\s+(\\d+) kB/m', (string) file_get_contents('/proc/self/status'), $m);
    echo json_encode(['p50' => ($t[9] + $t[10]) / 2, 'rss' => (int) $m[1] * 1024]);`;
  const run = (preload) => {
    const r = spawnSync('php', [...PHP_FLAGS, '-r', code(preload)], { encoding: 'utf8', cwd: REPO, timeout: 60_000 });
    if (r.status !== 0) throw new Error(`fork floor probe failed: ${r.stderr}${r.stdout}`);
    const j = JSON.parse(r.stdout.trim().split('\n').pop());
    return { p50Ms: round(j.p50, 2), rssBytes: j.rss };
  };
  return { bare: run(false), framework: run(true) };
}

// ---------------------------------------------------------------------------------------------- reset

async function measureReset(mode, workers) {
  const s = await startRrts({ name: `reset-${mode}-${workers}`, mode, workers });
  const oldWorkers = workerPids(s);
  const oldMasters = masterPids(s);
  const load = startLoad(s.port, 4);
  await sleep(500); // steady load first
  const before = load.stats.sent;
  const seenRecords = s.records.length;
  const t0 = performance.now();
  process.kill(s.pid, 'SIGHUP');
  let record = null;
  await waitFor(
    () => {
      const recs = s.records.slice(seenRecords);
      record = recs.find((r) => msgOf(r).includes('http: workers reset')) ?? null;
      const failed = recs.find((r) => msgOf(r).includes('reset failed'));
      if (failed) throw new Error(`reset-${mode}-${workers}: ${msgOf(failed)}`);
      return record !== null;
    },
    `reset-${mode}-${workers}: the 'http: workers reset' record`,
    120_000,
    s,
  );
  const signalToRecordMs = performance.now() - t0;
  // fork mode: the new master's "is ready" record splits the reset into master boot + forking the workers
  const masterReady = s.records.slice(seenRecords).find((r) => /fork master \d+ is ready/.test(msgOf(r)));
  const duringReset = load.stats.sent - before;
  await waitFor(() => [...oldWorkers, ...oldMasters].every((pid) => !alive(pid)), `reset-${mode}-${workers}: the old workers to leave`, 60_000, s);
  const oldGoneMs = performance.now() - t0;
  await sleep(300); // and serve on the new ones for a moment
  const stats = await load.stop();
  const now = workerPids(s);
  if (now.length !== workers || now.some((pid) => oldWorkers.includes(pid))) {
    throw new Error(`reset-${mode}-${workers}: after the reset ${now.length} workers run, ${now.filter((p) => oldWorkers.includes(p)).length} of them old`);
  }
  await stopRrts(s);
  const sorted = [...stats.latencies].sort((a, b) => a - b);
  return {
    mode,
    workers,
    elapsedMs: record.elapsed_ms,
    signalToRecordMs: round(signalToRecordMs, 1),
    newMasterReadyMs: masterReady ? round(masterReady.at - t0, 1) : null,
    oldGoneMs: round(oldGoneMs, 1),
    requests: stats.sent,
    requestsDuringReset: duringReset,
    failed: stats.failed,
    errors: stats.errors,
    p99Ms: round(percentile(sorted, 99), 1),
    maxMs: round(stats.maxMs, 1),
  };
}

// ---------------------------------------------------------------------------------------------- numbers

function median(xs) {
  return percentile([...xs].sort((a, b) => a - b), 50);
}

/** Nearest-rank percentile of a sorted array (p50 of an even count: the mean of the middle two). */
function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  if (p === 50 && sorted.length % 2 === 0) return (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function round(x, digits) {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

const MiB = (bytes) => (bytes / 2 ** 20).toFixed(1);

function table(head, rows) {
  const cells = [head, ...rows].map((r) => r.map(String));
  const widths = head.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  const line = (r) => `| ${r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(cells[0]), rule, ...cells.slice(1).map(line)].join('\n');
}

function verdict(ok) {
  return ok ? 'met' : 'MISSED';
}

// ---------------------------------------------------------------------------------------------- other load

/**
 * CPU seconds used by the whole machine (user+nice+system+irq+softirq; steal apart) and by this process tree (this
 * process and its reaped descendants: rrts, masters and workers are all reaped by the end of a phase), from /proc.
 */
function cpuSnapshot() {
  const hz = 100; // USER_HZ
  const all = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const self = fs.readFileSync('/proc/self/stat', 'utf8');
  const f = self.slice(self.lastIndexOf(')') + 2).split(' ').map(Number);
  return {
    at: performance.now(),
    machine: (all[0] + all[1] + all[2] + all[5] + all[6]) / hz,
    steal: (all[7] ?? 0) / hz,
    ours: (f[11] + f[12] + f[13] + f[14]) / hz,
  };
}

/** Run a phase; returns its result and the CPU other processes used meanwhile (cores), and the steal time. */
async function phase(name, fn) {
  const a = cpuSnapshot();
  const result = await fn();
  const b = cpuSnapshot();
  const seconds = (b.at - a.at) / 1000;
  const load = {
    phase: name,
    seconds: round(seconds, 1),
    ourCores: round((b.ours - a.ours) / seconds, 2),
    otherCores: round(Math.max(0, b.machine - a.machine - (b.ours - a.ours)) / seconds, 2),
    stealCores: round((b.steal - a.steal) / seconds, 2),
  };
  return { result, load };
}

// ---------------------------------------------------------------------------------------------- checks, facts

function checkSetup() {
  for (const f of ['spawn/exec.js', 'spawn/fork/spawner.js', 'pool/memory.js', 'cli/main.js']) {
    if (!fs.existsSync(path.join(DIST, f))) throw new Error(`rrts is not built (dist/src/${f} missing): run 'npm run build' first`);
  }
  const php = spawnSync('php', ['-v'], { encoding: 'utf8' });
  if (php.status !== 0) throw new Error("no 'php' in PATH (apt-get install -y php8.2-cli)");
  const mods = spawnSync('php', ['-m'], { encoding: 'utf8' }).stdout;
  for (const m of ['pcntl', 'posix', 'sockets', 'Zend OPcache']) if (!mods.includes(m)) throw new Error(`php lacks the ${m} extension fork mode needs`);
  // Boot the app once: checks Laravel is installed and tells how big the app is.
  const probe = spawnSync(
    'php',
    [
      ...PHP_FLAGS,
      '-d',
      'opcache.file_update_protection=0',
      '-r',
      `$b = opcache_get_status(false)['memory_usage']['used_memory']; $t = hrtime(true); require ${JSON.stringify(APP_PRELOAD)};
       $s = opcache_get_status(false);
       echo json_encode(['classes' => count(RrtsBench\\App::$loaded), 'failed' => count(RrtsBench\\App::$failed),
         'routes' => count(RrtsBench\\App::$router->getRoutes()), 'bootMs' => round((hrtime(true) - $t) / 1e6, 1),
         'scripts' => $s['opcache_statistics']['num_cached_scripts'], 'opcacheBytes' => $s['memory_usage']['used_memory'] - $b,
         'internedBytes' => $s['interned_strings_usage']['used_memory'] ?? null,
         'components' => RrtsBench\\App::components(RrtsBench\\App::illuminateDir())]);`,
    ],
    { encoding: 'utf8', cwd: REPO, timeout: 60_000 },
  );
  if (probe.status !== 0) {
    throw new Error(`the bench app does not boot (is php-laravel-framework installed? apt-get install -y php-laravel-framework):\n${probe.stderr}${probe.stdout}`);
  }
  return JSON.parse(probe.stdout.trim().split('\n').pop());
}

function machineFacts() {
  const first = (cmd, args) => (spawnSync(cmd, args, { encoding: 'utf8' }).stdout ?? '').split('\n')[0].trim();
  let commit = null;
  let dirtySrc = null;
  try {
    const git = (args) => execFileSync('git', ['-C', REPO, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    commit = git(['rev-parse', '--short', 'HEAD']);
    dirtySrc = git(['status', '--porcelain', '--', 'src']).split('\n').filter(Boolean).length;
  } catch {
    /* not a git checkout */
  }
  return {
    nproc: os.availableParallelism?.() ?? os.cpus().length,
    cpuModel: os.cpus()[0]?.model?.trim() ?? '?',
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    node: process.version,
    php: first('php', ['-v']),
    laravel: first('dpkg-query', ['-W', '-f=${Version}', 'php-laravel-framework']) || '?',
    commit,
    dirtySrcFiles: dirtySrc,
  };
}

// ---------------------------------------------------------------------------------------------- cleanup

async function cleanup() {
  cleaning ??= (async () => {
    for (const s of [...servers]) await stopRrts(s).catch((err) => log(`stopping ${s.name}: ${err.message}`));
    for (const sp of [...spawners]) {
      await Promise.race([sp.close().catch(() => undefined), sleep(5000)]);
      spawners.delete(sp);
    }
    for (const pid of spawnedPids) if (alive(pid)) killQuietly(pid);
    spawnedPids.clear();
    if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
    tmpDir = null;
  })();
  return cleaning;
}

// Last resort (a second ^C, an exit before cleanup finished): kill what is left, synchronously, by pid.
process.on('exit', () => {
  for (const s of servers) for (const pid of [s.pid, ...s.seen]) if (alive(pid)) killQuietly(pid);
  for (const pid of spawnedPids) if (alive(pid)) killQuietly(pid);
  if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
});

let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log(`${sig}: stopping everything`);
    cleanup().finally(() => process.exit(130));
  });
}

// ---------------------------------------------------------------------------------------------- main

async function main() {
  const { values } = parseArgs({
    options: { quick: { type: 'boolean', default: false }, json: { type: 'string' }, help: { type: 'boolean', short: 'h', default: false } },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const quick = values.quick;
  const requests = quick ? 300 : 1000;
  const samples = quick ? 10 : 30;
  const resetSizes = quick ? [4, 8] : [4, 16];
  const began = Date.now();

  const app = checkSetup();
  const machine = machineFacts();
  log(`app: ${app.classes} classes loaded (${app.failed} skipped), ${app.routes} routes, ${MiB(app.opcacheBytes)} MiB of opcache, boot ${app.bootMs} ms`);
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-bench-fork-'));

  const { readMemory } = await import(pathToFileURL(path.join(DIST, 'pool', 'memory.js')).href);
  const { ExecSpawner } = await import(pathToFileURL(path.join(DIST, 'spawn', 'exec.js')).href);
  const { ForkSpawner } = await import(pathToFileURL(path.join(DIST, 'spawn', 'fork', 'spawner.js')).href);
  const { default: pino } = await import('pino');
  const logger = pino({ level: 'silent' });

  const loads = [];
  // 1. memory
  const memory = {};
  for (const mode of ['exec', 'fork']) {
    const { result, load } = await phase(`memory ${mode}`, () => measureMemory(mode, requests, readMemory));
    memory[mode] = result;
    loads.push(load);
  }

  // 2. start latency
  const start = [];
  for (const appName of ['framework', 'hello']) {
    for (const mode of ['exec', 'fork']) {
      log(`start latency: ${appName} ${mode}, ${samples} samples`);
      const { result, load } = await phase(`start ${appName} ${mode}`, () => measureStart({ app: appName, mode, samples, ExecSpawner, ForkSpawner, logger }));
      start.push(result);
      loads.push(load);
    }
  }

  const floor = forkFloor();

  // 3. reset under load
  const reset = [];
  for (const n of resetSizes) {
    for (const mode of ['exec', 'fork']) {
      log(`reset: ${mode} with ${n} workers`);
      const { result, load } = await phase(`reset ${mode} ${n}`, () => measureReset(mode, n));
      reset.push(result);
      loads.push(load);
    }
  }
  await cleanup();
  const totalSeconds = round((Date.now() - began) / 1000, 1);

  // ------------------------------------------------------------------ report
  const out = [];
  out.push(`rrts fork vs exec: ${machine.nproc} CPUs (${machine.cpuModel}), Linux ${machine.kernel}, ${machine.php}, node ${machine.node}, rrts ${machine.commit ?? '?'}${machine.dirtySrcFiles ? ` (+${machine.dirtySrcFiles} changed src files)` : ''}`);
  out.push(
    `app: Laravel ${machine.laravel} (Debian): ${app.classes} Illuminate classes (${app.components.length} components${process.env.RRTS_BENCH_COMPONENTS ? `, RRTS_BENCH_COMPONENTS=${process.env.RRTS_BENCH_COMPONENTS}` : ''}) + Container/Events/Router with ${app.routes} routes; ` +
      `${app.scripts} scripts, ${MiB(app.opcacheBytes)} MiB of opcache; cold boot ${app.bootMs} ms${quick ? '; --quick' : ''}`,
  );
  out.push('');
  out.push(`1. Memory of the PHP side, 8 workers, after ${requests} requests (8 keep-alive connections)`);
  const mrow = (m) => [
    m.mode,
    m.masters ? `1 + ${m.workers}` : `${m.workers}`,
    MiB(m.totalPss),
    m.masters ? MiB(m.masterPss) : '-',
    MiB(m.workerPssSum),
    MiB(m.workerUssSum),
    MiB(m.workerUssMedian),
    MiB(m.workerPssMedian),
    MiB(m.workerRssMedian),
    m.rps,
  ];
  out.push(
    table(
      ['mode', 'procs', 'total PSS MiB', 'master PSS', 'workers PSS', 'workers USS sum', 'USS median', 'PSS median', 'RSS median', 'req/s'],
      [mrow(memory.exec), mrow(memory.fork)],
    ),
  );
  const memRatio = memory.fork.totalPss / memory.exec.totalPss;
  out.push(`   fork / exec total PSS = ${memRatio.toFixed(3)} (target <= 0.15: ${verdict(memRatio <= 0.15)}); worker USS sum fork / exec = ${(memory.fork.workerUssSum / memory.exec.workerUssSum).toFixed(3)}`);
  out.push('');
  out.push('   median worker, /proc/<pid>/smaps_rollup (MiB):');
  const keys = ['Rss', 'Pss', 'Pss_Anon', 'Pss_File', 'Pss_Shmem', 'Shared_Clean', 'Shared_Dirty', 'Private_Clean', 'Private_Dirty', 'Anonymous'];
  const masterRow = memory.fork.masterBreakdown ? [['fork master', ...keys.map((k) => MiB(memory.fork.masterBreakdown[k] ?? 0))]] : [];
  out.push(
    table(
      ['process', ...keys],
      [['exec worker', ...keys.map((k) => MiB(memory.exec.workerBreakdownMedian[k]))], ['fork worker', ...keys.map((k) => MiB(memory.fork.workerBreakdownMedian[k]))], ...masterRow],
    ),
  );
  out.push('');
  out.push(`2. Worker start latency: spawner.spawnWorker() to ready (pid handshake), ${samples} sequential samples after 1 warm-up`);
  out.push(
    table(
      ['app', 'mode', 'p50 ms', 'p95 ms', 'min', 'max', 'first (warm-up)', 'spawner start ms', 'fork answer p50', 'faults at ready', 'stop p50 ms'],
      start.map((r) => [r.app, r.mode, r.p50, r.p95, r.min, r.max, r.firstMs, r.spawnerStartMs, r.forkAnswerP50 ?? '-', r.faultsP50 ?? '-', r.stopP50]),
    ),
  );
  out.push(
    `   fork floor of this machine (php: pcntl_fork() until the child wrote 1 byte, p50): bare php ${floor.bare.p50Ms} ms (RSS ${MiB(floor.bare.rssBytes)} MiB), ` +
      `app preloaded ${floor.framework.p50Ms} ms (RSS ${MiB(floor.framework.rssBytes)} MiB)`,
  );
  const ratios = {};
  for (const appName of ['framework', 'hello']) {
    const e = start.find((r) => r.app === appName && r.mode === 'exec');
    const f = start.find((r) => r.app === appName && r.mode === 'fork');
    ratios[appName] = { execOverFork: round(e.p50 / f.p50, 1), forkP50: f.p50 };
    out.push(
      `   ${appName}: exec p50 / fork p50 = ${ratios[appName].execOverFork}x (target >= 80x: ${verdict(ratios[appName].execOverFork >= 80)}); ` +
        `fork p50 = ${f.p50} ms (target <= 3 ms: ${verdict(f.p50 <= 3)})`,
    );
  }
  out.push('');
  out.push('3. Reset (SIGHUP -> rolling reset of the http pool) under load on 4 keep-alive connections');
  out.push(
    table(
      ['mode', 'workers', 'elapsed_ms (log)', 'signal->log ms', 'new master ready ms', 'old gone ms', 'req during reset', 'req total', 'failed', 'p99 ms', 'max ms'],
      reset.map((r) => [r.mode, r.workers, r.elapsedMs, r.signalToRecordMs, r.newMasterReadyMs ?? '-', r.oldGoneMs, r.requestsDuringReset, r.requests, r.failed, r.p99Ms, r.maxMs]),
    ),
  );
  for (const n of resetSizes) {
    const e = reset.find((r) => r.workers === n && r.mode === 'exec');
    const f = reset.find((r) => r.workers === n && r.mode === 'fork');
    out.push(`   ${n} workers: exec / fork reset time = ${round(e.elapsedMs / f.elapsedMs, 1)}x`);
  }
  const failed = reset.reduce((a, r) => a + r.failed, 0);
  out.push(`   failed requests during resets: ${failed} (must be 0: ${verdict(failed === 0)})`);
  for (const r of reset) if (r.errors.length) out.push(`   ${r.mode}/${r.workers}: ${r.errors.join('; ')}`);
  out.push('');
  out.push('CPU during each phase, in cores (this machine has ' + machine.nproc + '): ours = this script, rrts and PHP; other = everything else');
  out.push(table(['phase', 'seconds', 'ours', 'other', 'steal'], loads.map((l) => [l.phase, l.seconds, l.ourCores, l.otherCores, l.stealCores])));
  const noisy = loads.filter((l) => l.otherCores > 0.15);
  if (noisy.length) out.push(`   note: other processes used > 0.15 cores during ${noisy.map((l) => l.phase).join(', ')}: those numbers are disturbed`);
  out.push('');
  out.push(`total run time ${totalSeconds} s`);

  const result = {
    bench: 'fork',
    quick,
    machine,
    app,
    memory,
    memoryRatio: round(memRatio, 4),
    start,
    startRatios: ratios,
    forkFloor: floor,
    reset,
    resetFailed: failed,
    cpu: loads,
    targets: {
      memoryRatioMax015: memRatio <= 0.15,
      startRatioMin80: ratios.framework.execOverFork >= 80,
      forkP50Max3ms: ratios.framework.forkP50 <= 3,
      resetNoFailures: failed === 0,
    },
    totalSeconds,
  };
  process.stdout.write(`${out.join('\n')}\n`);
  const json = JSON.stringify(result);
  if (values.json) fs.writeFileSync(values.json, `${json}\n`);
  else process.stdout.write(`${json}\n`);
}

main().then(
  () => process.exit(0),
  async (err) => {
    if (!interrupted) log(`error: ${err instanceof Error ? err.message : err}`);
    await cleanup().catch(() => undefined);
    process.exit(1);
  },
);
