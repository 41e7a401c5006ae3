#!/usr/bin/env node
// Fork mode vs exec mode (and php-fpm) on a framework-sized app, side by side in one run.
//
// The app: test/bench/app/preload.php loads Debian's Laravel 8 framework (apt-get install -y php-laravel-framework),
// boots a Container, an Events\Dispatcher and a Router with 50 routes (app/router.php), and loads the ~530 classes
// of 22 Illuminate components found by scanning the installed directory (~11 MiB of opcache;
// RRTS_BENCH_COMPONENTS=all loads all of them, ~1000); test/bench/app/worker.php answers every request through that
// Router with php/lib/rr.php's HttpWorker. exec mode: each worker is `php -d opcache.enable_cli=1
// test/bench/app/worker.php` and boots the framework itself; fork mode: the same config plus
// `server.fork.enabled: true` and `server.fork.preload: test/bench/app/preload.php`. php-fpm: test/bench/fpm-app.php
// boots the same router on every request, behind nginx.
//
// What it measures (8 workers unless said otherwise):
//   1. memory: after 1000 requests (keep-alive, 8 connections) to `rrts serve` (exec, fork) and to php-fpm
//      (pm static, 8 children) + nginx: total PSS of the PHP side (fork: root + master + parked spare + workers;
//      php-fpm: master + children) and per-worker USS (sum, median), from /proc/<pid>/smaps_rollup (dist's readMemory), plus the median
//      worker's smaps_rollup fields. Ratio fork / exec total PSS (target <= 0.15).
//   2. worker start latency: the spawner classes from dist/ directly (ExecSpawner, ForkSpawner; pino at
//      'silent'), 30 sequential `await spawner.spawnWorker({})` after one untimed warm-up, each worker stopped
//      afterwards (not timed) and the next start 50 ms later (SAMPLE_GAP_MS: a fork master refills its spare 20 ms
//      after a fork, so with spares each sample is a start from a parked spare, and without spares a fork on
//      request), p50/p95 for the framework app and for php/worker.php (hello; fork without preload).
//      Also: the master's answer to `fork`, the new worker's page faults until ready, and the machine's fork floor
//      (pcntl_fork() until the child runs, in php). Targets: exec p50 / fork p50 >= 80, fork p50 <= 3 ms.
//   3. reset: `rrts serve` with 4 and 16 workers per mode, reset as `rrts reset http` does it (resetter.Reset over
//      RPC: a rolling reset; fork mode: the root forks a new master) while 4 keep-alive connections send requests; the
//      reset time is the wall time of that call (it answers once the new workers serve), with the `elapsed_ms` of
//      the `http: workers reset` log record (production JSON log on stderr), the time to the new fork master's ready
//      record, and until the old workers (and the old master) are gone. Failed requests must be 0; 16 fork workers
//      in <= 150 ms is the target. Then 16 fork workers once more on an idle server (no requests during the reset),
//      which the target does not say it excludes.
//   The CPU other processes used during each phase is reported (a busy machine disturbs the numbers).
// Prints the tables and ratios on stdout, progress on stderr, and the result as JSON on stdout's last line.
//
// Run (after `npm run build`; needs `apt-get install -y php-laravel-framework php-fpm nginx`):
//   node test/bench/fork.mjs            # full: about 2 min on 2 cores
//   node test/bench/fork.mjs --quick    # 300 requests, 6 start samples, resets of 16 fork workers only, no fork floor (~25 s)
//   node test/bench/fork.mjs --json /tmp/fork.json
// Everything listens on and talks to 127.0.0.1 only, config files live in a temp dir, and every process started
// (rrts, php-fpm, nginx, PHP workers and masters) is stopped by pid at the end, on SIGINT/SIGTERM and on error; the
// temp dir is removed.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import {
  childrenOf,
  descendants,
  cleanup,
  HERE,
  HOST,
  freePort,
  httpGet,
  log,
  machineFacts,
  makeTempDir,
  median,
  MiB,
  noteDescendants,
  onCleanup,
  percentile,
  phase,
  readProcStat,
  REPO,
  requireTools,
  round,
  rrtsRevision,
  runMain,
  sleep,
  smapsRollup,
  startAppLoad,
  startFpmNginx,
  startProcess,
  stopFpmNginx,
  stopProcess,
  table,
  trackedPids,
  waitFor,
  alive,
} from './lib.mjs';

const DIST = path.join(REPO, 'dist', 'src');
const RRTS_BIN = path.join(REPO, 'bin', 'rrts');
const APP_PRELOAD = path.join(HERE, 'app', 'preload.php');
const APP_WORKER = path.join(HERE, 'app', 'worker.php');
const HELLO_WORKER = path.join(REPO, 'php', 'worker.php');
const PHP_FLAGS = ['-d', 'opcache.enable_cli=1'];
/** dist's RPC client (rrts workers uses it), loaded in main() */
let RpcClient = null;

const USAGE = `usage: node test/bench/fork.mjs [--quick] [--json FILE]
  --quick      300 requests, 6 start samples, reset of 16 fork workers only (not waiting for the old ones to exit), no fork floor (~20 s)
  --json FILE  write the JSON result to FILE instead of stdout's last line
  -h, --help`;

// ---------------------------------------------------------------------------------------------- rrts serve

/** Start `rrts serve` on a generated config; resolves once it printed "server started" and `workers` PHP workers run. */
async function startRrts(tmpDir, { name, mode, workers }) {
  const port = await freePort();
  const rpcPort = await freePort();
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
    'rpc:',
    `  listen: "tcp://${HOST}:${rpcPort}"`,
    'logs:',
    '  mode: production',
    '  level: info',
    '',
  ].join('\n');
  const file = path.join(dir, '.rr.yaml');
  fs.writeFileSync(file, config);
  const s = { name, mode, port, rpcPort, rpc: null, records: [] };
  // production-mode JSON records on stderr, each stamped with when it arrived here
  const onLine = (line, stream, at) => {
    if (stream !== 'stderr' || !line.startsWith('{')) return;
    try {
      s.records.push({ at, ...JSON.parse(line) });
    } catch {
      /* not a record */
    }
  };
  s.proc = startProcess(name, process.execPath, [RRTS_BIN, 'serve', '-c', file], { cwd: dir, env: { ...process.env, NO_COLOR: '1' }, onLine, graceMs: 20_000 });
  s.pid = s.proc.pid;
  const detail = () => `\nrrts output (tail): ${s.proc.out.slice(-3000)}`;
  const t0 = Date.now();
  await waitFor(() => s.proc.out.includes('server started') || s.proc.exit !== null, `${name}: rrts to start`, 120_000, detail);
  if (s.proc.exit) throw new Error(`${name}: rrts exited at start (${JSON.stringify(s.proc.exit)}): ${s.proc.out.slice(-3000)}`);
  s.rpc = await RpcClient.connect(`tcp://${HOST}:${rpcPort}`, dir);
  await waitForAsync(async () => (await workerPids(s)).length === workers, `${name}: ${workers} workers`, 60_000, detail);
  s.startMs = Date.now() - t0;
  const res = await httpGet(port, '/', { timeoutMs: 60_000 });
  if (res.status !== 200 || !res.body.startsWith('home pid')) {
    throw new Error(`${name}: GET / answered ${res.status} ${JSON.stringify(res.body.slice(0, 300))}`);
  }
  return s;
}

/**
 * The http pool's workers, as rrts reports them (informer.Workers over RPC): in fork mode the master may also hold
 * parked spares (server.fork.spares), which are its children but not workers yet. Every PHP process under rrts
 * is remembered for the cleanup.
 */
async function workerPids(s) {
  noteDescendants(s.proc);
  const { workers } = await s.rpc.call('informer.Workers', 'http', 10_000);
  return (workers ?? []).map((w) => w.pid).sort((a, b) => a - b);
}

/** fork mode: the generation master(s), children of the root (rrts' PHP child); exec mode: none. */
function masterPids(s) {
  return s.mode === 'fork' ? childrenOf(s.pid).flatMap((root) => childrenOf(root)) : [];
}

/** Poll an async predicate every 50 ms until it is true; throws after timeoutMs. */
async function waitForAsync(predicate, what, timeoutMs, detail = () => '') {
  const until = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}${detail()}`);
    await sleep(50);
  }
}

/** SIGTERM (rrts's graceful stop), SIGKILL after 20 s; then SIGKILL any PHP process of it that outlived it. */
async function stopRrts(s) {
  s.rpc?.close();
  await stopProcess(s.proc);
  if (/outlived|SIGKILLed/.test(s.proc.stopNote)) log(`${s.name}: ${s.proc.stopNote}`);
}

/** The text of a log record. */
function msgOf(record) {
  return String(record.msg ?? record.message ?? '');
}

// ---------------------------------------------------------------------------------------------- memory

function memoryBreakdown(workers, masters, requests, stats) {
  const sum = (xs, k) => xs.reduce((a, x) => a + x[k], 0);
  const breakdown = {};
  for (const k of ['Rss', 'Pss', 'Pss_Anon', 'Pss_File', 'Pss_Shmem', 'Shared_Clean', 'Shared_Dirty', 'Private_Clean', 'Private_Dirty', 'Anonymous']) {
    breakdown[k] = median(workers.map((x) => x.rollup?.[k] ?? 0));
  }
  return {
    requests: stats.sent,
    rps: Math.round(stats.sent / (stats.elapsedMs / 1000)),
    workers: workers.length,
    masters: masters.length, // fork: the master, the root and the parked spares; php-fpm: its master
    totalPss: sum(workers, 'pss') + sum(masters, 'pss'),
    masterPss: sum(masters, 'pss'),
    masterUss: sum(masters, 'uss'),
    workerPssSum: sum(workers, 'pss'),
    workerUssSum: sum(workers, 'uss'),
    workerUssMedian: median(workers.map((x) => x.uss)),
    workerPssMedian: median(workers.map((x) => x.pss)),
    workerRssMedian: median(workers.map((x) => x.rss)),
    workerBreakdownMedian: breakdown,
    masterBreakdown: masters[0]?.rollup ?? null,
  };
}

const readWith = (readMemory) => async (pid) => ({ pid, ...(await readMemory(pid)), rollup: smapsRollup(pid) });

async function measureMemory(tmpDir, mode, requests, readMemory) {
  const s = await startRrts(tmpDir, { name: `memory-${mode}`, mode, workers: 8 });
  log(`memory ${mode}: rrts up with 8 workers in ${s.startMs} ms; ${requests} requests over 8 connections`);
  const stats = await startAppLoad(s.port, 8, requests).done;
  if (stats.failed) throw new Error(`memory ${mode}: ${stats.failed} of ${stats.sent} requests failed: ${stats.errors.join('; ')}`);
  const workerSet = new Set(await workerPids(s));
  // fork mode: every PHP process under rrts that is not a worker counts with the master: the root, the master
  // (listed first, its breakdown is shown) and its parked spares
  const masters = masterPids(s);
  const spares = masters.flatMap((pid) => childrenOf(pid)).filter((pid) => !workerSet.has(pid));
  const others = descendants(s.pid).filter((pid) => !workerSet.has(pid) && !masters.includes(pid) && !spares.includes(pid));
  const w = await Promise.all([...workerSet].map(readWith(readMemory)));
  const m = await Promise.all([...masters, ...others, ...spares].map(readWith(readMemory)));
  if (w.length !== 8 || w.some((x) => x.pss === undefined)) throw new Error(`memory ${mode}: expected 8 live workers, found ${w.length}`);
  await stopRrts(s);
  return { mode, ...memoryBreakdown(w, m, requests, stats), spares: spares.length };
}

/** php-fpm (pm static, 8 children) running fpm-app.php behind nginx: the fpm master + children, as rrts' PHP side. */
async function measureFpmMemory(tmpDir, requests, readMemory) {
  const inst = await startFpmNginx({
    parentDir: tmpDir,
    name: 'memory-fpm',
    workers: 8,
    script: 'fpm-app.php',
    alsoFiles: ['app/router.php'],
    label: 'memory: php-fpm + nginx',
  });
  log(`memory fpm: php-fpm up with ${inst.children().length} children; ${requests} requests over 8 connections through nginx`);
  const stats = await startAppLoad(inst.port, 8, requests).done;
  if (stats.failed) throw new Error(`memory fpm: ${stats.failed} of ${stats.sent} requests failed: ${stats.errors.join('; ')}`);
  const w = await Promise.all(inst.children().map(readWith(readMemory)));
  const m = [await readWith(readMemory)(inst.fpm.pid)];
  if (w.length !== 8 || w.some((x) => x.pss === undefined)) throw new Error(`memory fpm: expected 8 live php-fpm children, found ${w.length}`);
  await stopFpmNginx(inst);
  return { mode: 'php-fpm', ...memoryBreakdown(w, m, requests, stats), spares: 0 };
}

// ---------------------------------------------------------------------------------------------- start latency

/** Between two start samples: more than the 20 ms after a fork when a fork master refills its spare. */
const SAMPLE_GAP_MS = 50;

async function measureStart({ app, mode, spares, samples, ExecSpawner, ForkSpawner, logger }) {
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
          spares, // as the pool passes server.fork.spares (an rrts without spares ignores it)
        });
  const unhook = onCleanup(() => spawner.close());
  const t0 = performance.now();
  await spawner.start();
  const startMs = performance.now() - t0;
  if (spawner.masterPid) trackedPids.add(spawner.masterPid);
  // fork mode: time the master's answer to `fork` (its pcntl_fork() and reply) apart from the whole start, by
  // wrapping the (private) current master's fork() of this spawner instance; skipped if the internals change.
  let forkAnswerMs = null;
  const master = spawner.master;
  if (master && typeof master.fork === 'function') {
    const fork = master.fork.bind(master);
    master.fork = async (forkEnv) => {
      const t = performance.now();
      const pid = await fork(forkEnv);
      forkAnswerMs = performance.now() - t;
      return pid;
    };
  }
  const one = async () => {
    forkAnswerMs = null;
    const t = performance.now();
    const worker = await spawner.spawnWorker({});
    const ms = performance.now() - t;
    const faults = readProcStat(worker.pid)?.minflt ?? null; // page faults the new worker took until it was ready
    trackedPids.add(worker.pid);
    const s = performance.now();
    await worker.stop();
    const stopMs = performance.now() - s;
    trackedPids.delete(worker.pid);
    return { ms, stopMs, faults, forkAnswerMs };
  };
  const warm = await one(); // not counted: the first fork compiles the worker script into the shared opcache
  await sleep(SAMPLE_GAP_MS);
  const times = [];
  const stops = [];
  const faults = [];
  const answers = [];
  for (let i = 0; i < samples; i++) {
    const r = await one();
    await sleep(SAMPLE_GAP_MS);
    times.push(r.ms);
    stops.push(r.stopMs);
    if (r.faults !== null) faults.push(r.faults);
    if (r.forkAnswerMs !== null) answers.push(r.forkAnswerMs);
  }
  await spawner.close();
  unhook();
  if (spawner.masterPid) trackedPids.delete(spawner.masterPid);
  const sorted = [...times].sort((a, b) => a - b);
  return {
    app,
    mode,
    spares: mode === 'fork' ? spares : null,
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

/**
 * `rrts reset http` (resetter.Reset over RPC) under load, timed until it answers; then (unless `quick`) until the old
 * workers and master have exited; the load runs on for 0.3 s more.
 */
async function measureReset(tmpDir, mode, workers, quick, connections) {
  const name = `reset-${mode}-${workers}${connections ? '' : '-idle'}`;
  const s = await startRrts(tmpDir, { name, mode, workers });
  const oldWorkers = await workerPids(s);
  const oldMasters = masterPids(s);
  const load = connections > 0 ? startAppLoad(s.port, connections) : noLoad();
  try {
    return { ...(await resetUnderLoad(s, { name, mode, workers, quick, load, oldWorkers, oldMasters })), connections };
  } finally {
    await load.stop(); // also when the reset failed: the load never outlives its measurement
  }
}

/** The load of an idle reset: nothing is sent. */
function noLoad() {
  const stats = { sent: 0, ok: 0, failed: 0, errors: [], latencies: [], maxMs: 0 };
  return { stats, stop: async () => stats };
}

async function resetUnderLoad(s, { name, mode, workers, quick, load, oldWorkers, oldMasters }) {
  await sleep(500); // steady load first
  const before = load.stats.sent;
  const seenRecords = s.records.length;
  const detail = () => `\nrrts output (tail): ${s.proc.out.slice(-3000)}`;
  // what `rrts reset http` does: resetter.Reset over RPC, answered once the new workers serve
  const t0 = performance.now();
  await s.rpc.call('resetter.Reset', 'http', 120_000).catch((err) => {
    throw new Error(`${name}: resetter.Reset failed: ${err.message}${detail()}`);
  });
  const rpcMs = performance.now() - t0; // the RPC answers once the old workers are gone too
  let record = null;
  await waitFor(
    () => {
      record = s.records.slice(seenRecords).find((r) => msgOf(r).includes('http: workers reset')) ?? null;
      return record !== null;
    },
    `${name}: the 'http: workers reset' record`,
    10_000,
    detail,
  );
  // the reset's latency: until the fresh workers serve (the pool's record), not until the old ones have left
  const tookOver = s.records.slice(seenRecords).find((r) => typeof r.took_over_ms === 'number');
  const resetMs = tookOver ? tookOver.took_over_ms : rpcMs;
  // fork mode: the new master's "is ready" record splits the reset into master boot + forking the workers
  const masterReady = s.records.slice(seenRecords).find((r) => /fork master \d+ is ready/.test(msgOf(r)));
  const duringReset = load.stats.sent - before;
  let oldGoneMs = null;
  if (!quick) {
    await waitFor(() => [...oldWorkers, ...oldMasters].every((pid) => !alive(pid)), `${name}: the old workers to leave`, 60_000, detail);
    oldGoneMs = performance.now() - t0;
  }
  await sleep(300); // and serve on the new ones for a moment
  const stats = await load.stop();
  const now = await workerPids(s);
  if (now.length !== workers || now.some((pid) => oldWorkers.includes(pid))) {
    throw new Error(`${name}: after the reset ${now.length} workers run, ${now.filter((p) => oldWorkers.includes(p)).length} of them old`);
  }
  await stopRrts(s);
  const sorted = [...stats.latencies].sort((a, b) => a - b);
  return {
    mode,
    workers,
    resetMs: round(resetMs, 1),
    rpcMs: round(rpcMs, 1),
    elapsedMs: record.elapsed_ms,
    newMasterReadyMs: masterReady ? round(masterReady.at - t0, 1) : null,
    oldGoneMs: round(oldGoneMs, 1), // null with --quick (not waited for)
    requests: stats.sent,
    requestsDuringReset: duringReset,
    failed: stats.failed,
    errors: stats.errors,
    p99Ms: round(percentile(sorted, 99), 1),
    maxMs: round(stats.maxMs, 1),
  };
}

// ---------------------------------------------------------------------------------------------- checks

function verdict(ok) {
  return ok ? 'met' : 'MISSED';
}

function checkSetup() {
  for (const f of ['spawn/exec.js', 'spawn/fork/spawner.js', 'pool/memory.js', 'cli/main.js']) {
    if (!fs.existsSync(path.join(DIST, f))) throw new Error(`rrts is not built (dist/src/${f} missing): run 'npm run build' first`);
  }
  requireTools(['php-cli', 'php-laravel-framework', 'php-fpm', 'nginx']);
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
    throw new Error(
      `the bench app does not boot (is php-laravel-framework installed? apt-get install -y php-laravel-framework):\n${probe.stderr}${probe.stdout}`,
    );
  }
  return JSON.parse(probe.stdout.trim().split('\n').pop());
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
  const samples = quick ? 6 : 30;
  // [mode, workers, keep-alive connections sending requests during the reset (0: an idle server)]
  const resets = quick
    ? [
        ['fork', 16, 4],
        ['fork', 16, 0],
      ]
    : [
        ['exec', 4, 4],
        ['fork', 4, 4],
        ['exec', 16, 4],
        ['fork', 16, 4],
        ['fork', 16, 0],
      ];
  const began = Date.now();

  const app = checkSetup();
  const machine = { ...machineFacts(), ...rrtsRevision(REPO), root: undefined };
  log(`app: ${app.classes} classes loaded (${app.failed} skipped), ${app.routes} routes, ${MiB(app.opcacheBytes)} MiB of opcache, boot ${app.bootMs} ms`);
  const tmpDir = makeTempDir('rrts-bench-fork-');

  const { readMemory } = await import(pathToFileURL(path.join(DIST, 'pool', 'memory.js')).href);
  const { ExecSpawner } = await import(pathToFileURL(path.join(DIST, 'spawn', 'exec.js')).href);
  const { ForkSpawner } = await import(pathToFileURL(path.join(DIST, 'spawn', 'fork', 'spawner.js')).href);
  ({ RpcClient } = await import(pathToFileURL(path.join(DIST, 'cli', 'rpc-client.js')).href));
  // the pool's default of parked fork children (server.fork.spares), if this rrts has them
  const serverSection = await import(pathToFileURL(path.join(DIST, 'config', 'sections', 'server.js')).href).catch(() => ({}));
  const defaultSpares = Number(serverSection.DEFAULT_FORK_SPARES ?? 0);
  const { default: pino } = await import('pino');
  const logger = pino({ level: 'silent' });

  const loads = [];
  // 1. memory
  const memory = {};
  for (const mode of ['exec', 'fork', 'php-fpm']) {
    const { result, load } = await phase(`memory ${mode}`, () =>
      mode === 'php-fpm' ? measureFpmMemory(tmpDir, requests, readMemory) : measureMemory(tmpDir, mode, requests, readMemory),
    );
    memory[mode === 'php-fpm' ? 'fpm' : mode] = result;
    loads.push(load);
  }

  // 2. start latency
  // fork with the pool's default spares (what `rrts serve` runs); in full mode also without spares when the default
  // has some (the bare fork: master's pcntl_fork() and the child's start on the request's path)
  const start = [];
  const variants = [['exec', null], ['fork', defaultSpares], ...(defaultSpares > 0 && !quick ? [['fork', 0]] : [])];
  for (const appName of ['framework', 'hello']) {
    for (const [mode, spares] of variants) {
      const what = `${appName} ${mode}${mode === 'fork' ? ` (spares ${spares})` : ''}`;
      log(`start latency: ${what}, ${samples} samples`);
      const { result, load } = await phase(`start ${what}`, () => measureStart({ app: appName, mode, spares, samples, ExecSpawner, ForkSpawner, logger }));
      start.push(result);
      loads.push(load);
    }
  }

  const floor = quick ? null : forkFloor();

  // 3. reset under load (and idle)
  const reset = [];
  for (const [mode, n, connections] of resets) {
    log(`reset: ${mode} with ${n} workers, ${connections ? `${connections} connections sending requests` : 'no load'}`);
    const { result, load } = await phase(`reset ${mode} ${n}${connections ? '' : ' idle'}`, () => measureReset(tmpDir, mode, n, quick, connections));
    reset.push(result);
    loads.push(load);
  }
  await cleanup();
  const totalSeconds = round((Date.now() - began) / 1000, 1);

  // ------------------------------------------------------------------ report
  const out = [];
  out.push(
    `rrts fork vs exec vs php-fpm: ${machine.nproc} CPUs (${machine.cpuModel}), Linux ${machine.kernel}, ${machine.php}, node ${machine.node}, rrts ${machine.commit ?? '?'}${machine.dirtySrcFiles ? ` (+${machine.dirtySrcFiles} changed src/php files)` : ''}`,
  );
  out.push(
    `app: Laravel ${machine.laravel} (Debian): ${app.classes} Illuminate classes (${app.components.length} components${process.env.RRTS_BENCH_COMPONENTS ? `, RRTS_BENCH_COMPONENTS=${process.env.RRTS_BENCH_COMPONENTS}` : ''}) + Container/Events/Router with ${app.routes} routes; ` +
      `${app.scripts} scripts, ${MiB(app.opcacheBytes)} MiB of opcache; cold boot ${app.bootMs} ms${quick ? '; --quick' : ''}`,
  );
  out.push('');
  out.push(`1. Memory of the PHP side, 8 workers, after ${requests} requests (8 keep-alive connections; php-fpm: through nginx, fpm-app.php)`);
  const mrow = (m) => [
    m.mode,
    m.masters ? `${m.masters - m.spares} + ${m.workers}${m.spares ? ` + ${m.spares} spare` : ''}` : `${m.workers}`, // fork: root and master
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
      ['mode', 'procs', 'total PSS MiB', 'master (+root, spare) PSS', 'workers PSS', 'workers USS sum', 'USS median', 'PSS median', 'RSS median', 'req/s'],
      [mrow(memory.exec), mrow(memory.fork), mrow(memory.fpm)],
    ),
  );
  const memRatio = memory.fork.totalPss / memory.exec.totalPss;
  const memRatios = {
    forkOverExec: round(memRatio, 4),
    forkOverFpm: round(memory.fork.totalPss / memory.fpm.totalPss, 4),
    execOverFpm: round(memory.exec.totalPss / memory.fpm.totalPss, 4),
    ussMedianForkOverExec: round(memory.fork.workerUssMedian / memory.exec.workerUssMedian, 4),
    ussMedianForkOverFpm: round(memory.fork.workerUssMedian / memory.fpm.workerUssMedian, 4),
  };
  out.push(
    `   fork / exec total PSS = ${memRatio.toFixed(3)} (target <= 0.15: ${verdict(memRatio <= 0.15)}); worker USS sum fork / exec = ${(memory.fork.workerUssSum / memory.exec.workerUssSum).toFixed(3)}`,
  );
  out.push(
    `   fork / php-fpm total PSS = ${memRatios.forkOverFpm.toFixed(3)}; exec / php-fpm = ${memRatios.execOverFpm.toFixed(3)}; worker USS median fork / php-fpm child = ${memRatios.ussMedianForkOverFpm.toFixed(3)}`,
  );
  out.push('');
  out.push('   median worker (php-fpm: child), /proc/<pid>/smaps_rollup (MiB):');
  const keys = ['Rss', 'Pss', 'Pss_Anon', 'Pss_File', 'Pss_Shmem', 'Shared_Clean', 'Shared_Dirty', 'Private_Clean', 'Private_Dirty', 'Anonymous'];
  const masterRow = (label, m) => (m.masterBreakdown ? [[label, ...keys.map((k) => MiB(m.masterBreakdown[k] ?? 0))]] : []);
  out.push(
    table(
      ['process', ...keys],
      [
        ['exec worker', ...keys.map((k) => MiB(memory.exec.workerBreakdownMedian[k]))],
        ['fork worker', ...keys.map((k) => MiB(memory.fork.workerBreakdownMedian[k]))],
        ...masterRow('fork master', memory.fork),
        ['php-fpm child', ...keys.map((k) => MiB(memory.fpm.workerBreakdownMedian[k]))],
        ...masterRow('php-fpm master', memory.fpm),
      ],
    ),
  );
  out.push('');
  out.push(`2. Worker start latency: spawner.spawnWorker() to ready (pid handshake), ${samples} sequential samples 50 ms apart after 1 warm-up`);
  out.push(
    table(
      ['app', 'mode (spares)', 'p50 ms', 'p95 ms', 'min', 'max', 'first (warm-up)', 'spawner start ms', 'fork answer p50', 'faults at ready', 'stop p50 ms'],
      start.map((r) => [
        r.app,
        r.mode === 'fork' ? `fork (${r.spares})` : r.mode,
        r.p50,
        r.p95,
        r.min,
        r.max,
        r.firstMs,
        r.spawnerStartMs,
        r.forkAnswerP50 ?? '-',
        r.faultsP50 ?? '-',
        r.stopP50,
      ]),
    ),
  );
  if (floor) {
    out.push(
      `   fork floor of this machine (php: pcntl_fork() until the child wrote 1 byte, p50): bare php ${floor.bare.p50Ms} ms (RSS ${MiB(floor.bare.rssBytes)} MiB), ` +
        `app preloaded ${floor.framework.p50Ms} ms (RSS ${MiB(floor.framework.rssBytes)} MiB)`,
    );
  } else {
    out.push('   (fork floor of this machine: not measured with --quick)');
  }
  const ratios = {};
  for (const appName of ['framework', 'hello']) {
    const e = start.find((r) => r.app === appName && r.mode === 'exec');
    const f = start.find((r) => r.app === appName && r.mode === 'fork' && r.spares === defaultSpares);
    const bare = start.find((r) => r.app === appName && r.mode === 'fork' && r.spares === 0);
    ratios[appName] = {
      execOverFork: round(e.p50 / f.p50, 1),
      forkP50: f.p50,
      forkP95: f.p95,
      execP50: e.p50,
      execP95: e.p95,
      spares: defaultSpares,
      forkNoSparesP50: bare?.p50 ?? null,
    };
    out.push(
      `   ${appName}: exec p50 / fork p50 = ${ratios[appName].execOverFork}x (target >= 80x: ${verdict(ratios[appName].execOverFork >= 80)}); ` +
        `fork p50 = ${f.p50} ms (target <= 3 ms: ${verdict(f.p50 <= 3)})${defaultSpares ? ` (with the default ${defaultSpares} spare${bare && bare !== f ? `; without spares ${bare.p50} ms` : ''})` : ''}`,
    );
  }
  out.push('');
  out.push('3. Reset (`rrts reset http`: resetter.Reset over RPC, a rolling reset of the http pool) under load on 4 keep-alive connections, and idle');
  out.push(
    table(
      [
        'mode',
        'workers',
        'load (connections)',
        'rrts reset ms',
        'elapsed_ms (log)',
        'new master ready ms',
        'old gone ms',
        'req during reset',
        'req total',
        'failed',
        'p99 ms',
        'max ms',
      ],
      reset.map((r) => [
        r.mode,
        r.workers,
        r.connections || 'idle',
        r.resetMs,
        r.elapsedMs,
        r.newMasterReadyMs ?? '-',
        r.oldGoneMs ?? '-',
        r.requestsDuringReset,
        r.requests,
        r.failed,
        r.p99Ms,
        r.maxMs,
      ]),
    ),
  );
  for (const n of [...new Set(reset.map((r) => r.workers))]) {
    const e = reset.find((r) => r.workers === n && r.mode === 'exec' && r.connections);
    const f = reset.find((r) => r.workers === n && r.mode === 'fork' && r.connections);
    if (e && f) out.push(`   ${n} workers: exec / fork reset time = ${round(e.resetMs / f.resetMs, 1)}x`);
  }
  const fork16 = reset.find((r) => r.workers === 16 && r.mode === 'fork' && r.connections);
  const fork16Idle = reset.find((r) => r.workers === 16 && r.mode === 'fork' && !r.connections);
  for (const r of [fork16, fork16Idle].filter(Boolean)) {
    out.push(`   16 fork workers, ${r.connections ? 'under load' : 'idle'}: ${r.resetMs} ms (target <= 150 ms: ${verdict(r.resetMs <= 150)})`);
  }
  const failed = reset.reduce((a, r) => a + r.failed, 0);
  out.push(`   failed requests during resets: ${failed} (must be 0: ${verdict(failed === 0)})`);
  for (const r of reset) if (r.errors.length) out.push(`   ${r.mode}/${r.workers}: ${r.errors.join('; ')}`);
  out.push('');
  out.push(`CPU during each phase, in cores (this machine has ${machine.nproc}): ours = this script, rrts, php-fpm, nginx and PHP; other = everything else`);
  out.push(
    table(
      ['phase', 'seconds', 'ours', 'other', 'steal'],
      loads.map((l) => [l.phase, l.seconds, l.ourCores, l.otherCores, l.stealCores]),
    ),
  );
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
    memoryRatio: memRatios.forkOverExec,
    memoryRatios: memRatios,
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
      resetFork16Max150ms: fork16 ? fork16.resetMs <= 150 : null, // under load
      resetFork16IdleMax150ms: fork16Idle ? fork16Idle.resetMs <= 150 : null,
      resetNoFailures: failed === 0,
    },
    totalSeconds,
  };
  process.stdout.write(`${out.join('\n')}\n`);
  const json = JSON.stringify(result);
  if (values.json) fs.writeFileSync(values.json, `${json}\n`);
  else process.stdout.write(`${json}\n`);
}

runMain(main, USAGE);
