// Shared helpers of the benchmarks in test/bench/ (hello.mjs, fork.mjs, run.mjs): process bookkeeping (start,
// stop by pid, cleanup on exit/^C), /proc readers, the required Debian packages, php-fpm + nginx on a temp config,
// a private RabbitMQ, wrk runs and their parsing, numbers and tables, and the facts about the machine.
//
// Every process started through here is remembered and stopped by pid by cleanup(), which also runs on SIGINT,
// SIGTERM and SIGHUP (runMain) and, as a last resort, synchronously on exit; temp dirs made with makeTempDir() are
// removed by it. Everything listens on and talks to 127.0.0.1 only.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '..', '..');
export const HOST = '127.0.0.1';

export function log(line) {
  process.stderr.write(`[bench] ${line}\n`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class UsageError extends Error {}

// ---------------------------------------------------------------------------------------------- /proc

export let CLK_TCK = 100;
try {
  CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  /* keep 100, Linux' usual */
}

/** { state, ppid, user, sys, cuser, csys (CPU clock ticks), minflt } of one process, or null. */
export function readProcStat(pid) {
  let text;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // Fields 3, 4, 10 and 14-17 of proc(5): state, ppid, minflt, utime, stime, cutime, cstime (children waited for).
  return {
    state: rest[0],
    ppid: Number(rest[1]),
    minflt: Number(rest[7]),
    user: Number(rest[11]),
    sys: Number(rest[12]),
    cuser: Number(rest[13]),
    csys: Number(rest[14]),
  };
}

/** Whether the process runs (a zombie, exited but not yet reaped by its parent, does not count). */
export function alive(pid) {
  const st = readProcStat(pid);
  return st !== null && st.state !== 'Z';
}

function liveProcesses() {
  const out = [];
  let entries = [];
  try {
    entries = fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return out;
  }
  for (const e of entries) {
    const st = readProcStat(Number(e));
    if (st && st.state !== 'Z') out.push({ pid: Number(e), ppid: st.ppid });
  }
  return out;
}

/** The live children of a process, sorted by pid. */
export function childrenOf(ppid) {
  return liveProcesses()
    .filter((p) => p.ppid === ppid)
    .map((p) => p.pid)
    .sort((a, b) => a - b);
}

/** All live descendants of pid (children, grandchildren...). */
export function descendants(pid) {
  const children = new Map();
  for (const p of liveProcesses()) {
    if (!children.has(p.ppid)) children.set(p.ppid, []);
    children.get(p.ppid).push(p.pid);
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

/** Voluntary (blocked: waited for I/O) and involuntary (preempted) context switches of a process so far. */
export function contextSwitches(pid) {
  try {
    const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    return { vcs: Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(text)?.[1] ?? 0), ivcs: Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(text)?.[1] ?? 0) };
  } catch {
    return { vcs: 0, ivcs: 0 };
  }
}

/** CPU ticks and context switches of each of these processes: Map pid -> { user, sys, vcs, ivcs }. */
export function groupTicks(pids) {
  const m = new Map();
  for (const pid of pids) {
    const st = readProcStat(pid);
    if (st) m.set(pid, { user: st.user, sys: st.sys, ...contextSwitches(pid) });
  }
  return m;
}

/** CPU ms (user, sys, total) and context switches between two groupTicks snapshots (new processes count whole). */
export function cpuMsBetween(before, after) {
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

/** Whole-machine CPU jiffies (USER_HZ = CLK_TCK) from /proc/stat: { busy, total, steal }, or null. */
export function machineCpu() {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
    const total = f.reduce((a, b) => a + b, 0);
    return { busy: total - f[3] - f[4], total, steal: f[7] ?? 0 };
  } catch {
    return null;
  }
}

/** Every `Field: N kB` line of /proc/<pid>/smaps_rollup, in bytes; null if the process is gone. */
export function smapsRollup(pid) {
  try {
    const out = {};
    for (const m of fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').matchAll(/^(\w+):\s+(\d+) kB/gm)) out[m[1]] = Number(m[2]) * 1024;
    return out;
  } catch {
    return null;
  }
}

/**
 * Run a phase and measure the CPU other processes used meanwhile: { result, load: { phase, seconds, ourCores,
 * otherCores, stealCores } }. "ours" is this process and its reaped descendants (so every process the phase started
 * must have been stopped by its end), "other" everything else on the machine: the noise the phase suffered.
 */
export async function phase(name, fn) {
  const snap = () => {
    const self = readProcStat(process.pid);
    return { at: performance.now(), machine: machineCpu(), ours: self.user + self.sys + self.cuser + self.csys };
  };
  const a = snap();
  const result = await fn();
  const b = snap();
  const seconds = (b.at - a.at) / 1000;
  const cores = (ticks) => round(ticks / CLK_TCK / seconds, 2);
  const ours = b.ours - a.ours;
  return {
    result,
    load: {
      phase: name,
      seconds: round(seconds, 1),
      ourCores: cores(ours),
      otherCores: cores(Math.max(0, b.machine.busy - a.machine.busy - (b.machine.steal - a.machine.steal) - ours)),
      stealCores: cores(b.machine.steal - a.machine.steal),
    },
  };
}

// ---------------------------------------------------------------------------------------------- processes

/** Every process started with startProcess, in start order. */
const procs = [];
/** Processes started by someone else on our behalf (the in-process spawners of fork.mjs): SIGKILLed at the end. */
export const trackedPids = new Set();
/** Async stoppers run by cleanup() before the processes are stopped (e.g. spawners to close). */
const cleanupHooks = new Set();
const tempDirs = new Set();
const wrkChildren = new Set();
let cleaning = null;

export function onCleanup(fn) {
  cleanupHooks.add(fn);
  return () => cleanupHooks.delete(fn);
}

export function killQuietly(pid, sig = 'SIGKILL') {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone */
  }
}

/** A temp dir (mode 0700) removed by cleanup() and on exit. */
export function makeTempDir(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

export function removeTempDir(dir) {
  try {
    fs.rmSync(dir, { recursive: true, force: true });
  } catch (err) {
    log(`could not remove ${dir}: ${err.message}`);
  }
  tempDirs.delete(dir);
}

/**
 * Spawn a long-running process in its own process group (a terminal ^C reaches us only; we stop it by pid). Its
 * output is kept (the last 32-64 KiB, both streams) in p.out; `onLine(line, stream, atMs)` sees every full line.
 * `graceMs`: how long cleanup() waits after SIGTERM before SIGKILL. `stdin: 'pipe'` leaves p.child.stdin open to write.
 */
export function startProcess(name, cmd, args, { cwd = REPO, env = process.env, onLine = null, graceMs = 10_000, stdin = 'ignore' } = {}) {
  const child = spawn(cmd, args, { cwd, env, stdio: [stdin, 'pipe', 'pipe'], detached: true });
  const p = { name, pid: child.pid, child, exit: null, out: '', stopNote: null, stopped: false, graceMs, descendants: new Set() };
  const partial = { stdout: '', stderr: '' };
  const keep = (stream) => (chunk) => {
    const text = chunk.toString();
    p.out += text;
    if (p.out.length > 64 * 1024) p.out = p.out.slice(-32 * 1024);
    if (onLine) {
      const at = performance.now();
      const lines = (partial[stream] + text).split('\n');
      partial[stream] = lines.pop();
      for (const line of lines) onLine(line, stream, at);
    }
  };
  child.stdout.on('data', keep('stdout'));
  child.stderr.on('data', keep('stderr'));
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

export function describeExit(e) {
  if (!e) return 'running';
  if (e.error) return `failed to start: ${e.error}`;
  return e.signal ? `killed by ${e.signal}` : `exit code ${e.code}`;
}

export function tail(text, lines = 15) {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/** Resolve when `test()` is true on the process' output; reject if it exits or the time runs out. */
export function waitForOutput(p, test, timeoutMs, what) {
  return waitFor(
    () => {
      if (test(p.out)) return true;
      if (p.exit) throw new Error(`${p.name} ${describeExit(p.exit)} before ${what}; its output:\n${tail(p.out)}`);
      return false;
    },
    `${p.name} to report ${what}`,
    timeoutMs,
    () => `; its output:\n${tail(p.out)}`,
  );
}

/** Poll `predicate` every 20 ms until it is true; throws after timeoutMs (with `detail()` appended). */
export async function waitFor(predicate, what, timeoutMs, detail = () => '') {
  const until = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}${detail()}`);
    await sleep(20);
  }
}

/** Remember the current descendants of p (PHP workers, nginx and fpm children), so they are stopped with it. */
export function noteDescendants(p) {
  if (p.exit) return [];
  const ds = descendants(p.pid);
  for (const d of ds) p.descendants.add(d);
  return ds;
}

/**
 * Stop one process by pid: `signal`, wait up to `graceMs`, then SIGKILL. Its descendants (noted now and before)
 * still alive a moment after it has gone are SIGKILLed too. Sets p.stopNote.
 */
export async function stopProcess(p, signal = 'SIGTERM', graceMs = p.graceMs) {
  if (p.stopped) return;
  p.stopped = true;
  noteDescendants(p);
  if (p.exit) {
    p.stopNote ??= `had already ${describeExit(p.exit)}`;
  } else {
    const t0 = Date.now();
    killQuietly(p.pid, signal);
    const timedOut = await Promise.race([p.exited.then(() => false), sleep(graceMs).then(() => true)]);
    if (timedOut) {
      killQuietly(p.pid, 'SIGKILL');
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
  for (const d of left) killQuietly(d);
  if (left.length) p.stopNote += `; ${left.length} child process(es) outlived it and were SIGKILLed (${left.join(', ')})`;
  p.done = true; // its pids may be reused from now on: never signal them again
}

/** Whether a stop note says the process stopped cleanly (exit 0, or the signal it was sent). */
export function stoppedCleanly(p) {
  return /-> exit code 0 /.test(p.stopNote ?? '') || /-> killed by SIG(TERM|QUIT)/.test(p.stopNote ?? '');
}

/** Stop everything still running (cleanup hooks, then every process at once), remove temp dirs. */
export function cleanup() {
  cleaning ??= (async () => {
    for (const w of wrkChildren) killQuietly(w.pid, 'SIGTERM');
    for (const hook of [...cleanupHooks].reverse()) {
      await Promise.race([
        Promise.resolve()
          .then(hook)
          .catch((err) => log(`cleanup: ${err.message}`)),
        sleep(10_000),
      ]);
    }
    // all at once: each is stopped by its own pid, none depends on another
    await Promise.all(procs.filter((p) => !p.stopped).map((p) => stopProcess(p).catch((err) => log(`stopping ${p.name}: ${err.message}`))));
    for (const pid of trackedPids) if (alive(pid)) killQuietly(pid);
    trackedPids.clear();
    for (const dir of [...tempDirs]) removeTempDir(dir);
  })();
  return cleaning;
}

/** All processes started so far, for their stop notes. */
export function startedProcesses() {
  return [...procs];
}

// Last resort if we exit before cleanup() has finished (e.g. a second ^C): kill what is left, synchronously.
process.on('exit', () => {
  for (const p of procs) {
    if (p.done) continue;
    for (const pid of [p.exit ? null : p.pid, ...p.descendants]) if (pid && alive(pid)) killQuietly(pid);
  }
  for (const pid of trackedPids) if (alive(pid)) killQuietly(pid);
  for (const w of wrkChildren) killQuietly(w.pid);
  for (const dir of tempDirs) {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
  }
});

export const state = { interrupted: 0 };

/**
 * Run a benchmark's main(): exit 0 on success; on error or SIGINT/SIGTERM/SIGHUP stop everything first. A usage
 * mistake (UsageError, or what node:util parseArgs throws) prints `usage` and exits 2.
 */
export function runMain(main, usage = '') {
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      state.interrupted++;
      if (state.interrupted > 1) {
        log(`${sig} again: killing everything now`);
        process.exit(130);
      }
      log(`${sig}: stopping everything (again to force)`);
      cleanup().finally(() => process.exit(130));
    });
  }
  main().then(
    () => process.exit(0),
    async (err) => {
      const usageError = err instanceof UsageError || String(err?.code ?? '').startsWith('ERR_PARSE_ARGS');
      if (usageError) process.stderr.write(`${err.message}\n\n${usage}\n`);
      else if (!state.interrupted) process.stderr.write(`\nbench failed: ${err?.stack ?? err}\n`);
      await cleanup().catch(() => undefined);
      process.exit(state.interrupted ? 130 : usageError ? 2 : 1);
    },
  );
}

// ---------------------------------------------------------------------------------------------- network

/** A free TCP port on 127.0.0.1 (asked from the kernel, then released). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * One GET to 127.0.0.1; resolves { status, headers, rawHeaders, body, headBytes }, rejects on a socket error or
 * after timeoutMs. `agent`: a keep-alive agent, or none (a connection of its own).
 */
export function httpGet(port, urlPath = '/', { agent = false, timeoutMs = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: HOST, port, path: urlPath, agent, timeout: timeoutMs }, (res) => {
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

/**
 * Keep-alive load on the bench app's routes: `connections` loops, each sending GET /r<i%50>/<i> one after another
 * on its own socket, until `total` requests were sent (or stop() when total is Infinity). A request fails on a
 * socket error, a status other than 200, or a body that is not the route's answer ("route N id I pid P").
 */
export function startAppLoad(port, connections, total = Infinity) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections });
  const stats = { sent: 0, ok: 0, failed: 0, errors: [], latencies: [], maxMs: 0, stopped: false };
  let next = 0;
  const loop = async () => {
    while (!stats.stopped && next < total) {
      const i = next++;
      const route = i % 50;
      const t0 = performance.now();
      const res = await httpGet(port, `/r${route}/${i}`, { agent, timeoutMs: 60_000 }).catch((err) => ({ status: 0, body: '', error: err.message }));
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

// ---------------------------------------------------------------------------------------------- tools, packages

/** Find an executable in PATH, plus the sbin dirs a non-root PATH often lacks (nginx, php-fpm live there). */
export function which(cmd) {
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

let phpInfoCache = null;
/** { version: '8.2', include: path of Illuminate/autoload.php or null } of the `php` CLI, or null without php. */
function phpInfo() {
  if (phpInfoCache) return phpInfoCache;
  if (!which('php')) return null;
  const r = spawnSync(
    'php',
    ['-r', 'echo PHP_MAJOR_VERSION, ".", PHP_MINOR_VERSION, "\\n", (string) stream_resolve_include_path("Illuminate/autoload.php");'],
    {
      encoding: 'utf8',
      timeout: 20_000,
    },
  );
  if (r.status !== 0) return null;
  const [version, include] = r.stdout.split('\n');
  phpInfoCache = { version: version.trim(), include: include?.trim() || null };
  return phpInfoCache;
}

/** The php-fpm binary of the CLI's PHP version (php-fpm8.2 for PHP 8.2), else any php-fpm found; or null. */
export function findPhpFpm() {
  const v = phpInfo()?.version;
  return (v && which(`php-fpm${v}`)) || which('php-fpm');
}

/** Whether the `php` CLI loads an extension. */
function phpHasExtension(name) {
  if (!which('php')) return false;
  return spawnSync('php', ['-r', `exit(extension_loaded(${JSON.stringify(name)}) ? 0 : 1);`], { timeout: 20_000 }).status === 0;
}

/** Where Debian's package puts the real start script (/usr/sbin/rabbitmq-server only wraps it with su and a cd). */
const RABBITMQ_SERVER = '/usr/lib/rabbitmq/bin/rabbitmq-server';

/**
 * What the benchmarks need, with the Debian package that provides each (the names of the issue). `jobs`: needed by
 * jobs.mjs only (run.mjs --no-jobs leaves them out).
 */
export const REQUIREMENTS = [
  { what: 'php (CLI)', pkg: 'php-cli', present: () => which('php') },
  { what: 'wrk', pkg: 'wrk', present: () => which('wrk') },
  { what: 'nginx', pkg: 'nginx', present: () => which('nginx') },
  { what: 'php-fpm', pkg: 'php-fpm', present: () => findPhpFpm() },
  { what: "Laravel's Illuminate (for the framework app)", pkg: 'php-laravel-framework', present: () => phpInfo()?.include ?? null },
  { what: 'RabbitMQ (the amqp jobs driver and the direct consumers)', pkg: 'rabbitmq-server', present: () => fs.existsSync(RABBITMQ_SERVER), jobs: true },
  { what: "PHP's amqp extension (the direct RabbitMQ consumers)", pkg: 'php-amqp', present: () => phpHasExtension('amqp'), jobs: true },
];

/** The requirements not met now (re-checked on every call); `withJobs: false` leaves out what only jobs.mjs needs. */
export function missingRequirements(names = null, { withJobs = true } = {}) {
  phpInfoCache = null;
  return REQUIREMENTS.filter((r) => (names === null || names.includes(r.pkg)) && (withJobs || !r.jobs) && !r.present());
}

/** Throw with the apt-get line to run if something is missing. */
export function requireTools(names = null) {
  const missing = missingRequirements(names);
  if (missing.length) {
    throw new Error(
      `missing: ${missing.map((m) => `${m.what} (Debian package ${m.pkg})`).join(', ')}\n` +
        `install with: apt-get update && apt-get install -y ${missing.map((m) => m.pkg).join(' ')}   (or run 'npm run bench', which does it as root)`,
    );
  }
}

// ---------------------------------------------------------------------------------------------- php-fpm + nginx

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

/**
 * php-fpm (pm = static, `workers` children, own unix socket) behind nginx (own config: daemon off, master + 1
 * worker, every request to `script`), both from a fresh subdir of `parentDir`, on a free port of 127.0.0.1.
 * `script` is relative to test/bench/; `alsoFiles` (relative too) are what it requires: if www-data (as root) could
 * not read them in place, all are copied into the subdir, keeping their layout. Resolves once nginx answers (any
 * status but 502/503/connection refused) — the caller checks the page itself.
 * Returns { port, dir, fpm, nginx, procs, runAs, logs() }.
 */
export async function startFpmNginx({ parentDir, name, workers, script, alsoFiles = [], label = name }) {
  const fpmBin = findPhpFpm();
  const nginxBin = which('nginx');
  if (!fpmBin || !nginxBin) requireTools(['php-fpm', 'nginx']);
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(parentDir, `${name}-`));
  const sock = path.join(dir, 'php-fpm.sock');
  // As root, php-fpm refuses to run its workers as root without -R, and nginx' worker would be 'nobody': run both
  // as www-data (as the Debian packages do), so the temp dirs and the scripts must be readable by it.
  const asRoot = process.getuid?.() === 0;
  let runAs = null;
  if (asRoot) {
    try {
      execFileSync('id', ['-u', 'www-data'], { stdio: 'ignore' });
      runAs = 'www-data';
    } catch {
      runAs = 'nobody';
    }
    fs.chmodSync(parentDir, 0o755);
    fs.chmodSync(dir, 0o755);
  }
  const group = runAs === 'nobody' ? 'nogroup' : runAs;
  let scriptPath = path.join(HERE, script);
  const files = [script, ...alsoFiles];
  if (runAs && !files.every((f) => worldReadable(path.join(HERE, f)))) {
    const www = path.join(dir, 'www');
    for (const f of files) {
      fs.mkdirSync(path.dirname(path.join(www, f)), { recursive: true, mode: 0o755 });
      fs.copyFileSync(path.join(HERE, f), path.join(www, f));
      fs.chmodSync(path.join(www, f), 0o644);
    }
    fs.chmodSync(www, 0o755);
    scriptPath = path.join(www, script);
  }

  const fpmConf = path.join(dir, 'php-fpm.conf');
  fs.writeFileSync(
    fpmConf,
    `; Written by test/bench/lib.mjs (${label})
[global]
pid = ${dir}/php-fpm.pid
error_log = ${dir}/php-fpm.log
log_level = notice
daemonize = no

[bench]
${runAs ? `user = ${runAs}\ngroup = ${group}\n` : ''}listen = ${sock}
${runAs ? `listen.owner = ${runAs}\nlisten.group = ${group}\n` : ''}listen.mode = 0660
listen.backlog = 511
pm = static
pm.max_children = ${workers}
pm.max_requests = 0
catch_workers_output = no
`,
  );
  const nginxConf = path.join(dir, 'nginx.conf');
  const ngxTmp = (n) => path.join(dir, `nginx-${n}`);
  fs.writeFileSync(
    nginxConf,
    `# Written by test/bench/lib.mjs (${label})
daemon off;
master_process on;
worker_processes 1;
${runAs ? `user ${runAs}${runAs === 'nobody' ? ' nogroup' : ''};\n` : ''}pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;

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
            fastcgi_param SCRIPT_NAME /${path.basename(script)};
            fastcgi_param SCRIPT_FILENAME ${scriptPath};
            fastcgi_param REQUEST_URI $request_uri;
            fastcgi_param DOCUMENT_URI $document_uri;
            fastcgi_param DOCUMENT_ROOT ${path.dirname(scriptPath)};
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
  // php-fpm: SIGTERM = fast stop; nginx: SIGTERM = fast stop.
  const fpm = startProcess(`${name}-php-fpm`, fpmBin, ['-F', '-y', fpmConf]);
  const nginx = startProcess(`${name}-nginx`, nginxBin, ['-e', `${dir}/nginx-error.log`, '-p', dir, '-c', nginxConf]);
  const readLog = (f) => {
    try {
      return fs
        .readFileSync(path.join(dir, f), 'utf8')
        .split('\n')
        .filter((l) => l.trim());
    } catch {
      return [];
    }
  };
  const instance = {
    port,
    dir,
    fpm,
    nginx,
    procs: [fpm, nginx],
    runAs,
    /** the pool's children (pm static: all of them from the start) */
    children: () => childrenOf(fpm.pid),
    logs: () => ({
      // fpm's own start/stop notices are expected; anything else (warnings, errors) is worth a look.
      [`${name} php-fpm`]: readLog('php-fpm.log').filter(
        (l) => !/NOTICE: (fpm is running|ready to handle connections|Terminating|exiting|systemd monitor)/.test(l),
      ),
      [`${name} nginx`]: readLog('nginx-error.log'),
    }),
  };
  // Up when nginx answers and fpm's children are there.
  await waitFor(
    () => {
      if (fpm.exit || nginx.exit)
        throw new Error(
          `${label}: ${fpm.exit ? `php-fpm ${describeExit(fpm.exit)}: ${tail(fpm.out)}` : `nginx ${describeExit(nginx.exit)}: ${tail(nginx.out)}`}`,
        );
      return instance.children().length === workers && fs.existsSync(sock);
    },
    `${label}: ${workers} php-fpm children`,
    15_000,
  );
  noteDescendants(fpm);
  return instance;
}

/** Stop a php-fpm + nginx pair by pid (nginx first). */
export async function stopFpmNginx(instance) {
  await stopProcess(instance.nginx);
  await stopProcess(instance.fpm);
}

// ---------------------------------------------------------------------------------------------- RabbitMQ

/**
 * A private RabbitMQ broker, as the tests start it (test/support/rabbitmq.ts): Debian's rabbitmq-server run as a
 * plain process with its own data directory (a fresh subdir of `parentDir`), node name, ports and epmd, all on
 * 127.0.0.1. Resolves once it accepts AMQP connections: { port, url, dir, server, epmd, pids() }; stop it with
 * stopRabbitMq (or cleanup(): both processes are stopped by pid).
 */
export async function startRabbitMq(parentDir) {
  if (!fs.existsSync(RABBITMQ_SERVER)) requireTools(['rabbitmq-server']);
  const { default: amqp } = await import('amqplib');
  const dir = fs.mkdtempSync(path.join(parentDir, 'rabbitmq-'));
  const [port, distPort, epmdPort] = [await freePort(), await freePort(), await freePort()];
  fs.writeFileSync(
    path.join(dir, 'rabbitmq.conf'),
    [
      `listeners.tcp.default = ${HOST}:${port}`,
      // bench machines may have little free disk; the default 50 MB alarm would block the publishers
      'disk_free_limit.absolute = 1MB',
      'log.console = false',
      'log.file.level = warning',
      '',
    ].join('\n'),
  );
  fs.writeFileSync(path.join(dir, 'enabled_plugins'), '[].\n');
  const epmd = startProcess('epmd', 'epmd', ['-port', String(epmdPort), '-address', HOST]);
  const env = {
    PATH: process.env.PATH,
    LANG: 'C.UTF-8',
    HOME: dir, // the Erlang cookie goes to $HOME
    RABBITMQ_NODENAME: `rrts-bench-${process.pid}@localhost`,
    RABBITMQ_NODE_IP_ADDRESS: HOST,
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    ERL_EPMD_PORT: String(epmdPort),
    ERL_EPMD_ADDRESS: HOST,
    RABBITMQ_LOG_BASE: path.join(dir, 'log'),
    RABBITMQ_MNESIA_BASE: path.join(dir, 'mnesia'),
    RABBITMQ_CONFIG_FILE: path.join(dir, 'rabbitmq'),
    RABBITMQ_ADVANCED_CONFIG_FILE: path.join(dir, 'advanced.config'),
    RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dir, 'enabled_plugins'),
    RABBITMQ_CONF_ENV_FILE: path.join(dir, 'rabbitmq-env.conf'),
    RABBITMQ_PID_FILE: path.join(dir, 'rabbitmq.pid'),
  };
  // SIGTERM makes the start script stop the broker cleanly (rabbitmqctl stop), which takes a few seconds
  const server = startProcess('rabbitmq-server', RABBITMQ_SERVER, [], { cwd: dir, env, graceMs: 30_000 });
  const url = `amqp://guest:guest@${HOST}:${port}/`;
  const until = Date.now() + 90_000;
  for (;;) {
    if (server.exit) throw new Error(`rabbitmq-server ${describeExit(server.exit)} while starting:\n${tail(server.out)}`);
    try {
      const connection = await amqp.connect(url);
      await connection.close();
      break;
    } catch {
      if (Date.now() > until) throw new Error(`rabbitmq-server did not accept AMQP on ${HOST}:${port} within 90 s:\n${tail(server.out)}`);
      await sleep(100);
    }
  }
  noteDescendants(server); // the Erlang VM and its helpers: stopped with the script
  return { port, url, dir, server, epmd, pids: () => [server.pid, ...descendants(server.pid)] };
}

export async function stopRabbitMq(broker) {
  await stopProcess(broker.server);
  await stopProcess(broker.epmd);
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

/**
 * One `wrk --latency` run of `duration` ({ wrk: '10s', seconds: 10 }) against http://127.0.0.1:<port><path>, with
 * the CPU time of the target's process groups ({ front: pids, php: pids } from target.groups()) sampled around it.
 */
export async function runWrk(target, { threads, connections }, duration) {
  const url = `http://${HOST}:${target.port}${target.path ?? '/'}`;
  const args = [`-t${threads}`, `-c${connections}`, `-d${duration.wrk}`, '--latency', url];
  const groups = target.groups();
  const before = { front: groupTicks(groups.front), php: groupTicks(groups.php), machine: machineCpu(), self: readProcStat(process.pid) };
  const wall0 = process.hrtime.bigint();
  const out = await new Promise((resolve, reject) => {
    const child = spawn(which('wrk') ?? 'wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    wrkChildren.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), (duration.seconds + 60) * 1000);
    child.once('error', (err) => {
      clearTimeout(timer);
      wrkChildren.delete(child);
      reject(new Error(`cannot run wrk: ${err.message}`));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      wrkChildren.delete(child);
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
    const machineMs = (after.machine.busy - before.machine.busy - (after.machine.steal - before.machine.steal)) * tick;
    r.cpu.otherCores = Math.max(0, (machineMs - front.ms - php.ms) / wallMs - r.cpu.wrkCores - r.cpu.benchCores);
  }
  r.raw = out;
  return r;
}

/** wrk's duration syntax (an integer with s, m or h; bare = seconds) -> { wrk: '10s', seconds: 10 }. */
export function parseDuration(text, what, allowZero = false) {
  const m = /^(\d+)(s|m|h)?$/.exec(String(text).trim());
  if (!m) throw new UsageError(`${what} must look like 10s, 2m or 1h, got '${text}'`);
  const seconds = Number(m[1]) * { s: 1, m: 60, h: 3600 }[m[2] ?? 's'];
  if (seconds === 0 && !allowZero) throw new UsageError(`${what} must be more than 0`);
  return { wrk: `${m[1]}${m[2] ?? 's'}`, seconds };
}

// ---------------------------------------------------------------------------------------------- numbers, tables

/** Nearest-rank percentile of a sorted array (p50 of an even count: the mean of the middle two); NaN if empty. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  if (p === 50 && sorted.length % 2 === 0) return (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** Median of the finite numbers among xs (nulls skipped), or null. */
export function median(xs) {
  const s = xs.filter((x) => x !== null && Number.isFinite(x)).sort((a, b) => a - b);
  return s.length ? percentile(s, 50) : null;
}

export function round(x, digits) {
  if (x === null || !Number.isFinite(x)) return null;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export const MiB = (bytes) => (bytes / 2 ** 20).toFixed(1);

/** A Markdown (GitHub) table: first column left-aligned, the others right-aligned. */
export function table(head, rows) {
  const cells = [head, ...rows].map((r) => r.map((c) => String(c ?? '-')));
  const widths = head.map((_, i) => Math.max(3, ...cells.map((r) => r[i].length)));
  const line = (r) => `| ${r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(cells[0]), rule, ...cells.slice(1).map(line)].join('\n');
}

// ---------------------------------------------------------------------------------------------- facts

/** The machine and the software the numbers come from. */
export function machineFacts() {
  // nginx -v prints to stderr, wrk -v to stdout with exit code 1: take whatever came out, from either.
  const first = (cmd, args) => {
    if (!which(cmd)) return null;
    const r = spawnSync(which(cmd), args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
    return `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n')[0].trim() || null;
  };
  const fpm = findPhpFpm();
  return {
    nproc: os.availableParallelism?.() ?? os.cpus().length,
    cpuModel: os.cpus()[0]?.model?.trim() ?? '?',
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    virtualized: /^flags\s*:.*\bhypervisor\b/m.test(readText('/proc/cpuinfo')),
    node: process.version,
    php: first('php', ['-v'])?.replace(/ \(built: [^)]*\)/, '') ?? null,
    phpFpm: fpm ? path.basename(fpm) : null,
    nginx: first('nginx', ['-v'])?.replace(/^nginx version: /, '') ?? null,
    wrk: first('wrk', ['-v'])?.replace(/ \[.*$/, '') ?? null,
    laravel: first('dpkg-query', ['-W', '-f=${Version}', 'php-laravel-framework']),
  };
}

function readText(file) {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** Which rrts was measured: the git commit of `root` (or a REVISION file) and how many src/ files differ from it. */
export function rrtsRevision(root = REPO) {
  const git = (args) => execFileSync('git', ['-C', root, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  const out = { root, commit: null, dirtySrcFiles: null };
  try {
    if (path.resolve(git(['rev-parse', '--show-toplevel'])) === path.resolve(root)) {
      out.commit = git(['rev-parse', '--short', 'HEAD']);
      out.dirtySrcFiles = git(['status', '--porcelain', '--', 'src', 'php']).split('\n').filter(Boolean).length;
    }
  } catch {
    /* not a git checkout */
  }
  if (!out.commit) out.commit = readText(path.join(root, 'REVISION')).trim().slice(0, 12) || null;
  return out;
}
