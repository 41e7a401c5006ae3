#!/usr/bin/env node
// Throughput benchmark: rrts (exec and fork mode) vs php-fpm+nginx vs a raw Node http server, side by side in one
// run, on a hello page and on a framework-sized app.
//
// What it measures: requests/s and latency (p50, p99 from `wrk --latency`) of these targets (N PHP workers each):
//   hello (GET /, a small HTML page: method, absolute URI, pid; ~209 bytes)
//     rrts       rrts in exec mode (one php-cli per worker) running php/worker.php;
//     rrts-fork  the same with server.fork.enabled: true (one PHP master forks the workers);
//     fpm        php-fpm (pm = static, max_children = N) behind nginx (1 worker process): test/bench/fpm-hello.php;
//     node       a raw Node `http` server in one process (test/bench/node-hello.mjs): the ceiling of a one-loop front;
//     rrts-node-http  (only when named in --targets) rrts exec with RRTS_HTTP1=node: HTTP/1.1 through node:http,
//                the path rrts had before its own (src/http/h1/), to compare the two fronts in one run;
//   app (GET /r7/123 through Laravel's Router with 50 routes: "route 7 id 123 pid P\n")
//     app-rrts       rrts exec mode running test/bench/app/worker.php (the framework booted once per worker);
//     app-rrts-fork  the same in fork mode, the master preloading test/bench/app/preload.php;
//     app-fpm        php-fpm + nginx running test/bench/fpm-app.php (the framework booted on every request).
// Each target must first answer exactly its expected body. Then each is warmed up (wrk, not counted) and measured
// with `wrk -t2 -c32 -d10s --latency` for R rounds, the targets taking turns round-robin (the start target rotates
// each round) so machine noise hits all of them alike. Around each run it samples the CPU time (from /proc) of each
// target's front (the rrts node process, nginx, the raw node process), its PHP side, wrk, and the other processes
// of the machine (noise). Prints the tables, then the result as JSON on stdout's last line (or into --json FILE).
//
// Run (after `npm run build`; needs `apt-get install -y wrk nginx php-fpm php-laravel-framework`):
//   node test/bench/hello.mjs                   # 3 rounds x 10 s, 4 workers, 32 connections (~4 min)
//   node test/bench/hello.mjs --quick           # 1 round x 2 s (~25 s)
//   node test/bench/hello.mjs --targets rrts,fpm,node --workers 8 --rounds 5 --duration 20s --json /tmp/bench.json
//   node test/bench/hello.mjs --profile         # and an extra, separate rrts run under `node --cpu-prof`
// Everything it starts (rrts, php-fpm, nginx, the node server, wrk) listens on or talks to 127.0.0.1 only, runs
// from a temp dir, and is stopped by pid at the end, on SIGINT/SIGTERM and on error; the temp dir is removed.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  cleanup,
  describeExit,
  descendants,
  HERE,
  HOST,
  freePort,
  httpGet,
  log,
  machineFacts,
  makeTempDir,
  median,
  noteDescendants,
  parseDuration,
  REPO,
  requireTools,
  rrtsRevision,
  runMain,
  runWrk,
  sleep,
  startedProcesses,
  startFpmNginx,
  startProcess,
  stopProcess,
  stoppedCleanly,
  table,
  tail,
  UsageError,
  waitForOutput,
} from './lib.mjs';
import { helloPage, NODE_PAGE } from './node-hello.mjs';

// The rrts under test: this checkout, or another built tree given with --rrts-root (set in main()).
let RRTS_ROOT = REPO;
let RRTS_MAIN = '';
let RRTS_BIN = '';
let WORKER_PHP = '';
function setRrtsRoot(root) {
  RRTS_ROOT = path.resolve(root);
  RRTS_MAIN = path.join(RRTS_ROOT, 'dist', 'src', 'cli', 'main.js');
  RRTS_BIN = path.join(RRTS_ROOT, 'bin', 'rrts');
  WORKER_PHP = path.join(RRTS_ROOT, 'php', 'worker.php');
}
setRrtsRoot(REPO);
const NODE_HELLO = path.join(HERE, 'node-hello.mjs');
// The framework app (from this checkout, whatever --rrts-root says): the same code fork.mjs measures.
const APP_WORKER = path.join(HERE, 'app', 'worker.php');
const APP_PRELOAD = path.join(HERE, 'app', 'preload.php');
const APP_PATH = '/r7/123';
const APP_BODY = /^route 7 id 123 pid \d+\n$/;
// opcache for the CLI workers of the app, as fork.mjs runs them (irrelevant to throughput: compiled once per worker)
const APP_PHP_FLAGS = ['-d', 'opcache.enable_cli=1'];
// The hello page through the official SDK (PSR7Worker), given a downloaded copy of it with --sdk DIR.
const SDK_HELLO = path.join(HERE, 'sdk-hello.php');

/** The targets, in start and first-round order: which page, which server, which mode. */
const TARGETS = {
  rrts: { group: 'hello', server: 'rrts', mode: 'exec' },
  'rrts-fork': { group: 'hello', server: 'rrts', mode: 'fork' },
  fpm: { group: 'hello', server: 'fpm' },
  node: { group: 'hello', server: 'node' },
  'app-rrts': { group: 'app', server: 'rrts', mode: 'exec' },
  'app-rrts-fork': { group: 'app', server: 'rrts', mode: 'fork' },
  'app-fpm': { group: 'app', server: 'fpm' },
  // only with --sdk DIR (or RRTS_BENCH_SDK): the SDK is never part of the repository
  'sdk-rrts': { group: 'hello', server: 'rrts', mode: 'exec', sdk: true },
  'sdk-rrts-fork': { group: 'hello', server: 'rrts', mode: 'fork', sdk: true },
  // only when named in --targets: rrts's HTTP/1.1 served by node:http (RRTS_HTTP1=node), the front before src/http/h1/
  'rrts-node-http': { group: 'hello', server: 'rrts', mode: 'exec', nodeHttp: true },
};
const ALL_TARGETS = Object.keys(TARGETS);
const DEFAULT_TARGETS = ALL_TARGETS.filter((t) => !TARGETS[t].sdk && !TARGETS[t].nodeHttp);

const USAGE = `usage: node test/bench/hello.mjs [options]
  --workers N        PHP workers for rrts and php-fpm (default 4)
  --duration D       wrk duration per measured run, e.g. 10s, 1m (default 10s)
  --connections C    wrk connections (default 32)
  --threads T        wrk threads (default 2)
  --rounds R         measured rounds, targets round-robin (default 3)
  --warmup D         wrk warm-up per target before the rounds, not counted; 0 = none (default 2s)
  --quick            1 round of 2s, after a 1s warm-up of all targets at once
  --targets LIST     comma-separated subset of ${ALL_TARGETS.join(',')} (default all but the sdk
                     ones, which --sdk adds)
  --sdk DIR          also run the hello through the official SDK's PSR7Worker (targets sdk-rrts, sdk-rrts-fork):
                     DIR holds goridge/, worker/, http/ and log/, each with the package's src/ (default: the
                     RRTS_BENCH_SDK environment variable; see test/bench/README.md)
  --json FILE        write the JSON result to FILE instead of stdout's last line
  --profile          after the rounds, run a separate rrts under node --cpu-prof for one duration and
                     summarise its top self-time functions (the measured rounds run without the profiler)
  --keep-profile F   where to copy the .cpuprofile (default: <os tmpdir>/rrts-bench-<time>.cpuprofile)
  --rrts-root DIR    measure the rrts built in DIR (its bin/rrts, dist/, php/worker.php) instead of this
                     checkout, e.g. a clean \`git archive\` of a commit built with tsc (default: this repo)
  -h, --help`;

// ---------------------------------------------------------------------------------------------- options

function parseOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      workers: { type: 'string', default: '4' },
      duration: { type: 'string' },
      connections: { type: 'string', default: '32' },
      threads: { type: 'string', default: '2' },
      rounds: { type: 'string' },
      warmup: { type: 'string' },
      quick: { type: 'boolean', default: false },
      targets: { type: 'string' },
      sdk: { type: 'string' },
      json: { type: 'string' },
      profile: { type: 'boolean', default: false },
      'keep-profile': { type: 'string' },
      'rrts-root': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const int = (name, fallback, min) => {
    const text = values[name] ?? fallback;
    const n = Number(text);
    if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}, got '${text}'`);
    return n;
  };
  // --quick sets shorter defaults; options given explicitly still win.
  const q = values.quick;
  const opts = {
    workers: int('workers', '4', 1),
    connections: int('connections', '32', 1),
    threads: int('threads', '2', 1),
    rounds: int('rounds', q ? '1' : '3', 1),
    duration: parseDuration(values.duration ?? (q ? '2s' : '10s'), '--duration'),
    warmup: parseDuration(values.warmup ?? (q ? '1s' : '2s'), '--warmup', true),
    sdk: values.sdk ?? process.env.RRTS_BENCH_SDK ?? null,
    targets: [],
    json: values.json ?? null,
    profile: values.profile || Boolean(values['keep-profile']),
    keepProfile: values['keep-profile'] ?? null,
    quick: q,
    rrtsRoot: values['rrts-root'] ?? REPO,
  };
  const sdkTargets = opts.sdk ? ALL_TARGETS.filter((t) => TARGETS[t].sdk) : [];
  opts.targets =
    values.targets === undefined
      ? [...DEFAULT_TARGETS, ...sdkTargets]
      : values.targets
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
  for (const t of opts.targets) if (!TARGETS[t]) throw new UsageError(`--targets: unknown target '${t}' (${ALL_TARGETS.join(', ')})`);
  if (opts.sdk) {
    opts.sdk = path.resolve(opts.sdk);
    for (const dir of ['goridge', 'worker', 'http', 'log']) {
      if (!fs.existsSync(path.join(opts.sdk, dir, 'src'))) throw new UsageError(`--sdk ${opts.sdk}: ${dir}/src is missing (see test/bench/README.md)`);
    }
  } else if (opts.targets.some((t) => TARGETS[t].sdk)) {
    throw new UsageError('--targets sdk-rrts, sdk-rrts-fork need --sdk DIR (or RRTS_BENCH_SDK)');
  }
  if (opts.targets.length === 0) throw new UsageError('--targets: none given');
  opts.targets = ALL_TARGETS.filter((t) => opts.targets.includes(t)); // start order
  if (opts.threads > opts.connections) throw new UsageError('--threads must not exceed --connections (wrk refuses it)');
  return opts;
}

function checkSetup(opts) {
  const servers = new Set(opts.targets.map((t) => TARGETS[t].server));
  const needed = ['wrk'];
  if (servers.has('rrts') || opts.profile) needed.push('php-cli');
  if (servers.has('fpm')) needed.push('nginx', 'php-fpm');
  if (opts.targets.some((t) => TARGETS[t].group === 'app')) needed.push('php-laravel-framework');
  requireTools(needed);
  if (servers.has('rrts') || opts.profile) {
    if (!fs.existsSync(RRTS_MAIN)) throw new Error(`rrts is not built (${RRTS_MAIN} missing): run 'npm run build' in ${RRTS_ROOT}`);
    if (!fs.existsSync(WORKER_PHP)) throw new Error(`missing ${WORKER_PHP}`);
  }
}

// ---------------------------------------------------------------------------------------------- targets

function escapeRegExp(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The exact hello page a target must answer to GET /, with any pid. */
function expectedPageRegExp(page, port) {
  const text = helloPage({ ...page, method: 'GET', uri: `http://${HOST}:${port}/`, pid: '@PID@' });
  return new RegExp(`^${escapeRegExp(text).replace('@PID@', '\\d+')}$`);
}

/**
 * Check a target answers GET <its path> with 200 and the expected body. While `untilMs` > 0, connection errors
 * and 5xx (nginx before fpm is up) are retried until that much time has passed.
 */
async function checkTarget(t, untilMs = 0) {
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    let res;
    try {
      res = await httpGet(t.port, t.path, { timeoutMs: 10_000 });
    } catch (err) {
      if (Date.now() - started < untilMs && !t.procs.some((p) => p.exit)) {
        await sleep(100);
        continue;
      }
      throw new Error(`${t.label}: GET http://${HOST}:${t.port}${t.path} failed: ${err.message}${procNotes(t)}`);
    }
    if (res.status >= 500 && Date.now() - started < untilMs && !t.procs.some((p) => p.exit)) {
      await sleep(100);
      continue;
    }
    if (res.status !== 200) throw new Error(`${t.label}: GET ${t.path} answered ${res.status}, expected 200; body:\n${res.body.slice(0, 500)}${procNotes(t)}`);
    if (!t.expect.test(res.body)) {
      throw new Error(
        `${t.label}: GET ${t.path} answered 200 but not the expected body.\n--- got:\n${res.body.slice(0, 800)}\n--- expected (pid = any number):\n${t.expect.source}`,
      );
    }
    return { bodyBytes: Buffer.byteLength(res.body), headBytes: res.headBytes, headers: res.rawHeaders };
  }
}

function procNotes(t) {
  return t.procs.map((p) => `\n${p.name} (${describeExit(p.exit)}), last output:\n${tail(p.out, 10) || '(none)'}`).join('');
}

/**
 * rrts with a config like rr.example.yaml: production logs at error level, N workers, no supervisor; the hello
 * worker or the framework app, in exec or fork mode.
 */
async function startRrts(opts, tmpDir, { key, group = 'hello', mode = 'exec', sdk = false, nodeHttp = false, profileDir = null }) {
  const port = await freePort();
  const cfg = path.join(tmpDir, `${key}.yaml`);
  const app = group === 'app';
  const command = app ? `php ${APP_PHP_FLAGS.join(' ')} ${APP_WORKER}` : `php ${sdk ? SDK_HELLO : WORKER_PHP}`;
  const fork = mode === 'fork' ? ['  fork:', '    enabled: true', ...(app ? [`    preload: ${JSON.stringify(APP_PRELOAD)}`] : [])] : [];
  fs.writeFileSync(
    cfg,
    `# Written by test/bench/hello.mjs: rr.example.yaml with the benchmark's address, workers and quiet logs.
version: '3'

server:
  command: ${JSON.stringify(command)}
  relay: pipes
${fork.length ? `${fork.join('\n')}\n` : ''}  env:
    APP_ENV: bench
${sdk ? `    RRTS_BENCH_SDK: ${JSON.stringify(opts.sdk)}\n` : ''}
http:
  address: ${HOST}:${port}
  internal_error_code: 500
  max_request_size: 100
  access_logs: false
  uploads:
    forbid: [".php", ".exe", ".bat"]
  pool:
    num_workers: ${opts.workers}
    max_jobs: 0
    allocate_timeout: 60s
    destroy_timeout: 60s

logs:
  mode: production
  level: error
`,
  );
  const nodeArgs = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  const env = nodeHttp ? { ...process.env, RRTS_HTTP1: 'node' } : process.env;
  const p = startProcess(key, process.execPath, [...nodeArgs, RRTS_BIN, 'serve', '-c', cfg], { cwd: RRTS_ROOT, env, graceMs: 20_000 });
  await waitForOutput(p, (out) => out.includes('server started'), 60_000, "'server started'");
  const t = {
    key,
    group,
    server: 'rrts',
    mode,
    label: `rrts ${mode}${app ? ' app' : ''}${sdk ? ' SDK PSR7Worker' : ''}${nodeHttp ? ' node:http' : ''} (${opts.workers} workers${profileDir ? ', --cpu-prof' : ''})`,
    port,
    path: app ? APP_PATH : '/',
    procs: [p],
    expect: app ? APP_BODY : expectedPageRegExp({ name: 'rrts', servedBy: 'PHP worker' }, port),
    groups: () => ({ front: [p.pid], php: noteDescendants(p) }),
    logs: () => ({ [key]: p.out.split('\n').filter((l) => l.trim() && !l.includes('server started')) }),
  };
  t.check = await checkTarget(t, 10_000);
  return t;
}

/** php-fpm (static pool, own socket) behind nginx (own config, one worker): the hello page or the app. */
async function startFpm(opts, tmpDir, { key, group }) {
  const app = group === 'app';
  const inst = await startFpmNginx({
    parentDir: tmpDir,
    name: key,
    workers: opts.workers,
    script: app ? 'fpm-app.php' : 'fpm-hello.php',
    alsoFiles: app ? ['app/router.php'] : [],
    label: `${key}: php-fpm + nginx`,
  });
  const t = {
    key,
    group,
    server: 'fpm',
    label: `php-fpm${app ? ' app' : ''} (static ${opts.workers}) + nginx`,
    port: inst.port,
    path: app ? APP_PATH : '/',
    procs: inst.procs,
    expect: app ? APP_BODY : expectedPageRegExp({ name: 'fpm', servedBy: 'PHP worker' }, inst.port),
    groups: () => ({ front: [inst.nginx.pid, ...descendants(inst.nginx.pid)], php: [inst.fpm.pid, ...noteDescendants(inst.fpm)] }),
    logs: inst.logs,
    runAs: inst.runAs,
  };
  t.check = await checkTarget(t, 15_000);
  return t;
}

/** The raw Node http hello server: one process, one loop. */
async function startNode(opts, tmpDir, { key }) {
  const port = await freePort();
  const p = startProcess(key, process.execPath, [NODE_HELLO, String(port)]);
  await waitForOutput(p, (out) => out.includes('listening'), 10_000, "'listening'");
  const t = {
    key,
    group: 'hello',
    server: 'node',
    label: 'raw node http (1 process)',
    port,
    path: '/',
    procs: [p],
    expect: expectedPageRegExp(NODE_PAGE, port),
    groups: () => ({ front: [p.pid], php: [] }),
    logs: () => ({ [key]: p.out.split('\n').filter((l) => l.trim() && !l.includes('listening')) }),
  };
  t.check = await checkTarget(t, 5000);
  return t;
}

function startTarget(opts, tmpDir, key) {
  const spec = { key, ...TARGETS[key] };
  if (spec.server === 'rrts') return startRrts(opts, tmpDir, spec);
  if (spec.server === 'fpm') return startFpm(opts, tmpDir, spec);
  return startNode(opts, tmpDir, spec);
}

// ---------------------------------------------------------------------------------------------- stats / output

function summarise(t, runs) {
  const pick = (f) => runs.map(f);
  const rps = pick((r) => r.rps);
  return {
    label: t.label,
    group: t.group,
    server: t.server,
    mode: t.mode ?? null,
    port: t.port,
    path: t.path,
    rps: { median: median(rps), min: Math.min(...rps), max: Math.max(...rps), rounds: rps },
    p50Ms: median(pick((r) => r.p50Ms)),
    p99Ms: median(pick((r) => r.p99Ms)),
    p50MsRounds: pick((r) => r.p50Ms),
    p99MsRounds: pick((r) => r.p99Ms),
    latencyMaxMs: Math.max(...pick((r) => r.latencyMaxMs ?? 0)),
    requests: pick((r) => r.requests).reduce((a, b) => a + b, 0),
    non2xx: pick((r) => r.non2xx).reduce((a, b) => a + b, 0),
    socketErrors: runs.reduce(
      (acc, r) => {
        for (const k of Object.keys(acc)) acc[k] += r.socketErrors[k];
        return acc;
      },
      { connect: 0, read: 0, write: 0, timeout: 0 },
    ),
    response: { headBytes: t.check.headBytes, bodyBytes: t.check.bodyBytes, wrkBytesPerResponse: median(pick((r) => r.bytesPerResponse)) },
    cpu: {
      frontUsPerReq: median(pick((r) => r.cpu.frontUsPerReq)),
      frontUsPerReqRounds: pick((r) => r.cpu.frontUsPerReq),
      frontUserUsPerReq: median(pick((r) => r.cpu.frontUserUsPerReq)),
      frontSysUsPerReq: median(pick((r) => r.cpu.frontSysUsPerReq)),
      phpUsPerReq: median(pick((r) => r.cpu.phpUsPerReq)),
      phpUserUsPerReq: median(pick((r) => r.cpu.phpUserUsPerReq)),
      phpSysUsPerReq: median(pick((r) => r.cpu.phpSysUsPerReq)),
      frontSwitchesPerReq: median(pick((r) => r.cpu.frontSwitchesPerReq)),
      wrkCores: median(pick((r) => r.cpu.wrkCores ?? null)),
      otherCores: median(pick((r) => r.cpu.otherCores ?? null)),
      otherCoresMax: Math.max(...pick((r) => r.cpu.otherCores ?? 0)),
      frontPreemptedPerReq: median(pick((r) => r.cpu.frontPreemptedPerReq)),
      frontCores: median(pick((r) => r.cpu.frontCores)),
      phpCores: median(pick((r) => r.cpu.phpCores)),
      machineBusy: median(pick((r) => r.cpu.machineBusy)),
    },
  };
}

/** a / b of the medians, and of each round (the targets of one round ran back to back: noise hits them alike). */
function ratioOf(a, b) {
  const r = (x, y) => (x !== null && y ? x / y : null);
  const rounds = a.rps.rounds.map((x, i) => r(x, b.rps.rounds[i]));
  return {
    of: `${a.label} / ${b.label}`,
    rps: r(a.rps.median, b.rps.median),
    rpsRounds: rounds,
    rpsMin: Math.min(...rounds),
    rpsMax: Math.max(...rounds),
    p50: r(a.p50Ms, b.p50Ms),
    p99: r(a.p99Ms, b.p99Ms),
  };
}

/**
 * The front's CPU per request of a over b's, in each round and the median of those: the fronts of one round ran
 * back to back, so a noisy stretch hits both.
 */
function frontRatioOf(a, b) {
  const rounds = a.cpu.frontUsPerReqRounds.map((x, i) => {
    const y = b.cpu.frontUsPerReqRounds[i];
    return x !== null && y ? x / y : null;
  });
  const known = rounds.filter((v) => v !== null);
  return { of: `${a.label} / ${b.label}`, front: known.length ? median(known) : null, frontRounds: rounds, aUs: a.cpu.frontUsPerReq, bUs: b.cpu.frontUsPerReq };
}

/** The ratios the issue asks for: rrts (each mode) over php-fpm for hello and app, hello rrts over raw node. */
function computeRatios(s) {
  const out = {};
  const pairs = [
    ['sdkExecOverFpm', 'sdk-rrts', 'fpm'],
    ['sdkForkOverFpm', 'sdk-rrts-fork', 'fpm'],
    ['helloExecOverFpm', 'rrts', 'fpm'],
    ['helloForkOverFpm', 'rrts-fork', 'fpm'],
    ['helloNodeHttpOverFpm', 'rrts-node-http', 'fpm'],
    ['helloExecOverNodeHttp', 'rrts', 'rrts-node-http'],
    ['helloExecOverNode', 'rrts', 'node'],
    ['helloForkOverNode', 'rrts-fork', 'node'],
    ['appExecOverFpm', 'app-rrts', 'app-fpm'],
    ['appForkOverFpm', 'app-rrts-fork', 'app-fpm'],
  ];
  for (const [name, a, b] of pairs) if (s[a] && s[b]) out[name] = ratioOf(s[a], s[b]);
  return out;
}

/** The rrts process's CPU per request over nginx's (master + worker), same page, same rounds. */
function computeFrontRatios(s) {
  const out = {};
  for (const [name, a] of [
    ['frontExecOverNginx', 'rrts'],
    ['frontForkOverNginx', 'rrts-fork'],
    ['frontSdkExecOverNginx', 'sdk-rrts'],
    ['frontSdkForkOverNginx', 'sdk-rrts-fork'],
    ['frontNodeHttpOverNginx', 'rrts-node-http'],
  ]) {
    if (s[a] && s.fpm) out[name] = frontRatioOf(s[a], s.fpm);
  }
  return out;
}

const fmt = {
  int: (x) => (x === null ? '-' : Math.round(x).toLocaleString('en-US')),
  ms: (x) => (x === null ? '-' : x < 1 ? `${(x * 1000).toFixed(0)}us` : x < 100 ? `${x.toFixed(2)}ms` : `${x.toFixed(0)}ms`),
  ratio: (x) => (x === null || !Number.isFinite(x) ? '-' : `${x.toFixed(2)}x`),
  pct: (x) => (x === null ? '-' : `${Math.round(x * 100)}%`),
  us: (x) => (x === null ? '-' : x.toFixed(0)),
  cores: (x) => (x === null ? '-' : x.toFixed(2)),
};

function render(result) {
  const { meta, targets, ratios } = result;
  const out = [];
  out.push(
    `throughput: ${meta.rounds} round(s) x ${meta.duration} per target, wrk -t${meta.threads} -c${meta.connections} --latency, ${meta.workers} PHP workers, warm-up ${meta.warmup}`,
  );
  if (meta.rrts) {
    const r = meta.rrts;
    out.push(
      `rrts: ${r.root === REPO ? 'this checkout' : r.root}${r.commit ? ` @ ${r.commit}` : ''}${r.dirtySrcFiles ? ` (+${r.dirtySrcFiles} uncommitted src/php changes)` : ''}`,
    );
  }
  const m = meta.machine;
  out.push(`machine: ${m.nproc} CPUs (${m.cpuModel}), Linux ${m.kernel}, node ${m.node}, ${m.php}, ${m.phpFpm}, ${m.nginx}, ${m.wrk}`);
  out.push('');
  const keys = Object.keys(targets);
  out.push(
    table(
      ['target', 'path', 'req/s median', 'min-max', 'p50', 'p99', 'max', 'requests', 'non-2xx', 'sock err'],
      keys.map((k) => {
        const s = targets[k];
        const err = s.socketErrors;
        return [
          s.label,
          s.path,
          fmt.int(s.rps.median),
          `${fmt.int(s.rps.min)}-${fmt.int(s.rps.max)}`,
          fmt.ms(s.p50Ms),
          fmt.ms(s.p99Ms),
          fmt.ms(s.latencyMaxMs),
          fmt.int(s.requests),
          String(s.non2xx),
          String(err.connect + err.read + err.write + err.timeout),
        ];
      }),
    ),
  );
  out.push('');
  out.push(
    'where the CPU goes (medians over rounds; /proc utime+stime of the front = the rrts node process, nginx or the raw node process; php = PHP processes):',
  );
  const noPhp = (s, x) => (s.server === 'node' ? '-' : x);
  out.push(
    table(
      [
        'target',
        'resp B head+body',
        'front us/req (usr+sys)',
        'php us/req (usr+sys)',
        'cores front/php',
        'front ctx sw/req (preempted)',
        'wrk cores',
        'machine busy',
        'other load (cores)',
      ],
      keys.map((k) => {
        const s = targets[k];
        const c = s.cpu;
        return [
          s.label,
          `${s.response.headBytes}+${s.response.bodyBytes}`,
          `${fmt.us(c.frontUsPerReq)} (${fmt.us(c.frontUserUsPerReq)}+${fmt.us(c.frontSysUsPerReq)})`,
          noPhp(s, `${fmt.us(c.phpUsPerReq)} (${fmt.us(c.phpUserUsPerReq)}+${fmt.us(c.phpSysUsPerReq)})`),
          `${fmt.cores(c.frontCores)}/${noPhp(s, fmt.cores(c.phpCores))}`,
          c.frontSwitchesPerReq === null ? '-' : `${c.frontSwitchesPerReq.toFixed(2)} (${c.frontPreemptedPerReq.toFixed(2)})`,
          fmt.cores(c.wrkCores),
          fmt.pct(c.machineBusy),
          fmt.cores(c.otherCores),
        ];
      }),
    ),
  );
  out.push('');
  out.push('req/s per round (in run order):');
  for (const k of keys) out.push(`  ${targets[k].label.padEnd(36)} ${targets[k].rps.rounds.map(fmt.int).join('  ')}`);
  out.push('');
  const rrtsKeys = keys.filter((k) => targets[k].server === 'rrts');
  if (rrtsKeys.length) {
    out.push('CPU time of the rrts node process per 1,000 requests (user+sys, median of the rounds; the Node hot path):');
    for (const k of rrtsKeys) {
      const c = targets[k].cpu;
      out.push(`  ${targets[k].label.padEnd(36)} ${fmt.us(c.frontUsPerReq)} ms  (rounds: ${c.frontUsPerReqRounds.map(fmt.us).join(', ')})`);
    }
    out.push('');
  }
  const names = {
    helloExecOverFpm: 'hello rrts exec / php-fpm+nginx',
    helloForkOverFpm: 'hello rrts fork / php-fpm+nginx',
    helloExecOverNode: 'hello rrts exec / raw node',
    helloForkOverNode: 'hello rrts fork / raw node',
    appExecOverFpm: 'app rrts exec / php-fpm+nginx',
    appForkOverFpm: 'app rrts fork / php-fpm+nginx',
    sdkExecOverFpm: 'hello SDK rrts exec / php-fpm+nginx',
    sdkForkOverFpm: 'hello SDK rrts fork / php-fpm+nginx',
    helloNodeHttpOverFpm: 'hello rrts node:http / php-fpm+nginx',
    helloExecOverNodeHttp: 'hello rrts exec / rrts node:http',
  };
  const frontNames = {
    frontExecOverNginx: 'hello rrts exec / nginx',
    frontForkOverNginx: 'hello rrts fork / nginx',
    frontSdkExecOverNginx: 'hello SDK rrts exec / nginx',
    frontSdkForkOverNginx: 'hello SDK rrts fork / nginx',
    frontNodeHttpOverNginx: 'hello rrts node:http / nginx',
  };
  out.push('ratios (req/s > 1 = rrts serves more; p50/p99 > 1 = rrts answers slower; per-round req/s ratios in brackets):');
  for (const [k, r] of Object.entries(ratios)) {
    out.push(
      `  ${names[k].padEnd(34)} req/s ${fmt.ratio(r.rps)} [${r.rpsRounds.map(fmt.ratio).join(' ')}]   p50 ${fmt.ratio(r.p50)}   p99 ${fmt.ratio(r.p99)}`,
    );
  }
  const frontRatios = result.frontRatios ?? {};
  if (Object.keys(frontRatios).length) {
    out.push('');
    out.push("front CPU per request over nginx's (same page, same rounds; < 1 = the rrts process spends less than nginx; per-round ratios in brackets):");
    for (const [k, r] of Object.entries(frontRatios)) {
      out.push(`  ${frontNames[k].padEnd(34)} ${fmt.ratio(r.front)} [${r.frontRounds.map(fmt.ratio).join(' ')}]   ${fmt.us(r.aUs)} / ${fmt.us(r.bUs)} us`);
    }
  }
  if (result.notes.length) {
    out.push('');
    out.push('notes:');
    for (const n of result.notes) out.push(`  - ${n}`);
  }
  if (result.profile) {
    out.push('');
    out.push(renderProfile(result.profile));
  }
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------- profile

/** Self and inclusive time per function from a V8 .cpuprofile. */
function summariseProfile(prof, top = 25) {
  const nodes = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map();
  // timeDeltas[i] is the time before sample i; attribute it to sample i (the usual approximation).
  for (let i = 0; i < prof.samples.length; i++) self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + (prof.timeDeltas[i] ?? 0));
  const keyOf = (n) => {
    const cf = n.callFrame;
    const fn = cf.functionName || '(anonymous)';
    if (!cf.url) return fn;
    let where = cf.url.replace(/^file:\/\//, '');
    if (where.startsWith(REPO)) where = path.relative(REPO, where);
    where = where.replace(/^.*node_modules\//, 'node_modules/');
    return `${fn}  ${where}:${cf.lineNumber + 1}`;
  };
  const category = (n) => {
    const { url, functionName } = n.callFrame;
    if (!url) {
      if (/^\((idle|program|garbage collector|root)\)$/.test(functionName)) return functionName;
      return 'native (V8 builtins, C++)';
    }
    if (url.startsWith('node:')) return 'node internals (node:*)';
    if (url.includes('/node_modules/')) return `npm: ${/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1] ?? '?'}`;
    if (url.includes('/dist/src/')) return 'rrts (dist/src)';
    return 'other JS';
  };
  const byKey = new Map();
  const byCat = new Map();
  let total = 0;
  let idle = 0;
  for (const [id, us] of self) {
    const n = nodes.get(id);
    if (!n) continue;
    total += us;
    if (n.callFrame.functionName === '(idle)') idle += us;
    const k = keyOf(n);
    byKey.set(k, (byKey.get(k) ?? 0) + us);
    const c = category(n);
    byCat.set(c, (byCat.get(c) ?? 0) + us);
  }
  // Inclusive time of rrts' own functions (each counted once per stack, so recursion does not double it).
  const incl = new Map();
  const subtree = new Map();
  const sizeOf = (id) => {
    if (subtree.has(id)) return subtree.get(id);
    const n = nodes.get(id);
    let s = self.get(id) ?? 0;
    for (const c of n.children ?? []) s += sizeOf(c);
    subtree.set(id, s);
    return s;
  };
  const root = prof.nodes[0].id;
  const onStack = new Map();
  const walk = (id) => {
    const n = nodes.get(id);
    const k = keyOf(n);
    const mine = n.callFrame.url.includes('/dist/src/') && !onStack.get(k);
    if (mine) incl.set(k, (incl.get(k) ?? 0) + sizeOf(id));
    onStack.set(k, (onStack.get(k) ?? 0) + 1);
    for (const c of n.children ?? []) walk(c);
    onStack.set(k, onStack.get(k) - 1);
  };
  walk(root);
  const busy = total - idle;
  const sorted = (m, filter = () => true) => [...m].filter(([k]) => filter(k)).sort((a, b) => b[1] - a[1]);
  return {
    totalMs: total / 1000,
    idleMs: idle / 1000,
    busyMs: busy / 1000,
    samples: prof.samples.length,
    categories: sorted(byCat, (k) => k !== '(idle)').map(([k, us]) => ({ what: k, ms: us / 1000, ofBusy: us / busy })),
    topSelf: sorted(byKey, (k) => k !== '(idle)')
      .slice(0, top)
      .map(([k, us]) => ({ fn: k, ms: us / 1000, ofBusy: us / busy })),
    topRrtsInclusive: sorted(incl)
      .slice(0, 15)
      .map(([k, us]) => ({ fn: k, ms: us / 1000, ofBusy: us / busy })),
  };
}

function renderProfile(p) {
  const out = [];
  out.push(`rrts CPU profile (separate run under node --cpu-prof, ${p.wrk ? `${fmt.int(p.wrk.rps)} req/s, p99 ${fmt.ms(p.wrk.p99Ms)}` : ''}): ${p.file}`);
  out.push(
    `  main thread: ${p.summary.busyMs.toFixed(0)} ms busy, ${p.summary.idleMs.toFixed(0)} ms idle (${fmt.pct(p.summary.busyMs / p.summary.totalMs)} busy)`,
  );
  out.push('  busy time by origin (self time):');
  for (const c of p.summary.categories) out.push(`    ${fmt.pct(c.ofBusy).padStart(4)}  ${c.what}`);
  out.push('  top self-time functions (% of busy):');
  for (const f of p.summary.topSelf) out.push(`    ${(f.ofBusy * 100).toFixed(1).padStart(5)}%  ${f.fn}`);
  out.push('  rrts functions by inclusive time (% of busy):');
  for (const f of p.summary.topRrtsInclusive) out.push(`    ${(f.ofBusy * 100).toFixed(1).padStart(5)}%  ${f.fn}`);
  return out.join('\n');
}

async function profileRrts(opts, tmpDir) {
  const profDir = path.join(tmpDir, 'cpuprof');
  fs.mkdirSync(profDir);
  log('profile: starting a separate rrts under node --cpu-prof');
  const t = await startRrts(opts, tmpDir, { key: 'rrts-profiled', profileDir: profDir });
  if (opts.warmup.seconds > 0) await runWrk(t, opts, opts.warmup);
  log(`profile: wrk ${opts.duration.wrk} on ${t.label}`);
  const wrk = await runWrk(t, opts, opts.duration);
  const p = t.procs[0];
  await stopProcess(p, 'SIGTERM', 20_000);
  log(`profile: stopped rrts-profiled: ${p.stopNote}`);
  const files = fs.readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'));
  if (!files.length) throw new Error(`rrts under --cpu-prof wrote no .cpuprofile (it ${describeExit(p.exit)}); output:\n${tail(p.out)}`);
  const src = path.join(profDir, files[0]);
  const keep = opts.keepProfile ?? path.join(os.tmpdir(), `rrts-bench-${new Date().toISOString().replace(/[:.]/g, '-')}.cpuprofile`);
  fs.copyFileSync(src, keep);
  const summary = summariseProfile(JSON.parse(fs.readFileSync(src, 'utf8')));
  return { file: keep, wrk: { rps: wrk.rps, p50Ms: wrk.p50Ms, p99Ms: wrk.p99Ms, requests: wrk.requests }, summary };
}

// ---------------------------------------------------------------------------------------------- main

async function main() {
  const opts = parseOptions(process.argv.slice(2));
  setRrtsRoot(opts.rrtsRoot);
  checkSetup(opts);
  const machine = machineFacts();
  const tmpDir = makeTempDir('rrts-bench-');
  log(`temp dir ${tmpDir}`);

  // Start them all at once (not measured), check each answers its page.
  log(`starting ${opts.targets.join(', ')}`);
  const targets = await Promise.all(opts.targets.map((key) => startTarget(opts, tmpDir, key)));
  for (const t of targets) log(`${t.label} on ${HOST}:${t.port}${t.path}: 200, ${t.check.bodyBytes} B body, pids ${t.procs.map((p) => p.pid).join(', ')}`);

  if (opts.warmup.seconds > 0 && opts.quick) {
    // --quick: all targets at once (1 thread, 8 connections each), to save time; the rounds still run one by one
    log(`warm-up ${opts.warmup.wrk}: all targets at once`);
    await Promise.all(targets.map((t) => runWrk(t, { threads: 1, connections: 8 }, opts.warmup)));
  } else if (opts.warmup.seconds > 0) {
    for (const t of targets) {
      log(`warm-up ${opts.warmup.wrk}: ${t.label}`);
      await runWrk(t, opts, opts.warmup);
    }
  }

  const runs = new Map(targets.map((t) => [t.key, []]));
  for (let round = 0; round < opts.rounds; round++) {
    const order = targets.map((_, i) => targets[(i + round) % targets.length]);
    for (const t of order) {
      const r = await runWrk(t, opts, opts.duration);
      runs.get(t.key).push(r);
      const errs = Object.values(r.socketErrors).reduce((a, b) => a + b, 0);
      log(
        `round ${round + 1}/${opts.rounds} ${t.label}: ${fmt.int(r.rps)} req/s, p50 ${fmt.ms(r.p50Ms)}, p99 ${fmt.ms(r.p99Ms)}` +
          `${r.non2xx ? `, ${r.non2xx} non-2xx` : ''}${errs ? `, ${errs} socket errors` : ''}`,
      );
    }
  }

  // Still healthy after the load?
  const notes = [];
  for (const t of targets) {
    try {
      await checkTarget(t);
    } catch (err) {
      notes.push(`after the rounds, ${err.message.split('\n')[0]}`);
    }
  }

  const summaries = {};
  for (const t of targets) summaries[t.key] = summarise(t, runs.get(t.key));
  const ratios = computeRatios(summaries);

  for (const [k, s] of Object.entries(summaries)) {
    if (s.non2xx) notes.push(`${s.label}: ${s.non2xx} non-2xx/3xx responses under load`);
    const e = s.socketErrors;
    if (e.connect + e.read + e.write + e.timeout)
      notes.push(`${s.label}: socket errors connect ${e.connect}, read ${e.read}, write ${e.write}, timeout ${e.timeout}`);
    const spread = s.rps.median ? (s.rps.max - s.rps.min) / s.rps.median : 0;
    if (spread > 0.1) notes.push(`${s.label}: req/s spread ${fmt.pct(spread)} of the median across rounds (noisy machine?)`);
    const t = targets.find((x) => x.key === k);
    for (const [name, lines] of Object.entries(t.logs())) {
      if (lines.length)
        notes.push(
          `${name} logged ${lines.length} line(s), e.g. ${lines
            .slice(0, 3)
            .map((l) => l.slice(0, 200))
            .join(' | ')}`,
        );
    }
  }
  if (machine.nproc <= 4)
    notes.push(`wrk (${opts.threads} threads) shares the ${machine.nproc} CPUs with the server under test: absolute numbers are low, compare the ratios`);
  for (const s of Object.values(summaries)) {
    const c = s.cpu;
    if (c.machineBusy !== null && c.machineBusy < 0.9) {
      notes.push(
        `${s.label}: the machine was only ${fmt.pct(c.machineBusy)} busy (median): not CPU-bound, waiting between processes (latency-bound hand-offs) or on the load generator`,
      );
    }
    if (c.otherCoresMax > 0.15) {
      notes.push(
        `${s.label}: other processes (not the target, wrk or this script) used up to ${c.otherCoresMax.toFixed(2)} cores during its runs (median ${fmt.cores(c.otherCores)}): noisy machine, rerun on a quiet one`,
      );
    }
  }

  let profile = null;
  if (opts.profile) profile = await profileRrts(opts, tmpDir);

  const result = {
    bench: 'hello',
    date: new Date().toISOString(),
    quick: opts.quick,
    meta: {
      workers: opts.workers,
      rounds: opts.rounds,
      duration: opts.duration.wrk,
      warmup: opts.warmup.wrk,
      connections: opts.connections,
      threads: opts.threads,
      machine,
      rrts: opts.targets.some((k) => TARGETS[k].server === 'rrts') || opts.profile ? rrtsRevision(RRTS_ROOT) : null,
      fpmRunAs: targets.find((t) => t.server === 'fpm')?.runAs ?? null,
    },
    targets: summaries,
    ratios,
    frontRatios: computeFrontRatios(summaries),
    rrtsCpuMsPer1000: Object.fromEntries(
      Object.entries(summaries)
        .filter(([, s]) => s.server === 'rrts')
        .map(([k, s]) => [k, s.cpu.frontUsPerReq]),
    ),
    notes,
    profile,
  };
  await cleanup();
  const procs = startedProcesses();
  result.stops = Object.fromEntries(procs.map((p) => [p.name, p.stopNote]));
  for (const p of procs) {
    log(`stopped ${p.name} (pid ${p.pid}): ${p.stopNote}`);
    if (!stoppedCleanly(p)) result.notes.push(`stopping ${p.name}: ${p.stopNote}`);
  }

  process.stdout.write(`${render(result)}\n`);
  if (opts.json) {
    fs.writeFileSync(opts.json, `${JSON.stringify(result, null, 2)}\n`);
    process.stdout.write(`\nJSON written to ${opts.json}\n`);
  } else {
    process.stdout.write(`${JSON.stringify(result)}\n`);
  }
}

runMain(main, USAGE);
