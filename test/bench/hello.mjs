#!/usr/bin/env node
// Hello-world throughput benchmark: rrts vs php-fpm+nginx vs a raw Node http server, side by side in one run.
//
// What it measures: requests/s and latency (p50, p99 from `wrk --latency`) of three servers answering the same
// small HTML page (method, absolute URI, pid; ~209 bytes):
//   1. rrts (exec mode) running php/worker.php with N PHP workers;
//   2. php-fpm (pm = static, max_children = N) behind nginx (1 worker process), serving test/bench/fpm-hello.php;
//   3. a raw Node `http` server in one process (test/bench/node-hello.mjs): the ceiling of a one-loop front.
// Each target is warmed up (2 s of wrk, not counted), then measured with `wrk -t2 -c32 -d10s --latency` for R
// rounds, the targets taking turns round-robin (the start target rotates each round) so machine noise hits all
// of them alike. It also samples the CPU time (from /proc) of each target's front (node / nginx) and PHP side.
// Prints a table, then the result as JSON on stdout's last line (or into --json FILE).
//
// Run (after the build, `npx tsc -p tsconfig.json`; needs `apt-get install -y wrk nginx php8.2-fpm`):
//   node test/bench/hello.mjs                   # 3 rounds x 10 s, 4 workers, 32 connections
//   node test/bench/hello.mjs --quick           # 1 round x 3 s
//   node test/bench/hello.mjs --workers 8 --rounds 5 --duration 20s --connections 64 --json /tmp/bench.json
//   node test/bench/hello.mjs --profile         # and an extra, separate rrts run under `node --cpu-prof`
// Everything it starts (rrts, php-fpm, nginx, the node server, wrk) listens on or talks to 127.0.0.1 only, runs
// from a temp dir, and is stopped by pid at the end, on SIGINT/SIGTERM and on error; the temp dir is removed.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { helloPage, NODE_PAGE } from './node-hello.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');
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
const FPM_HELLO = path.join(HERE, 'fpm-hello.php');
const NODE_HELLO = path.join(HERE, 'node-hello.mjs');
const HOST = '127.0.0.1';

const USAGE = `usage: node test/bench/hello.mjs [options]
  --workers N        PHP workers for rrts and php-fpm (default 4)
  --duration D       wrk duration per measured run, e.g. 10s, 1m (default 10s)
  --connections C    wrk connections (default 32)
  --threads T        wrk threads (default 2)
  --rounds R         measured rounds, targets round-robin (default 3)
  --warmup D         wrk warm-up per target before the rounds, not counted; 0 = none (default 2s)
  --quick            1 round of 3s
  --targets LIST     comma-separated subset of rrts,fpm,node (default all)
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
      duration: { type: 'string', default: '10s' },
      connections: { type: 'string', default: '32' },
      threads: { type: 'string', default: '2' },
      rounds: { type: 'string', default: '3' },
      warmup: { type: 'string', default: '2s' },
      quick: { type: 'boolean', default: false },
      targets: { type: 'string', default: 'rrts,fpm,node' },
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
  const int = (name, min) => {
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}, got '${values[name]}'`);
    return n;
  };
  const opts = {
    workers: int('workers', 1),
    connections: int('connections', 1),
    threads: int('threads', 1),
    rounds: int('rounds', 1),
    duration: parseDuration(values.duration, '--duration'),
    warmup: parseDuration(values.warmup, '--warmup', true),
    targets: values.targets.split(',').map((s) => s.trim()).filter(Boolean),
    json: values.json ?? null,
    profile: values.profile || Boolean(values['keep-profile']),
    keepProfile: values['keep-profile'] ?? null,
    quick: values.quick,
    rrtsRoot: values['rrts-root'] ?? REPO,
  };
  if (values.quick) {
    opts.rounds = 1;
    opts.duration = parseDuration('3s', '--quick');
  }
  for (const t of opts.targets) if (!['rrts', 'fpm', 'node'].includes(t)) throw new UsageError(`--targets: unknown target '${t}' (rrts, fpm, node)`);
  if (opts.targets.length === 0) throw new UsageError('--targets: none given');
  if (opts.threads > opts.connections) throw new UsageError('--threads must not exceed --connections (wrk refuses it)');
  return opts;
}

/** wrk's duration syntax (an integer with s, m or h; bare = seconds) -> { wrk: '10s', seconds: 10 }. */
function parseDuration(text, what, allowZero = false) {
  const m = /^(\d+)(s|m|h)?$/.exec(String(text).trim());
  if (!m) throw new UsageError(`${what} must look like 10s, 2m or 1h, got '${text}'`);
  const seconds = Number(m[1]) * { s: 1, m: 60, h: 3600 }[m[2] ?? 's'];
  if (seconds === 0 && !allowZero) throw new UsageError(`${what} must be more than 0`);
  return { wrk: `${m[1]}${m[2] ?? 's'}`, seconds };
}

class UsageError extends Error {}

// ---------------------------------------------------------------------------------------------- tools

/** Tools the run needs, with the Debian package that provides each. */
const TOOLS = [
  { cmd: 'wrk', pkg: 'wrk', for: 'the load' },
  { cmd: 'nginx', pkg: 'nginx', for: 'the fpm target', target: 'fpm' },
  { cmd: 'php-fpm8.2', pkg: 'php8.2-fpm', for: 'the fpm target', target: 'fpm' },
  { cmd: 'php', pkg: 'php8.2-cli', for: "rrts' PHP workers", target: 'rrts' },
];

/** Find an executable in PATH, plus the sbin dirs a non-root PATH often lacks (nginx, php-fpm live there). */
function which(cmd) {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const d of dirs) {
    if (!d) continue;
    const p = path.join(d, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      /* next */
    }
  }
  return null;
}

function checkTools(opts) {
  const found = {};
  const missing = [];
  for (const t of TOOLS) {
    if (t.target && !opts.targets.includes(t.target) && !(t.target === 'rrts' && opts.profile)) continue;
    const p = which(t.cmd);
    if (p) found[t.cmd] = p;
    else missing.push(`  ${t.cmd} (for ${t.for}): apt-get install -y ${t.pkg}`);
  }
  if (missing.length) throw new Error(`missing tools:\n${missing.join('\n')}\n(run 'apt-get update' once first)`);
  if (opts.targets.includes('rrts') || opts.profile) {
    if (!fs.existsSync(RRTS_MAIN)) throw new Error(`rrts is not built (${RRTS_MAIN} missing): run 'npx tsc -p tsconfig.json' in ${RRTS_ROOT}`);
    if (!fs.existsSync(WORKER_PHP)) throw new Error(`missing ${WORKER_PHP}`);
  }
  if (opts.targets.includes('fpm') && !fs.existsSync(FPM_HELLO)) throw new Error(`missing ${FPM_HELLO}`);
  return found;
}

// ---------------------------------------------------------------------------------------------- processes

/** Every process this script started, in start order: { name, pid, child, exited (Promise), exit, out }. */
const procs = [];
let tmpDir = null;
let currentWrk = null;
let cleaning = null;

function log(line) {
  process.stderr.write(`[bench] ${line}\n`);
}

/** Spawn a long-running process in its own process group (a terminal ^C reaches us only; we stop it by pid). */
function startProcess(name, cmd, args, { cwd = REPO, env = process.env } = {}) {
  const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const p = { name, pid: child.pid, child, exit: null, out: '', stopNote: null, descendants: new Set() };
  const keep = (chunk) => {
    p.out += chunk.toString();
    if (p.out.length > 64 * 1024) p.out = p.out.slice(-32 * 1024);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  p.exited = new Promise((resolve) => {
    child.once('error', (err) => {
      p.exit = { code: null, signal: null, error: err.message };
      resolve(p.exit);
    });
    child.once('exit', (code, signal) => {
      p.exit = { code, signal };
      resolve(p.exit);
    });
  });
  procs.push(p);
  return p;
}

function describeExit(e) {
  if (!e) return 'running';
  if (e.error) return `failed to start: ${e.error}`;
  return e.signal ? `killed by ${e.signal}` : `exit code ${e.code}`;
}

function tail(text, lines = 15) {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/** Resolve when `test()` is true on the process' output; reject if it exits or the time runs out. */
function waitForOutput(p, test, timeoutMs, what) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tick = () => {
      if (test(p.out)) return resolve();
      if (p.exit) return reject(new Error(`${p.name} ${describeExit(p.exit)} before ${what}; its output:\n${tail(p.out)}`));
      if (Date.now() - started > timeoutMs) return reject(new Error(`${p.name} did not report ${what} within ${timeoutMs / 1000}s; its output:\n${tail(p.out)}`));
      setTimeout(tick, 50);
    };
    tick();
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function alive(pid) {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie (exited, not yet reaped by its parent) still answers signal 0.
  const st = readProcStat(pid);
  return st !== null && st.state !== 'Z';
}

/**
 * Stop one process by pid: `signal`, wait up to `graceMs`, then SIGKILL. Its descendants (PHP workers, nginx and
 * fpm children) are noted first and any still alive a moment after it has gone are killed too. Records a note.
 */
async function stopProcess(p, signal = 'SIGTERM', graceMs = 15_000) {
  for (const d of descendants(p.pid)) p.descendants.add(d);
  if (p.exit) {
    p.stopNote ??= `had already ${describeExit(p.exit)}`;
  } else {
    const t0 = Date.now();
    try {
      process.kill(p.pid, signal);
    } catch {
      /* gone meanwhile */
    }
    const timedOut = await Promise.race([p.exited.then(() => false), sleep(graceMs).then(() => true)]);
    if (timedOut) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      await Promise.race([p.exited, sleep(2000)]);
      p.stopNote = `did not stop within ${graceMs / 1000}s of ${signal}: SIGKILLed (${describeExit(p.exit)})`;
    } else {
      p.stopNote = `${signal} -> ${describeExit(p.exit)} after ${Date.now() - t0} ms`;
    }
  }
  // Children leave shortly after their parent; give them a moment, then kill the stragglers.
  let left = [...p.descendants].filter(alive);
  for (let i = 0; i < 40 && left.length; i++) {
    await sleep(50);
    left = left.filter(alive);
  }
  if (left.length) {
    for (const d of left) {
      try {
        process.kill(d, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    p.stopNote += `; ${left.length} child process(es) outlived it and were SIGKILLed (${left.join(', ')})`;
  }
}

/** Stop everything (reverse start order), remove the temp dir. Idempotent. */
function cleanup() {
  cleaning ??= (async () => {
    if (currentWrk && currentWrk.exitCode === null) {
      try {
        currentWrk.kill('SIGTERM');
      } catch {
        /* gone */
      }
    }
    for (const p of [...procs].reverse()) {
      // php-fpm: SIGTERM = fast stop; nginx: SIGTERM = fast stop; rrts: SIGTERM = its graceful stop.
      await stopProcess(p, 'SIGTERM', p.name.startsWith('rrts') ? 20_000 : 10_000).catch((err) => log(`stopping ${p.name}: ${err.message}`));
    }
    for (const p of procs) log(`stopped ${p.name} (pid ${p.pid}): ${p.stopNote}`);
    removeTmp();
  })();
  return cleaning;
}

function removeTmp() {
  if (tmpDir) {
    try {
      fs.rmSync(tmpDir, { recursive: true, force: true });
    } catch (err) {
      log(`could not remove ${tmpDir}: ${err.message}`);
    }
    tmpDir = null;
  }
}

// Last resort if we exit without cleanup() having finished (e.g. a second ^C): kill what is left, synchronously.
process.on('exit', () => {
  for (const p of procs) {
    for (const pid of [p.pid, ...p.descendants]) {
      if (pid && alive(pid)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
  }
  if (currentWrk && currentWrk.exitCode === null) currentWrk.kill('SIGKILL');
  removeTmp();
});

let interrupted = 0;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    interrupted++;
    if (interrupted > 1) {
      log(`${sig} again: killing everything now`);
      process.exit(130);
    }
    log(`${sig}: stopping everything (again to force)`);
    cleanup().finally(() => process.exit(130));
  });
}

// ---------------------------------------------------------------------------------------------- /proc

let CLK_TCK = 100;
try {
  CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  /* keep 100, Linux' usual */
}

/** { state, ppid, user, sys (CPU clock ticks) } of one process, or null. */
function readProcStat(pid) {
  let text;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // Fields 14-17 of proc(5): utime, stime, cutime, cstime (children waited for).
  return { state: rest[0], ppid: Number(rest[1]), user: Number(rest[11]), sys: Number(rest[12]), cuser: Number(rest[13]), csys: Number(rest[14]) };
}

/** All live descendants of pid (children, grandchildren...). */
function descendants(pid) {
  const children = new Map();
  let entries = [];
  try {
    entries = fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return [];
  }
  for (const e of entries) {
    const st = readProcStat(Number(e));
    if (!st) continue;
    if (!children.has(st.ppid)) children.set(st.ppid, []);
    children.get(st.ppid).push(Number(e));
  }
  const out = [];
  const queue = [pid];
  while (queue.length) {
    for (const c of children.get(queue.shift()) ?? []) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

/** CPU ticks and context switches of each of these processes: Map pid -> { user, sys, vcs, ivcs }. */
function groupTicks(pids) {
  const m = new Map();
  for (const pid of pids) {
    const st = readProcStat(pid);
    if (st) m.set(pid, { user: st.user, sys: st.sys, ...contextSwitches(pid) });
  }
  return m;
}

/** Voluntary (blocked: waited for I/O) and involuntary (preempted) context switches of a process so far. */
function contextSwitches(pid) {
  try {
    const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    return { vcs: Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(text)?.[1] ?? 0), ivcs: Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(text)?.[1] ?? 0) };
  } catch {
    return { vcs: 0, ivcs: 0 };
  }
}

/** CPU ms (user, sys, total) and context switches between two groupTicks snapshots (new processes count whole). */
function cpuMsBetween(before, after) {
  let user = 0;
  let sys = 0;
  let vcs = 0;
  let ivcs = 0;
  for (const [pid, t] of after) {
    const b = before.get(pid);
    user += t.user - (b?.user ?? 0);
    sys += t.sys - (b?.sys ?? 0);
    vcs += t.vcs - (b?.vcs ?? 0);
    ivcs += t.ivcs - (b?.ivcs ?? 0);
  }
  const ms = (ticks) => (ticks * 1000) / CLK_TCK;
  return { userMs: ms(user), sysMs: ms(sys), ms: ms(user + sys), voluntarySwitches: vcs, involuntarySwitches: ivcs };
}

/** Whole-machine CPU: { busy, total } jiffies (USER_HZ = CLK_TCK) from /proc/stat, or null. */
function machineCpu() {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
    const total = f.reduce((a, b) => a + b, 0);
    return { busy: total - f[3] - f[4], total };
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------- targets

/** A free TCP port on 127.0.0.1 (asked from the kernel, then released). */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** One GET; resolves { status, headers, rawHeaders, body, headBytes } or rejects on a socket error. */
function httpGet(port, urlPath = '/', timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: HOST, port, path: urlPath, agent: false, timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        let headBytes = `HTTP/${res.httpVersion} ${res.statusCode} ${res.statusMessage}\r\n`.length + 2;
        for (let i = 0; i < res.rawHeaders.length; i += 2) headBytes += Buffer.byteLength(`${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}\r\n`);
        resolve({ status: res.statusCode, headers: res.headers, rawHeaders: res.rawHeaders, body, headBytes });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

function escapeRegExp(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The exact page a target must answer to GET /, with any pid. */
function expectedPageRegExp(page, port) {
  const text = helloPage({ ...page, method: 'GET', uri: `http://${HOST}:${port}/`, pid: '@PID@' });
  return new RegExp(`^${escapeRegExp(text).replace('@PID@', '\\d+')}$`);
}

/**
 * Check a target answers GET / with 200 and the expected page. While `untilMs` > 0, connection errors and 5xx
 * (nginx before fpm is up) are retried until that much time has passed.
 */
async function checkTarget(t, untilMs = 0) {
  const started = Date.now();
  for (;;) {
    let res;
    try {
      res = await httpGet(t.port);
    } catch (err) {
      if (Date.now() - started < untilMs && !t.procs.some((p) => p.exit)) {
        await sleep(100);
        continue;
      }
      throw new Error(`${t.label}: GET http://${HOST}:${t.port}/ failed: ${err.message}${procNotes(t)}`);
    }
    if (res.status >= 500 && Date.now() - started < untilMs && !t.procs.some((p) => p.exit)) {
      await sleep(100);
      continue;
    }
    if (res.status !== 200) throw new Error(`${t.label}: GET / answered ${res.status}, expected 200; body:\n${res.body.slice(0, 500)}${procNotes(t)}`);
    if (!t.expect.test(res.body)) {
      throw new Error(`${t.label}: GET / answered 200 but not the expected page.\n--- got:\n${res.body.slice(0, 800)}\n--- expected (pid = any number):\n${t.expect.source}`);
    }
    return { bodyBytes: Buffer.byteLength(res.body), headBytes: res.headBytes, headers: res.rawHeaders };
  }
}

function procNotes(t) {
  return t.procs.map((p) => `\n${p.name} (${describeExit(p.exit)}), last output:\n${tail(p.out, 10) || '(none)'}`).join('');
}

/** rrts with a config like rr.example.yaml: production logs at error level, N workers, no supervisor. */
async function startRrts(opts, { name = 'rrts', profileDir = null } = {}) {
  const port = await freePort();
  const cfg = path.join(tmpDir, `${name}.yaml`);
  fs.writeFileSync(
    cfg,
    `# Written by test/bench/hello.mjs: rr.example.yaml with the benchmark's address, workers and quiet logs.
version: '3'

server:
  command: ${JSON.stringify(`php ${WORKER_PHP}`)}
  relay: pipes
  env:
    APP_ENV: bench

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
  const p = startProcess(name, process.execPath, [...nodeArgs, RRTS_BIN, 'serve', '-c', cfg], { cwd: RRTS_ROOT });
  await waitForOutput(p, (out) => out.includes('server started'), 30_000, "'server started'");
  const t = {
    key: name,
    label: profileDir ? `rrts (exec, ${opts.workers} workers, --cpu-prof)` : `rrts (exec, ${opts.workers} workers)`,
    port,
    procs: [p],
    expect: expectedPageRegExp({ name: 'rrts', servedBy: 'PHP worker' }, port),
    groups: () => ({ front: [p.pid], php: descendants(p.pid) }),
    logs: () => ({ rrts: p.out.split('\n').filter((l) => l.trim() && !l.includes('server started')) }),
  };
  t.check = await checkTarget(t, 5000);
  return t;
}

/** php-fpm (static pool, own socket) behind nginx (own config, one worker), both from the temp dir. */
async function startFpm(opts, tools) {
  const port = await freePort();
  const sock = path.join(tmpDir, 'php-fpm.sock');
  // As root, php-fpm refuses to run its workers as root without -R, and nginx' worker would be 'nobody': run both
  // as www-data (as the Debian packages do), so the temp dir and the script must be readable by it.
  const asRoot = process.getuid?.() === 0;
  let runAs = null;
  if (asRoot) {
    try {
      execFileSync('id', ['-u', 'www-data'], { stdio: 'ignore' });
      runAs = 'www-data';
    } catch {
      runAs = 'nobody';
    }
    fs.chmodSync(tmpDir, 0o755);
  }
  let script = FPM_HELLO;
  if (runAs && !worldReadable(FPM_HELLO)) {
    script = path.join(tmpDir, 'fpm-hello.php');
    fs.copyFileSync(FPM_HELLO, script);
    fs.chmodSync(script, 0o644);
  }

  const fpmConf = path.join(tmpDir, 'php-fpm.conf');
  fs.writeFileSync(
    fpmConf,
    `; Written by test/bench/hello.mjs
[global]
pid = ${tmpDir}/php-fpm.pid
error_log = ${tmpDir}/php-fpm.log
log_level = notice
daemonize = no

[bench]
${runAs ? `user = ${runAs}\ngroup = ${runAs === 'nobody' ? 'nogroup' : runAs}\n` : ''}listen = ${sock}
${runAs ? `listen.owner = ${runAs}\nlisten.group = ${runAs === 'nobody' ? 'nogroup' : runAs}\n` : ''}listen.mode = 0660
listen.backlog = 511
pm = static
pm.max_children = ${opts.workers}
pm.max_requests = 0
catch_workers_output = no
`,
  );
  const nginxConf = path.join(tmpDir, 'nginx.conf');
  const ngxTmp = (n) => path.join(tmpDir, `nginx-${n}`);
  fs.writeFileSync(
    nginxConf,
    `# Written by test/bench/hello.mjs
daemon off;
master_process on;
worker_processes 1;
${runAs ? `user ${runAs}${runAs === 'nobody' ? ' nogroup' : ''};\n` : ''}pid ${tmpDir}/nginx.pid;
error_log ${tmpDir}/nginx-error.log warn;

events {
    worker_connections 1024;
}

http {
    access_log off;
    default_type text/html;
    client_body_temp_path ${ngxTmp('client-body')};
    proxy_temp_path ${ngxTmp('proxy')};
    fastcgi_temp_path ${ngxTmp('fastcgi')};
    uwsgi_temp_path ${ngxTmp('uwsgi')};
    scgi_temp_path ${ngxTmp('scgi')};
    keepalive_timeout 65s;
    # nginx closes a keep-alive connection after 1000 requests by default; node (rrts, raw) never does.
    keepalive_requests 1000000;

    server {
        listen ${HOST}:${port};
        server_name localhost;

        location / {
            fastcgi_pass unix:${sock};
            # Debian's fastcgi_params, inline so the run does not depend on /etc/nginx.
            fastcgi_param QUERY_STRING $query_string;
            fastcgi_param REQUEST_METHOD $request_method;
            fastcgi_param CONTENT_TYPE $content_type;
            fastcgi_param CONTENT_LENGTH $content_length;
            fastcgi_param SCRIPT_NAME /fpm-hello.php;
            fastcgi_param SCRIPT_FILENAME ${script};
            fastcgi_param REQUEST_URI $request_uri;
            fastcgi_param DOCUMENT_URI $document_uri;
            fastcgi_param DOCUMENT_ROOT ${path.dirname(script)};
            fastcgi_param SERVER_PROTOCOL $server_protocol;
            fastcgi_param REQUEST_SCHEME $scheme;
            fastcgi_param HTTPS $https if_not_empty;
            fastcgi_param GATEWAY_INTERFACE CGI/1.1;
            fastcgi_param SERVER_SOFTWARE nginx/$nginx_version;
            fastcgi_param REMOTE_ADDR $remote_addr;
            fastcgi_param REMOTE_PORT $remote_port;
            fastcgi_param SERVER_ADDR $server_addr;
            fastcgi_param SERVER_PORT $server_port;
            fastcgi_param SERVER_NAME $server_name;
            fastcgi_param REDIRECT_STATUS 200;
        }
    }
}
`,
  );
  const fpm = startProcess('php-fpm', tools['php-fpm8.2'], ['-F', '-y', fpmConf]);
  const nginx = startProcess('nginx', tools.nginx, ['-e', `${tmpDir}/nginx-error.log`, '-p', tmpDir, '-c', nginxConf]);
  const readLog = (f) => {
    try {
      return fs.readFileSync(path.join(tmpDir, f), 'utf8').split('\n').filter((l) => l.trim());
    } catch {
      return [];
    }
  };
  const t = {
    key: 'fpm',
    label: `php-fpm (static ${opts.workers}) + nginx`,
    port,
    procs: [fpm, nginx],
    expect: expectedPageRegExp({ name: 'fpm', servedBy: 'PHP worker' }, port),
    groups: () => ({ front: [nginx.pid, ...descendants(nginx.pid)], php: [fpm.pid, ...descendants(fpm.pid)] }),
    logs: () => ({
      // fpm's own start/stop notices are expected; anything else (warnings, errors) is worth a look.
      'php-fpm': readLog('php-fpm.log').filter((l) => !/NOTICE: (fpm is running|ready to handle connections|Terminating|exiting|systemd monitor)/.test(l)),
      nginx: readLog('nginx-error.log'),
    }),
    runAs,
  };
  t.check = await checkTarget(t, 15_000);
  const pool = descendants(fpm.pid).length;
  if (pool !== opts.workers) log(`warning: php-fpm has ${pool} children, expected ${opts.workers}`);
  return t;
}

function worldReadable(file) {
  try {
    if ((fs.statSync(file).mode & 0o004) === 0) return false;
    for (let d = path.dirname(file); ; d = path.dirname(d)) {
      if ((fs.statSync(d).mode & 0o001) === 0) return false;
      if (d === path.dirname(d)) return true;
    }
  } catch {
    return false;
  }
}

/** The raw Node http hello server: one process, one loop. */
async function startNode() {
  const port = await freePort();
  const p = startProcess('node-hello', process.execPath, [NODE_HELLO, String(port)]);
  await waitForOutput(p, (out) => out.includes('listening'), 10_000, "'listening'");
  const t = {
    key: 'node',
    label: 'raw node http (1 process)',
    port,
    procs: [p],
    expect: expectedPageRegExp(NODE_PAGE, port),
    groups: () => ({ front: [p.pid], php: [] }),
    logs: () => ({ 'node-hello': p.out.split('\n').filter((l) => l.trim() && !l.includes('listening')) }),
  };
  t.check = await checkTarget(t, 5000);
  return t;
}

// ---------------------------------------------------------------------------------------------- wrk

const UNIT_MS = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function toMs(num, unit) {
  const f = UNIT_MS[unit];
  if (f === undefined) throw new Error(`unknown wrk time unit '${unit}'`);
  return Number(num) * f;
}

/** Parse wrk --latency output into numbers. Throws if the essentials are missing. */
export function parseWrk(text) {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(text);
  const total = /(\d+) requests in ([\d.]+)(us|ms|s|m|h),\s+([\d.]+)(\w+) read/.exec(text);
  if (!rps || !total) throw new Error(`cannot parse wrk output:\n${text}`);
  const lat = /Latency\s+([\d.]+)(us|ms|s|m|h)\s+([\d.]+)(us|ms|s|m|h)\s+([\d.]+)(us|ms|s|m|h)/.exec(text);
  const pct = {};
  for (const m of text.matchAll(/^\s+(50|75|90|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$/gm)) pct[m[1]] = toMs(m[2], m[3]);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const transfer = /Transfer\/sec:\s+([\d.]+)(B|KB|MB|GB)/.exec(text);
  const bytesPerSec = transfer ? Number(transfer[1]) * { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 }[transfer[2]] : null;
  return {
    rps: Number(rps[1]),
    requests: Number(total[1]),
    seconds: toMs(total[2], total[3]) / 1000,
    latencyAvgMs: lat ? toMs(lat[1], lat[2]) : null,
    latencyStdevMs: lat ? toMs(lat[3], lat[4]) : null,
    latencyMaxMs: lat ? toMs(lat[5], lat[6]) : null,
    p50Ms: pct['50'] ?? null,
    p75Ms: pct['75'] ?? null,
    p90Ms: pct['90'] ?? null,
    p99Ms: pct['99'] ?? null,
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    socketErrors: sock ? { connect: +sock[1], read: +sock[2], write: +sock[3], timeout: +sock[4] } : { connect: 0, read: 0, write: 0, timeout: 0 },
    bytesPerResponse: bytesPerSec ? Math.round(bytesPerSec / Number(rps[1])) : null,
  };
}

/** One wrk run against a target, with the CPU time of its processes sampled around it. */
async function runWrk(t, opts, duration) {
  const url = `http://${HOST}:${t.port}/`;
  const args = [`-t${opts.threads}`, `-c${opts.connections}`, `-d${duration.wrk}`, '--latency', url];
  const groups = t.groups();
  const before = { front: groupTicks(groups.front), php: groupTicks(groups.php), machine: machineCpu(), self: readProcStat(process.pid) };
  const wall0 = process.hrtime.bigint();
  const out = await new Promise((resolve, reject) => {
    const child = spawn(which('wrk') ?? 'wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    currentWrk = child;
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), (duration.seconds + 60) * 1000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run wrk: ${err.message}`));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      currentWrk = null;
      if (code === 0) resolve(stdout);
      else reject(new Error(`wrk ${args.join(' ')} ${signal ? `killed by ${signal}` : `exit code ${code}`}:\n${stdout}${stderr}`));
    });
  });
  const wallMs = Number(process.hrtime.bigint() - wall0) / 1e6;
  const after = { front: groupTicks(groups.front), php: groupTicks(groups.php), machine: machineCpu(), self: readProcStat(process.pid) };
  const r = parseWrk(out);
  const front = cpuMsBetween(before.front, after.front);
  const php = cpuMsBetween(before.php, after.php);
  const perReq = (x) => (r.requests ? (x * 1000) / r.requests : null);
  r.cpu = {
    front,
    php,
    wallMs,
    machineBusy: before.machine && after.machine ? (after.machine.busy - before.machine.busy) / Math.max(1, after.machine.total - before.machine.total) : null,
    frontUsPerReq: perReq(front.ms),
    frontUserUsPerReq: perReq(front.userMs),
    frontSysUsPerReq: perReq(front.sysMs),
    phpUsPerReq: perReq(php.ms),
    phpUserUsPerReq: perReq(php.userMs),
    phpSysUsPerReq: perReq(php.sysMs),
    frontCores: front.ms / wallMs,
    phpCores: php.ms / wallMs,
    frontSwitchesPerReq: r.requests ? (front.voluntarySwitches + front.involuntarySwitches) / r.requests : null,
    frontPreemptedPerReq: r.requests ? front.involuntarySwitches / r.requests : null,
  };
  // wrk's CPU lands in our cutime/cstime once it is reaped; what the machine spent beyond the target, wrk and
  // this script is someone else's load (other builds, tests...): the noise this run suffered.
  if (before.self && after.self && before.machine && after.machine) {
    const tick = 1000 / CLK_TCK;
    r.cpu.wrkCores = ((after.self.cuser + after.self.csys - before.self.cuser - before.self.csys) * tick) / wallMs;
    r.cpu.benchCores = ((after.self.user + after.self.sys - before.self.user - before.self.sys) * tick) / wallMs;
    const machineMs = (after.machine.busy - before.machine.busy) * tick;
    r.cpu.otherCores = Math.max(0, (machineMs - front.ms - php.ms) / wallMs - r.cpu.wrkCores - r.cpu.benchCores);
  }
  r.raw = out;
  return r;
}

// ---------------------------------------------------------------------------------------------- stats / output

function median(xs) {
  const s = xs.filter((x) => x !== null && Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return null;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function summarise(t, runs) {
  const pick = (f) => runs.map(f);
  const rps = pick((r) => r.rps);
  return {
    label: t.label,
    port: t.port,
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

const fmt = {
  int: (x) => (x === null ? '-' : Math.round(x).toLocaleString('en-US')),
  ms: (x) => (x === null ? '-' : x < 1 ? `${(x * 1000).toFixed(0)}us` : x < 100 ? `${x.toFixed(2)}ms` : `${x.toFixed(0)}ms`),
  ratio: (x) => (x === null || !Number.isFinite(x) ? '-' : `${x.toFixed(2)}x`),
  pct: (x) => (x === null ? '-' : `${Math.round(x * 100)}%`),
  us: (x) => (x === null ? '-' : x.toFixed(0)),
  cores: (x) => (x === null ? '-' : x.toFixed(2)),
};

function table(rows, header) {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => String(r[i]).length)));
  const line = (r) => r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function render(result) {
  const { meta, targets, ratios } = result;
  const out = [];
  out.push(
    `hello benchmark: ${meta.rounds} round(s) x ${meta.duration} per target, wrk -t${meta.threads} -c${meta.connections} --latency, ${meta.workers} PHP workers, warm-up ${meta.warmup}`,
  );
  if (meta.rrts) {
    const r = meta.rrts;
    out.push(`rrts: ${r.root}${r.commit ? ` @ ${r.commit}` : ''}${r.dirtySrcFiles ? ` (+${r.dirtySrcFiles} uncommitted src/ changes)` : ''}`);
  }
  out.push(`machine: ${meta.machine.nproc} CPUs (${meta.machine.cpuModel}), ${meta.machine.node}, ${meta.machine.php}, ${meta.machine.nginx}, ${meta.machine.wrk}`);
  out.push('');
  const keys = Object.keys(targets);
  out.push(
    table(
      keys.map((k) => {
        const s = targets[k];
        const err = s.socketErrors;
        return [
          s.label,
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
      ['target', 'req/s median', 'min-max', 'p50', 'p99', 'max', 'requests', 'non-2xx', 'sock err'],
    ),
  );
  out.push('');
  out.push('where the CPU goes (medians over rounds; /proc utime+stime of the front = node or nginx, php = PHP processes):');
  const noPhp = (k, x) => (k === 'node' ? '-' : x);
  out.push(
    table(
      keys.map((k) => {
        const c = targets[k].cpu;
        return [
          targets[k].label,
          `${targets[k].response.headBytes}+${targets[k].response.bodyBytes}`,
          `${fmt.us(c.frontUsPerReq)} (${fmt.us(c.frontUserUsPerReq)}+${fmt.us(c.frontSysUsPerReq)})`,
          noPhp(k, `${fmt.us(c.phpUsPerReq)} (${fmt.us(c.phpUserUsPerReq)}+${fmt.us(c.phpSysUsPerReq)})`),
          `${fmt.cores(c.frontCores)}/${noPhp(k, fmt.cores(c.phpCores))}`,
          c.frontSwitchesPerReq === null ? '-' : `${c.frontSwitchesPerReq.toFixed(2)} (${c.frontPreemptedPerReq.toFixed(2)})`,
          fmt.cores(c.wrkCores),
          fmt.pct(c.machineBusy),
          fmt.cores(c.otherCores),
        ];
      }),
      ['target', 'resp B head+body', 'front us/req (usr+sys)', 'php us/req (usr+sys)', 'cores front/php', 'front ctx sw/req (preempted)', 'wrk cores', 'machine busy', 'other load (cores)'],
    ),
  );
  out.push('');
  out.push('req/s per round (in run order):');
  for (const k of keys) out.push(`  ${targets[k].label.padEnd(36)} ${targets[k].rps.rounds.map(fmt.int).join('  ')}`);
  out.push('');
  if (ratios.rrtsOverFpm) {
    const r = ratios.rrtsOverFpm;
    out.push(`rrts / fpm:       req/s ${fmt.ratio(r.rps)}   p50 ${fmt.ratio(r.p50)}   p99 ${fmt.ratio(r.p99)}   (req/s > 1 = rrts faster; latency > 1 = rrts slower)`);
  }
  if (ratios.rrtsOverRawNode) {
    const r = ratios.rrtsOverRawNode;
    out.push(`rrts / raw node:  req/s ${fmt.ratio(r.rps)}   p50 ${fmt.ratio(r.p50)}   p99 ${fmt.ratio(r.p99)}`);
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

function machineFacts(tools) {
  // nginx -v prints to stderr, wrk -v to stdout with exit code 1: take whatever came out, from either.
  const run = (cmd, args) => {
    const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
    return `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n')[0].trim() || '?';
  };
  return {
    nproc: os.availableParallelism?.() ?? os.cpus().length,
    cpuModel: os.cpus()[0]?.model?.trim() ?? '?',
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    php: tools.php ? run(tools.php, ['-v']) : '-',
    nginx: tools.nginx ? run(tools.nginx, ['-v']).replace(/^nginx version: /, '') : '-',
    wrk: tools.wrk ? run(tools.wrk, ['-v']).replace(/ \[.*$/, '') : '-',
  };
}

/** Which rrts was measured: its root, the git commit (or a REVISION file) and whether src/ differs from it. */
function rrtsRevision() {
  const git = (args) => execFileSync('git', ['-C', RRTS_ROOT, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  const out = { root: RRTS_ROOT, commit: null, dirtySrcFiles: null };
  try {
    if (git(['rev-parse', '--show-toplevel']) === RRTS_ROOT) {
      out.commit = git(['rev-parse', '--short', 'HEAD']);
      out.dirtySrcFiles = git(['status', '--porcelain', '--', 'src']).split('\n').filter(Boolean).length;
    }
  } catch {
    /* not a git checkout */
  }
  if (!out.commit) {
    try {
      out.commit = fs.readFileSync(path.join(RRTS_ROOT, 'REVISION'), 'utf8').trim().slice(0, 12);
    } catch {
      /* unknown */
    }
  }
  return out;
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
  out.push(`  main thread: ${p.summary.busyMs.toFixed(0)} ms busy, ${p.summary.idleMs.toFixed(0)} ms idle (${fmt.pct(p.summary.busyMs / p.summary.totalMs)} busy)`);
  out.push('  busy time by origin (self time):');
  for (const c of p.summary.categories) out.push(`    ${fmt.pct(c.ofBusy).padStart(4)}  ${c.what}`);
  out.push('  top self-time functions (% of busy):');
  for (const f of p.summary.topSelf) out.push(`    ${(f.ofBusy * 100).toFixed(1).padStart(5)}%  ${f.fn}`);
  out.push('  rrts functions by inclusive time (% of busy):');
  for (const f of p.summary.topRrtsInclusive) out.push(`    ${(f.ofBusy * 100).toFixed(1).padStart(5)}%  ${f.fn}`);
  return out.join('\n');
}

async function profileRrts(opts) {
  const profDir = path.join(tmpDir, 'cpuprof');
  fs.mkdirSync(profDir);
  log('profile: starting a separate rrts under node --cpu-prof');
  const t = await startRrts(opts, { name: 'rrts-profiled', profileDir: profDir });
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
  let opts;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${err.message}\n\n${USAGE}\n`);
    process.exit(2);
  }
  setRrtsRoot(opts.rrtsRoot);
  const tools = checkTools(opts);
  const machine = machineFacts(tools);
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-bench-'));
  log(`temp dir ${tmpDir}`);

  const targets = [];
  const starters = { rrts: () => startRrts(opts), fpm: () => startFpm(opts, tools), node: () => startNode() };
  for (const key of ['rrts', 'fpm', 'node']) {
    if (!opts.targets.includes(key)) continue;
    log(`starting ${key}`);
    const t = await starters[key]();
    log(`${t.label} on ${HOST}:${t.port}: 200, ${t.check.bodyBytes} B body, pids ${t.procs.map((p) => p.pid).join(', ')}`);
    targets.push(t);
  }

  if (opts.warmup.seconds > 0) {
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
  const ratio = (a, b) => (a !== null && b ? a / b : null);
  const ratios = {};
  const pair = (a, b) => ({ rps: ratio(a.rps.median, b.rps.median), p50: ratio(a.p50Ms, b.p50Ms), p99: ratio(a.p99Ms, b.p99Ms) });
  if (summaries.rrts && summaries.fpm) ratios.rrtsOverFpm = pair(summaries.rrts, summaries.fpm);
  if (summaries.rrts && summaries.node) ratios.rrtsOverRawNode = pair(summaries.rrts, summaries.node);

  for (const [k, s] of Object.entries(summaries)) {
    if (s.non2xx) notes.push(`${s.label}: ${s.non2xx} non-2xx/3xx responses under load`);
    const e = s.socketErrors;
    if (e.connect + e.read + e.write + e.timeout) notes.push(`${s.label}: socket errors connect ${e.connect}, read ${e.read}, write ${e.write}, timeout ${e.timeout}`);
    const spread = s.rps.median ? (s.rps.max - s.rps.min) / s.rps.median : 0;
    if (spread > 0.1) notes.push(`${s.label}: req/s spread ${fmt.pct(spread)} of the median across rounds (noisy machine?)`);
    const t = targets.find((x) => x.key === k);
    for (const [name, lines] of Object.entries(t.logs())) {
      if (lines.length) notes.push(`${name} logged ${lines.length} line(s), e.g. ${lines.slice(0, 3).map((l) => l.slice(0, 200)).join(' | ')}`);
    }
  }
  if (machine.nproc <= 4) notes.push(`wrk (${opts.threads} threads) shares the ${machine.nproc} CPUs with the server under test: absolute numbers are low, compare the ratios`);
  for (const s of Object.values(summaries)) {
    const c = s.cpu;
    if (c.machineBusy !== null && c.machineBusy < 0.9) {
      notes.push(`${s.label}: the machine was only ${fmt.pct(c.machineBusy)} busy (median): not CPU-bound, waiting between processes (latency-bound hand-offs) or on the load generator`);
    }
    if (c.otherCoresMax > 0.15) {
      notes.push(`${s.label}: other processes (not the target, wrk or this script) used up to ${c.otherCoresMax.toFixed(2)} cores during its runs (median ${fmt.cores(c.otherCores)}): noisy machine, rerun on a quiet one`);
    }
  }

  let profile = null;
  if (opts.profile) profile = await profileRrts(opts);

  const result = {
    bench: 'hello',
    date: new Date().toISOString(),
    meta: {
      workers: opts.workers,
      rounds: opts.rounds,
      duration: opts.duration.wrk,
      warmup: opts.warmup.wrk,
      connections: opts.connections,
      threads: opts.threads,
      machine,
      rrts: opts.targets.includes('rrts') || opts.profile ? rrtsRevision() : null,
      fpmRunAs: targets.find((t) => t.key === 'fpm')?.runAs ?? null,
    },
    targets: summaries,
    ratios,
    notes,
    profile,
  };
  await cleanup();
  result.stops = Object.fromEntries(procs.map((p) => [p.name, p.stopNote]));
  for (const p of procs) {
    if (!/-> exit code 0 /.test(p.stopNote ?? '') && !/-> killed by SIG(TERM|QUIT)/.test(p.stopNote ?? '')) result.notes.push(`stopping ${p.name}: ${p.stopNote}`);
  }

  process.stdout.write(`${render(result)}\n`);
  if (opts.json) {
    fs.writeFileSync(opts.json, `${JSON.stringify(result, null, 2)}\n`);
    process.stdout.write(`\nJSON written to ${opts.json}\n`);
  } else {
    process.stdout.write(`${JSON.stringify(result)}\n`);
  }
}

main().then(
  () => process.exit(0),
  async (err) => {
    if (!interrupted) process.stderr.write(`\nbench failed: ${err.message}\n`);
    await cleanup();
    process.exit(interrupted ? 130 : 1);
  },
);
