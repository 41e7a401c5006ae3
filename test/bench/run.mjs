#!/usr/bin/env node
// The benchmark suite in one run (`npm run bench`, `npm run bench -- --quick`): rrts against php-fpm + nginx and
// against itself (exec vs fork mode), as ratios.
//
// 1. Checks the Debian packages it needs (php-fpm, nginx, wrk, php-laravel-framework) and, as root with apt-get,
//    installs the missing ones (services kept from starting while it does); otherwise it names them and stops.
//    The jobs part also needs rabbitmq-server and php-amqp.
// 2. Runs test/bench/hello.mjs (throughput and latency: hello and framework app on rrts exec/fork, php-fpm + nginx,
//    raw node; CPU of the rrts process per 1,000 requests), test/bench/fork.mjs (memory of 8 workers exec/fork/
//    php-fpm, worker start latency, reset under load) and test/bench/jobs.mjs (jobs drain rate: rrts amqp and memory
//    against php-amqp consumers; --no-jobs skips it), one after the other, each writing its JSON to a temp file.
//    A full run then runs test/bench/elastic.mjs (the elastic pool, ~2 min; --no-elastic skips it).
// 3. Prints ONE table of ratios with each target and whether it was met (the jobs rows as a table of their own),
//    the machine, and the wall time (and the elastic pool's targets on lines of their own).
//    Full mode also writes docs/benchmarks.svg (a bar chart, hand-written SVG) and regenerates the results section
//    of docs/benchmarks.md between its marker comments; --quick (about a minute and a half) only prints. --json FILE saves
//    everything; --from-json FILE renders a saved run again without running anything.
// Every process is started and stopped by the two scripts (by pid, also on ^C); this script stops them by pid on
// SIGINT/SIGTERM (they then stop theirs) and removes its temp dir.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  cleanup,
  HERE,
  killQuietly,
  log,
  machineFacts,
  makeTempDir,
  missingRequirements,
  onCleanup,
  REPO,
  round,
  rrtsRevision,
  runMain,
  sleep,
  state,
  table,
  UsageError,
  which,
} from './lib.mjs';

const DOC = path.join(REPO, 'docs', 'benchmarks.md');
const SVG = path.join(REPO, 'docs', 'benchmarks.svg');
const BEGIN = '<!-- bench:results:begin (written by test/bench/run.mjs: do not edit by hand) -->';
const END = '<!-- bench:results:end -->';

const USAGE = `usage: npm run bench [-- --quick] [-- --json FILE]   (or: node test/bench/run.mjs [options] after npm run build)
  --quick      short run (about a minute and a half with the build): prints the table, writes no file
  --json FILE  also write all results (the table rows, both scripts' JSON and output) to FILE
  --from-json FILE  run nothing: print (and, for a full run, write the doc and chart) from a saved --json FILE
  --no-install do not apt-get install missing packages, only name them
  --no-jobs    skip test/bench/jobs.mjs (and its packages, rabbitmq-server and php-amqp)
  --no-elastic skip test/bench/elastic.mjs (the elastic pool, ~2 min; a full run only, --quick never runs it)
  -h, --help`;

// ---------------------------------------------------------------------------------------------- packages

/** Install what is missing with apt-get (as root), or say what to install. */
function ensurePackages(allowInstall, withJobs) {
  let missing = missingRequirements(null, { withJobs });
  if (!missing.length) return;
  const pkgs = missing.map((m) => m.pkg);
  const asRoot = process.getuid?.() === 0;
  if (!allowInstall || !asRoot || !which('apt-get')) {
    throw new Error(
      `missing: ${missing.map((m) => `${m.what} (Debian package ${m.pkg})`).join(', ')}\n` +
        `install them as root: apt-get update && apt-get install -y ${pkgs.join(' ')}` +
        (allowInstall ? (asRoot ? ' (no apt-get here)' : ' (not root, so not installed for you)') : ''),
    );
  }
  log(`installing ${pkgs.join(' ')} with apt-get`);
  // Debian starts nginx (port 80) and php-fpm as services on install: a policy-rc.d that says "no" (exit 101) keeps
  // them from starting while we install, unless the machine already has one of its own.
  const policy = '/usr/sbin/policy-rc.d';
  const ownPolicy = !fs.existsSync(policy);
  if (ownPolicy)
    fs.writeFileSync(policy, '#!/bin/sh\n# written for a moment by rrts test/bench/run.mjs: no service starts while it installs\nexit 101\n', { mode: 0o755 });
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const apt = (args) => spawnSync('apt-get', args, { stdio: ['ignore', 'inherit', 'inherit'], env, timeout: 15 * 60_000 }).status;
    if (apt(['install', '-y', '--no-install-recommends', ...pkgs]) !== 0) {
      log('apt-get install failed; apt-get update, then again');
      apt(['update']);
      apt(['install', '-y', '--no-install-recommends', ...pkgs]);
    }
  } finally {
    if (ownPolicy) fs.rmSync(policy, { force: true });
  }
  missing = missingRequirements(null, { withJobs });
  if (missing.length) throw new Error(`still missing after apt-get: ${missing.map((m) => `${m.what} (${m.pkg})`).join(', ')}`);
}

// ---------------------------------------------------------------------------------------------- the two scripts

/** Run one bench script to its end: progress passes through to stderr, its tables are returned (and echoed). */
async function runScript(name, args) {
  const script = path.join(HERE, name);
  log(`node test/bench/${name} ${args.join(' ')}`);
  const child = spawn(process.execPath, [script, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stdout = '';
  child.stdout.on('data', (c) => (stdout += c));
  child.stderr.on('data', (c) => process.stderr.write(c));
  const exited = new Promise((resolve) => {
    child.once('error', (err) => resolve({ code: null, error: err.message }));
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  // Stopped by pid when we are interrupted: it stops everything it started itself (SIGKILL after 60 s).
  const unhook = onCleanup(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    killQuietly(child.pid, 'SIGTERM');
    if (await Promise.race([exited.then(() => false), sleep(60_000).then(() => true)])) killQuietly(child.pid);
  });
  const exit = await exited;
  unhook();
  if (state.interrupted) throw new Error('interrupted');
  const text = stdout.replace(/\nJSON written to .*\n?/, '\n').trimEnd();
  if (exit.code !== 0)
    throw new Error(
      `test/bench/${name} failed (${exit.error ?? (exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`)})${text ? `; its output:\n${text}` : ''}`,
    );
  process.stdout.write(`${text}\n\n`);
  return text;
}

// ---------------------------------------------------------------------------------------------- the table

const x = (v, d = 2) => (v === null || v === undefined || !Number.isFinite(v) ? '-' : `${v.toFixed(d)}x`);
const ms = (v) => (v === null || v === undefined || !Number.isFinite(v) ? '-' : `${v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : Math.round(v)} ms`);
const mib = (b) => `${(b / 2 ** 20).toFixed(1)} MiB`;

/** How far a value is towards its target (1 = just met; for "<=" targets the inverse). */
function reached(row) {
  const { op, v } = row.target;
  if (row.value === null || !Number.isFinite(row.value)) return null;
  if (op === '>=') return row.value / v;
  if (op === '<=') return row.value === 0 ? Infinity : v / row.value;
  return row.value === v ? 1 : 0; // '='
}

function verdictOf(row) {
  if (!row.target) return '';
  const r = reached(row);
  if (r === null) return 'not measured';
  return r >= 1 ? 'met' : 'missed';
}

/** The rows of the summary: the issue's five measures, each target, what was reached, spread and noise. */
export function buildRows(hello, fork, jobs = null) {
  const rows = [];
  const t = hello?.targets ?? {};
  const r = hello?.ratios ?? {};
  const noiseOf = (...keys) => {
    const v = keys.map((k) => t[k]?.cpu?.otherCores).filter((n) => n !== null && n !== undefined);
    return v.length ? Math.max(...v) : null;
  };
  const roundsSpread = (ratio) => (ratio && ratio.rpsRounds.length > 1 ? `${ratio.rpsMin.toFixed(2)}-${ratio.rpsMax.toFixed(2)}x` : '1 round');
  const tput = (key, measure, ratioName, a, b, target) => {
    const ratio = r[ratioName];
    // 3 decimals where 2 would round a missed target up to it (0.598x is not 0.60x)
    const digits = ratio && Math.abs(ratio.rps - target.v) < 0.01 ? 3 : 2;
    rows.push({
      key,
      group: '1. throughput',
      measure,
      value: ratio?.rps ?? null,
      text: x(ratio?.rps, digits),
      spread: ratio ? roundsSpread(ratio) : '-',
      target,
      noise: noiseOf(a, b),
    });
  };
  tput('helloExecOverFpm', 'hello req/s: rrts exec / php-fpm+nginx', 'helloExecOverFpm', 'rrts', 'fpm', { op: '>=', v: 1.4, text: '>= 1.4x' });
  tput('helloForkOverFpm', 'hello req/s: rrts fork / php-fpm+nginx', 'helloForkOverFpm', 'rrts-fork', 'fpm', { op: '>=', v: 1.4, text: '>= 1.4x' });
  // Only with RRTS_BENCH_SDK (or hello.mjs --sdk): what a RoadRunner user's worker gets.
  if (r.sdkExecOverFpm)
    tput('sdkExecOverFpm', "hello via the SDK's PSR7Worker req/s: rrts exec / php-fpm+nginx", 'sdkExecOverFpm', 'sdk-rrts', 'fpm', {
      op: '>=',
      v: 1,
      text: '>= 1.0x',
    });
  if (r.sdkForkOverFpm)
    tput('sdkForkOverFpm', "hello via the SDK's PSR7Worker req/s: rrts fork / php-fpm+nginx", 'sdkForkOverFpm', 'sdk-rrts-fork', 'fpm', {
      op: '>=',
      v: 1,
      text: '>= 1.0x',
    });
  tput('helloExecOverNode', 'hello req/s: rrts exec / raw node http', 'helloExecOverNode', 'rrts', 'node', { op: '>=', v: 0.6, text: '>= 0.6x' });
  tput('helloForkOverNode', 'hello req/s: rrts fork / raw node http', 'helloForkOverNode', 'rrts-fork', 'node', { op: '>=', v: 0.6, text: '>= 0.6x' });
  tput('appExecOverFpm', 'framework app req/s: rrts exec / php-fpm+nginx', 'appExecOverFpm', 'app-rrts', 'app-fpm', { op: '>=', v: 30, text: '>= 30x' });
  tput('appForkOverFpm', 'framework app req/s: rrts fork / php-fpm+nginx', 'appForkOverFpm', 'app-rrts-fork', 'app-fpm', { op: '>=', v: 30, text: '>= 30x' });
  const lat = (key, measure, ratioName, a, b) => {
    const ratio = r[ratioName];
    if (!ratio) return;
    rows.push({
      key,
      group: '1. throughput',
      measure,
      value: null,
      text: `${x(ratio.p50)} / ${x(ratio.p99)}`,
      spread: `${ms(t[a]?.p50Ms)} / ${ms(t[a]?.p99Ms)} vs ${ms(t[b]?.p50Ms)} / ${ms(t[b]?.p99Ms)}`,
      target: null,
      noise: noiseOf(a, b),
    });
  };
  lat('helloLatency', 'hello latency p50 / p99: rrts exec / php-fpm (< 1 = rrts faster)', 'helloExecOverFpm', 'rrts', 'fpm');
  lat('appLatency', 'app latency p50 / p99: rrts fork / php-fpm (< 1 = rrts faster)', 'appForkOverFpm', 'app-rrts-fork', 'app-fpm');

  if (fork) {
    const phaseNoise = (prefix) => {
      const v = fork.cpu.filter((l) => l.phase.startsWith(prefix)).map((l) => l.otherCores);
      return v.length ? Math.max(...v) : null;
    };
    const m = fork.memory;
    const mr = fork.memoryRatios ?? { forkOverExec: fork.memoryRatio };
    rows.push({
      key: 'memoryForkOverExec',
      group: '2. memory',
      measure: `total PSS, 8 workers after ${m.fork.requests} requests: fork / exec`,
      value: mr.forkOverExec,
      text: x(mr.forkOverExec, 3),
      spread: `${mib(m.fork.totalPss)} / ${mib(m.exec.totalPss)}`,
      target: { op: '<=', v: 0.15, text: '<= 0.15x' },
      noise: phaseNoise('memory'),
    });
    if (m.fpm) {
      rows.push({
        key: 'memoryForkOverFpm',
        group: '2. memory',
        measure: 'total PSS: fork / php-fpm (master + 8 children)',
        value: null,
        text: x(mr.forkOverFpm, 3),
        spread: `${mib(m.fork.totalPss)} / ${mib(m.fpm.totalPss)}`,
        target: null,
        noise: phaseNoise('memory'),
      });
      rows.push({
        key: 'memoryUss',
        group: '2. memory',
        measure: 'USS per worker (median): fork / exec / php-fpm child',
        value: null,
        text: `${mib(m.fork.workerUssMedian)} / ${mib(m.exec.workerUssMedian)} / ${mib(m.fpm.workerUssMedian)}`,
        spread: '-',
        target: null,
        noise: phaseNoise('memory'),
      });
    }
    for (const app of ['framework', 'hello']) {
      const s = fork.startRatios[app];
      const spares = s.spares ? `, ${s.spares} spare` : '';
      rows.push({
        key: `start${app}ForkP50`,
        group: '3. worker start',
        measure: `${app}: fork worker start p50${spares}`,
        value: s.forkP50,
        text: ms(s.forkP50),
        spread: `p95 ${ms(s.forkP95)}${s.forkNoSparesP50 !== null && s.forkNoSparesP50 !== undefined ? `; no spares p50 ${ms(s.forkNoSparesP50)}` : ''}`,
        target: { op: '<=', v: 3, text: '<= 3 ms' },
        noise: phaseNoise(`start ${app}`),
      });
      rows.push({
        key: `start${app}Ratio`,
        group: '3. worker start',
        measure: `${app}: exec p50 / fork p50`,
        value: s.execOverFork,
        text: x(s.execOverFork, 1),
        spread: `exec p50 ${ms(s.execP50)}, p95 ${ms(s.execP95)}`,
        target: { op: '>=', v: 80, text: '>= 80x' },
        noise: phaseNoise(`start ${app}`),
      });
    }
    // under load (4 connections), or idle (connections 0); runs without `connections` were all under load
    const reset = (mode, n, idle = false) => fork.reset.find((q) => q.mode === mode && q.workers === n && (q.connections === 0) === idle);
    const f16 = reset('fork', 16);
    rows.push({
      key: 'resetFork16',
      group: '4. reset',
      measure: 'rrts reset, 16 fork workers under load (wall time)',
      value: f16?.resetMs ?? null,
      text: ms(f16?.resetMs),
      spread: f16?.oldGoneMs ? `old ones gone after ${ms(f16.oldGoneMs)}` : '-',
      target: { op: '<=', v: 150, text: '<= 150 ms' },
      noise: phaseNoise('reset fork 16'),
    });
    const f16Idle = reset('fork', 16, true);
    if (f16Idle)
      rows.push({
        key: 'resetFork16Idle',
        group: '4. reset',
        measure: 'rrts reset, 16 fork workers, idle server (wall time)',
        value: f16Idle.resetMs,
        text: ms(f16Idle.resetMs),
        spread: f16Idle.oldGoneMs ? `old ones gone after ${ms(f16Idle.oldGoneMs)}` : '-',
        target: { op: '<=', v: 150, text: '<= 150 ms' },
        noise: phaseNoise('reset fork 16 idle'),
      });
    for (const n of [4, 16]) {
      const e = reset('exec', n);
      const f = reset('fork', n);
      if (e && f)
        rows.push({
          key: `reset${n}`,
          group: '4. reset',
          measure: `rrts reset, ${n} workers: exec / fork`,
          value: null,
          text: x(e.resetMs / f.resetMs, 1),
          spread: `${ms(e.resetMs)} / ${ms(f.resetMs)}`,
          target: null,
          noise: phaseNoise(`reset`),
        });
      else if (e)
        rows.push({
          key: `reset${n}exec`,
          group: '4. reset',
          measure: `rrts reset, ${n} exec workers (wall time)`,
          value: null,
          text: ms(e.resetMs),
          spread: '-',
          target: null,
          noise: phaseNoise(`reset exec ${n}`),
        });
    }
    rows.push({
      key: 'resetFailed',
      group: '4. reset',
      measure: `requests failed during the resets (${fork.reset.map((q) => `${q.mode} ${q.workers}${q.connections === 0 ? ' idle' : ''}`).join(', ')})`,
      value: fork.resetFailed,
      text: String(fork.resetFailed),
      spread: `of ${fork.reset.reduce((a, q) => a + q.requests, 0)}`,
      target: { op: '=', v: 0, text: '= 0' },
      noise: phaseNoise('reset'),
    });
  }
  const fr = hello?.frontRatios ?? {};
  for (const [key, label, a] of [
    ['frontExecOverNginx', 'hello, exec', 'rrts'],
    ['frontForkOverNginx', 'hello, fork', 'rrts-fork'],
    ['frontSdkExecOverNginx', 'hello via the SDK, exec', 'sdk-rrts'],
    ['frontSdkForkOverNginx', 'hello via the SDK, fork', 'sdk-rrts-fork'],
  ]) {
    const ratio = fr[key];
    if (!ratio) continue;
    const known = ratio.frontRounds.filter((v) => v !== null);
    rows.push({
      key,
      group: '5. overhead',
      measure: `front CPU per request: the rrts process / nginx, same rounds (${label})`,
      value: ratio.front,
      text: x(ratio.front),
      spread: `${Math.round(ratio.aUs)} / ${Math.round(ratio.bUs)} us${known.length > 1 ? `; rounds ${Math.min(...known).toFixed(2)}-${Math.max(...known).toFixed(2)}x` : ''}`,
      target: { op: '<=', v: 0.8, text: '<= 0.8x' },
      noise: noiseOf(a, 'fpm'),
    });
  }
  for (const [key, label] of [
    ['rrts', 'hello, exec'],
    ['rrts-fork', 'hello, fork'],
    ['app-rrts', 'app, exec'],
    ['app-rrts-fork', 'app, fork'],
  ]) {
    const c = t[key]?.cpu;
    if (!c) continue;
    const rs = c.frontUsPerReqRounds.filter((v) => v !== null);
    rows.push({
      key: `cpu-${key}`,
      group: '5. overhead',
      measure: `CPU of the rrts process per 1,000 requests (${label})`,
      value: null,
      text: ms(c.frontUsPerReq),
      spread: rs.length > 1 ? `${Math.round(Math.min(...rs))}-${Math.round(Math.max(...rs))} ms` : '1 round',
      target: null,
      noise: noiseOf(key),
    });
  }
  if (jobs) rows.push(...jobsRows(jobs));
  return rows;
}

/** The jobs rows (jobs.mjs): the issue's two drain-rate ratios, exactly-once, and each target's rate. */
function jobsRows(jobs) {
  const rows = [];
  const t = jobs.targets;
  const noise = (...keys) => {
    const v = keys.map((k) => t[k]?.otherCoresMax).filter((n) => n !== null && n !== undefined);
    return v.length ? Math.max(...v) : null;
  };
  const rate = (key) => (t[key] ? `${Math.round(t[key].rate.median).toLocaleString('en-US')} jobs/s` : '-');
  const spread = (ratio) => (ratio && ratio.rounds.length > 1 ? `rounds ${ratio.min.toFixed(2)}-${ratio.max.toFixed(2)}x` : '1 round');
  const r = jobs.ratios;
  rows.push({
    key: 'jobsAmqpOverDirect',
    group: '6. jobs',
    measure: `jobs/s, ${jobs.meta.workers} consumers doing nothing: rrts amqp / php-amqp direct (prefetch ${jobs.meta.prefetch}${jobs.meta.directPrefetch !== undefined && jobs.meta.directPrefetch !== jobs.meta.prefetch ? ` / ${jobs.meta.directPrefetch} each` : ''})`,
    value: r.amqpOverDirect?.value ?? null,
    text: x(r.amqpOverDirect?.value),
    spread: `${rate('rrts-amqp')} / ${rate('direct')}; ${spread(r.amqpOverDirect)}`,
    target: { op: '>=', v: 0.8, text: '>= 0.8x' },
    noise: noise('rrts-amqp', 'direct'),
  });
  rows.push({
    key: 'jobsMemoryOverAmqp',
    group: '6. jobs',
    measure: 'jobs/s: rrts memory / rrts amqp',
    value: r.memoryOverAmqp?.value ?? null,
    text: x(r.memoryOverAmqp?.value),
    spread: `${rate('rrts-memory')} / ${rate('rrts-amqp')}; ${spread(r.memoryOverAmqp)}`,
    target: { op: '>=', v: 2, text: '>= 2x' },
    noise: noise('rrts-memory', 'rrts-amqp'),
  });
  const c = jobs.check;
  const wrong = c.lost + c.duplicated + c.outOfRange + (c.leftInQueue ?? 0);
  rows.push({
    key: 'jobsLostOrTwice',
    group: '6. jobs',
    measure: 'jobs lost or done twice, over every drain',
    value: wrong,
    text: String(wrong),
    spread: `of ${c.pushed.toLocaleString('en-US')} (${c.lost} lost, ${c.duplicated} twice${c.leftInQueue ? `, ${c.leftInQueue} left unacked` : ''})`,
    target: { op: '=', v: 0, text: '= 0' },
    noise: null,
  });
  for (const [key, s] of Object.entries(t)) {
    const us = s.usPerJob;
    rows.push({
      key: `jobsCpu-${key}`,
      group: '6. jobs',
      measure: `CPU per job, ${s.label}: ${us.rrts === null ? '' : 'rrts node + '}PHP + broker`,
      value: null,
      text: [us.rrts, us.php, us.broker]
        .filter((v) => v !== null)
        .map((v) => `${Math.round(v)}`)
        .join(' + ')
        .concat(' us'),
      spread: `${rate(key)}, rounds ${Math.round(s.rate.min).toLocaleString('en-US')}-${Math.round(s.rate.max).toLocaleString('en-US')}${s.pushRate ? `; pushed ${Math.round(s.pushRate.median).toLocaleString('en-US')} jobs/s` : ''}`,
      target: null,
      noise: s.otherCoresMax,
    });
  }
  return rows;
}

function renderTable(rows) {
  return table(
    ['measure', 'result', 'detail / spread', 'target', 'verdict', 'noise (cores)'],
    rows.map((row) => [
      `${row.group.slice(0, 2)} ${row.measure}`,
      row.text,
      row.spread,
      row.target?.text ?? '-',
      verdictOf(row) || '-',
      row.noise === null || row.noise === undefined ? '-' : row.noise.toFixed(2),
    ]),
  );
}

function machineLine(machine, rev) {
  return (
    `${machine.cpuModel}, ${machine.nproc} cores${machine.virtualized ? ' (virtual machine)' : ''}, ${machine.memGiB} GiB, Linux ${machine.kernel}; ` +
    `node ${machine.node}, ${machine.php}, ${machine.phpFpm ?? 'no php-fpm'}, ${machine.nginx ?? 'no nginx'}, ${machine.wrk ?? 'no wrk'}, Laravel ${machine.laravel ?? '-'}; ` +
    `rrts ${rev.commit ?? '?'}${rev.dirtySrcFiles ? ` + ${rev.dirtySrcFiles} uncommitted src/php file(s)` : ''}`
  );
}

// ---------------------------------------------------------------------------------------------- the elastic pool

/**
 * The elastic pool's targets (issue 18, docs/pool.md) from elastic.mjs's JSON, as lines of their own: its numbers are
 * latencies of one burst, not the ratios of the table above. The max_jobs target needs a baseline checkout, which
 * the suite does not build: elastic.mjs --baseline DIR measures it.
 */
export function elasticSummary(elastic) {
  const line = (key) => elastic.bursts.find((b) => b.key === key);
  const fork = line('forkDynamic');
  const reference = line('forkStatic');
  const { idleTimeoutMs, tickMs } = elastic.meta;
  const verdict = (ok) => (ok === null ? 'not measured' : ok ? 'met' : 'missed');
  const ratio = fork && reference ? fork.p99 / reference.p99 : null;
  const failed = elastic.bursts.reduce((n, b) => n + b.failed, 0);
  const rows = [
    ['fork burst 0 -> 32: the last request got a worker after', ms(fork?.lastWait), '<= 100 ms', verdict(fork ? fork.lastWait <= 100 : null)],
    [
      'fork burst p99 / a fork pool of 32 from the start',
      `${x(ratio)} (${ms(fork?.p99)} / ${ms(reference?.p99)})`,
      '<= 1.5x',
      verdict(ratio === null ? null : ratio <= 1.5),
    ],
    [
      'fork: extra workers gone after the burst',
      ms(fork?.goneMs),
      `<= ${idleTimeoutMs + tickMs} ms`,
      verdict(fork?.goneMs === null || fork?.goneMs === undefined ? null : fork.goneMs <= idleTimeoutMs + tickMs),
    ],
    ['failed requests in all bursts', String(failed), '0', verdict(failed === 0)],
    ['max_jobs 50: p99 with / without replacement first', '-', '<= 0.5x', 'not measured (elastic.mjs --baseline DIR)'],
  ];
  return table(['elastic pool (issue 18)', 'result', 'target', 'verdict'], rows);
}

// ---------------------------------------------------------------------------------------------- the chart

function esc(s) {
  return String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
}

/** Short names of the target rows for the chart. */
const CHART_LABEL = {
  helloExecOverFpm: 'hello req/s: exec / php-fpm',
  helloForkOverFpm: 'hello req/s: fork / php-fpm',
  helloExecOverNode: 'hello req/s: exec / raw node',
  helloForkOverNode: 'hello req/s: fork / raw node',
  appExecOverFpm: 'app req/s: exec / php-fpm',
  appForkOverFpm: 'app req/s: fork / php-fpm',
  sdkExecOverFpm: 'SDK hello req/s: exec / php-fpm',
  sdkForkOverFpm: 'SDK hello req/s: fork / php-fpm',
  frontExecOverNginx: 'front CPU/req: exec / nginx',
  frontForkOverNginx: 'front CPU/req: fork / nginx',
  frontSdkExecOverNginx: 'front CPU/req: SDK exec / nginx',
  frontSdkForkOverNginx: 'front CPU/req: SDK fork / nginx',
  memoryForkOverExec: 'memory PSS: fork / exec',
  startframeworkForkP50: 'start p50: app, fork',
  startframeworkRatio: 'start p50: app, exec / fork',
  starthelloForkP50: 'start p50: hello, fork',
  starthelloRatio: 'start p50: hello, exec / fork',
  resetFork16: 'reset: 16 fork workers',
  resetFork16Idle: 'reset: 16 fork, idle',
  resetFailed: 'failed requests in resets',
  jobsAmqpOverDirect: 'jobs/s: rrts amqp / php-amqp',
  jobsMemoryOverAmqp: 'jobs/s: rrts memory / amqp',
  jobsLostOrTwice: 'jobs lost or done twice',
};

/**
 * A hand-written SVG. Left: each target as a bar of how much of it is reached (the dashed line is the goal; green
 * met, red missed; capped at 200 %). Right: req/s of every server (median, whisker min-max), total PSS of the PHP
 * side with 8 workers, and worker start p50. `subtitle`: lines of small print at the bottom.
 */
export function renderSvg(rows, hello, fork, subtitle) {
  const W = 1000;
  const font = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"';
  const text = (x, y, body, attrs = '') => `<text x="${x}" y="${y}" font-size="11"${attrs ? ` ${attrs}` : ''}>${esc(body)}</text>`;
  const heading = (x, y, title, note) => [
    `<text x="${x}" y="${y}" font-size="15" font-weight="600">${esc(title)}</text>`,
    ...(note ? [text(x, y + 16, note, 'fill="#555"')] : []),
  ];

  // left: targets
  const left = [];
  const L = { x: 10, top: 40, labelW: 175, barW: 200, rowH: 26, cap: 2 };
  left.push(...heading(L.x, L.top, 'Targets: share of each goal reached', 'dashed line = the goal; green met, red missed; capped at 200 %'));
  const x0 = L.x + L.labelW;
  const scale = (f) => (Math.min(f, L.cap) / L.cap) * L.barW;
  let y = L.top + 28;
  const yGoal = y;
  for (const row of rows.filter((r) => r.target)) {
    const f = reached(row);
    const met = f !== null && f >= 1;
    left.push(text(x0 - 6, y + 15, CHART_LABEL[row.key] ?? row.measure, 'text-anchor="end"'));
    left.push(`<rect x="${x0}" y="${y + 4}" width="${L.barW}" height="16" fill="#f0f0f0"/>`);
    if (f !== null) left.push(`<rect x="${x0}" y="${y + 4}" width="${Math.max(1.5, scale(f)).toFixed(1)}" height="16" fill="${met ? '#2e9e4f' : '#d64545'}"/>`);
    left.push(text(x0 + L.barW + 6, y + 15, `${f === null ? 'not measured' : row.text} (goal ${row.target.text})${f !== null && f > L.cap ? ' >>' : ''}`));
    y += L.rowH;
  }
  left.push(`<line x1="${x0 + scale(1)}" y1="${yGoal}" x2="${x0 + scale(1)}" y2="${y + 2}" stroke="#222" stroke-dasharray="4 3"/>`);
  const leftBottom = y;

  // right: req/s, memory, start
  const right = [];
  const R = { x: 620, labelW: 120, barW: 190, rowH: 21 };
  const colors = { rrts: '#2f6fb3', fpm: '#8a8a8a', node: '#e39b2d' };
  y = L.top;
  /** One group of horizontal bars with a shared scale; items { name, value, min?, max?, color, label }. */
  const bars = (title, items) => {
    if (!items.length) return;
    right.push(`<text x="${R.x}" y="${y + 13}" font-size="12" font-weight="600">${esc(title)}</text>`);
    y += 18;
    const max = Math.max(...items.map((i) => i.max ?? i.value)) || 1;
    const sx = (v) => R.x + R.labelW + (v / max) * R.barW;
    for (const i of items) {
      right.push(text(R.x + R.labelW - 6, y + 13, i.name, 'text-anchor="end"'));
      right.push(`<rect x="${R.x + R.labelW}" y="${y + 3}" width="${Math.max(1, sx(i.value) - R.x - R.labelW).toFixed(1)}" height="14" fill="${i.color}"/>`);
      if (i.min !== undefined && i.max > i.min) {
        right.push(`<line x1="${sx(i.min).toFixed(1)}" y1="${y + 10}" x2="${sx(i.max).toFixed(1)}" y2="${y + 10}" stroke="#111"/>`);
        for (const v of [i.min, i.max]) right.push(`<line x1="${sx(v).toFixed(1)}" y1="${y + 6}" x2="${sx(v).toFixed(1)}" y2="${y + 14}" stroke="#111"/>`);
      }
      right.push(text((Math.max(sx(i.value), i.max !== undefined ? sx(i.max) : 0) + 5).toFixed(1), y + 13, i.label));
      y += R.rowH;
    }
    y += 10;
  };
  right.push(...heading(R.x, y, 'Side by side', `${hello?.meta?.workers ?? '?'} PHP workers per server for req/s, 8 for memory`));
  y += 28;
  const nameOf = (s) => (s.server === 'rrts' ? `rrts ${s.mode}` : s.server === 'fpm' ? 'php-fpm + nginx' : 'raw node http');
  for (const [group, title] of [
    ['hello', 'hello page, req/s (median, min-max)'],
    ['app', 'framework app, req/s'],
  ]) {
    const ts = Object.values(hello?.targets ?? {}).filter((s) => s.group === group);
    bars(
      title,
      ts.map((s) => ({
        name: nameOf(s),
        value: s.rps.median,
        min: s.rps.min,
        max: s.rps.max,
        color: colors[s.server],
        label: Math.round(s.rps.median).toLocaleString('en-US'),
      })),
    );
  }
  if (fork) {
    const m = fork.memory;
    bars(
      'total PSS of the PHP side, MiB (8 workers)',
      [
        ['rrts exec', m.exec, colors.rrts],
        ['rrts fork', m.fork, colors.rrts],
        ['php-fpm', m.fpm, colors.fpm],
      ]
        .filter(([, v]) => v)
        .map(([name, v, color]) => ({ name, value: v.totalPss / 2 ** 20, color, label: (v.totalPss / 2 ** 20).toFixed(1) })),
    );
    bars(
      'worker start p50, ms (framework app)',
      fork.start
        .filter((r) => r.app === 'framework')
        .map((r) => ({
          name: r.mode === 'fork' ? `rrts fork (${r.spares} spare${r.spares === 1 ? '' : 's'})` : 'rrts exec',
          value: r.p50,
          color: colors.rrts,
          label: `${r.p50} ms`,
        })),
    );
  }
  const H = Math.max(leftBottom, y) + 15 + 13 * subtitle.length;
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ${font} fill="#111">`);
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  out.push(...left, ...right);
  subtitle.forEach((line, i) => out.push(`<text x="10" y="${H - 10 - (subtitle.length - 1 - i) * 13}" font-size="10" fill="#555">${esc(line)}</text>`));
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------- the doc

function sanitize(text) {
  return text.split(REPO).join('.');
}

/** Replace what is between the markers of docs/benchmarks.md (or append a results section with them). */
function writeDoc(section) {
  let doc = fs.existsSync(DOC) ? fs.readFileSync(DOC, 'utf8') : '# Benchmarks\n';
  const a = doc.indexOf(BEGIN);
  const b = doc.indexOf(END);
  const block = `${BEGIN}\n${section.trim()}\n${END}`;
  if (a >= 0 && b > a) doc = `${doc.slice(0, a)}${block}${doc.slice(b + END.length)}`;
  else doc = `${doc.trimEnd()}\n\n## Results\n\n${block}\n`;
  fs.writeFileSync(DOC, doc);
}

// ---------------------------------------------------------------------------------------------- main

async function main() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      json: { type: 'string' },
      'from-json': { type: 'string' },
      'no-install': { type: 'boolean', default: false },
      'no-jobs': { type: 'boolean', default: false },
      'no-elastic': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  let run;
  if (values['from-json']) {
    // Render again what a saved run measured (after a change to the table, the chart or the doc); runs nothing.
    run = JSON.parse(fs.readFileSync(values['from-json'], 'utf8'));
    if (!run.hello || !run.fork || !run.machine) throw new UsageError(`${values['from-json']}: not a file written by --json`);
  } else {
    const began = Date.now();
    const date = new Date().toISOString();
    const withJobs = !values['no-jobs'];
    ensurePackages(!values['no-install'], withJobs);
    const machine = machineFacts();
    const rev = rrtsRevision(REPO);
    const tmp = makeTempDir('rrts-bench-run-');
    const q = values.quick ? ['--quick'] : [];
    const helloText = await runScript('hello.mjs', [...q, '--json', path.join(tmp, 'hello.json')]);
    const hello = JSON.parse(fs.readFileSync(path.join(tmp, 'hello.json'), 'utf8'));
    const forkText = await runScript('fork.mjs', [...q, '--json', path.join(tmp, 'fork.json')]);
    const fork = JSON.parse(fs.readFileSync(path.join(tmp, 'fork.json'), 'utf8'));
    const jobsText = withJobs ? await runScript('jobs.mjs', [...q, '--json', path.join(tmp, 'jobs.json')]) : null;
    const jobs = withJobs ? JSON.parse(fs.readFileSync(path.join(tmp, 'jobs.json'), 'utf8')) : null;
    let elastic = null;
    let elasticText = null;
    if (!values.quick && !values['no-elastic']) {
      elasticText = await runScript('elastic.mjs', ['--json', path.join(tmp, 'elastic.json')]);
      elastic = JSON.parse(fs.readFileSync(path.join(tmp, 'elastic.json'), 'utf8'));
    }
    const seconds = round((Date.now() - began) / 1000, 0);
    run = {
      date,
      quick: values.quick,
      seconds,
      machine,
      rrts: { commit: rev.commit, dirtySrcFiles: rev.dirtySrcFiles },
      hello,
      fork,
      jobs,
      helloText: sanitize(helloText),
      forkText: sanitize(forkText),
      jobsText: jobsText === null ? null : sanitize(jobsText),
      elastic,
      elasticText: elasticText === null ? null : sanitize(elasticText),
    };
  }
  const { date, quick, seconds, machine, rrts: rev, hello, fork } = run;
  const jobs = run.jobs ?? null;
  const rows = buildRows(hello, fork, jobs);
  const isJobs = (row) => row.group === '6. jobs';
  /** The main table, then the jobs rows as a table of their own. */
  const tables = () => [
    renderTable(rows.filter((row) => !isJobs(row))),
    ...(jobs
      ? [
          '',
          `Jobs: ${jobs.meta.jobs.toLocaleString('en-US')} jobs per drain, ${jobs.meta.rounds} round(s) round-robin, ${jobs.meta.workers} consumers that ack at once, ` +
            `amqp prefetch ${jobs.meta.prefetch}, ${jobs.meta.payload}-byte payloads (test/bench/jobs.mjs; CPU per job from /proc, median over rounds)`,
          '',
          renderTable(rows.filter(isJobs)),
        ]
      : []),
  ];
  const met = rows.filter((r) => verdictOf(r) === 'met').length;
  const goals = rows.filter((r) => r.target).length;
  const command = quick ? 'npm run bench -- --quick' : 'npm run bench';
  const when = `${date.slice(0, 16).replace('T', ' ')} UTC`;
  const out = [];
  out.push(`rrts benchmarks${quick ? ' (--quick: short runs, only indicative)' : ''}: ${when}, \`${command}\`, ${seconds} s`);
  out.push(`machine: ${machineLine(machine, rev)}`);
  out.push(
    `setup: throughput ${hello.meta.rounds} round(s) x ${hello.meta.duration} per target (wrk -t${hello.meta.threads} -c${hello.meta.connections}), ${hello.meta.workers} PHP workers; ` +
      `memory 8 workers; start latency ${fork.start[0]?.samples} samples; ratios > 1 favour the first named`,
  );
  out.push('');
  out.push(...tables());
  out.push('');
  out.push(
    `${met} of ${goals} targets met. noise = CPU used by other processes on the machine during that measurement, in cores (of ${machine.nproc}); above ~0.15 the numbers are disturbed.`,
  );
  if (run.elastic) out.push('', elasticSummary(run.elastic));
  process.stdout.write(`${out.join('\n')}\n`);

  if (values.json) fs.writeFileSync(values.json, `${JSON.stringify({ ...run, rows }, null, 2)}\n`);
  if (!quick) {
    const subtitle = [
      `${date.slice(0, 10)}, ${command}: ${machine.cpuModel}, ${machine.nproc} cores${machine.virtualized ? ' (VM, noisy)' : ''}, Linux ${machine.kernel}, node ${machine.node}, ${machine.php}`,
      `rrts ${rev.commit ?? '?'}${rev.dirtySrcFiles ? ` + ${rev.dirtySrcFiles} uncommitted src/php file(s)` : ''}; ${machine.nginx ?? 'no nginx'}, ${machine.wrk ?? '-'}, Laravel ${machine.laravel ?? '-'}`,
    ];
    fs.writeFileSync(SVG, renderSvg(rows, hello, fork, subtitle));
    const section = [
      `Run of ${when} with \`${command}\` (${Math.round(seconds / 6) / 10} min).`,
      '',
      `Machine: ${machineLine(machine, rev)}.`,
      '',
      `Throughput: ${hello.meta.rounds} rounds x ${hello.meta.duration} per target, wrk -t${hello.meta.threads} -c${hello.meta.connections}, ${hello.meta.workers} PHP workers per server. Memory: 8 workers after ${fork.memory.exec.requests} requests. Worker start: ${fork.start[0]?.samples} samples each.`,
      '',
      ...tables(),
      '',
      `${met} of ${goals} targets met.`,
      '',
      '![Benchmark chart: share of each target reached, and req/s of each server](benchmarks.svg)',
      '',
      ...(run.elastic
        ? [
            `Elastic pool (test/bench/elastic.mjs, ${run.elastic.meta.rounds} bursts per line; docs/pool.md has what each line is):`,
            '',
            elasticSummary(run.elastic),
            '',
            '```text',
            run.elasticText.trim(),
            '```',
            '',
          ]
        : []),
      ...(run.helloText || run.forkText
        ? [
            `<details><summary>Full output of the ${run.jobsText ? 'three' : 'two'} scripts</summary>`,
            '',
            '```text',
            `${run.helloText ?? ''}\n\n${run.forkText ?? ''}\n\n${run.jobsText ?? ''}`.trim(),
            '```',
            '',
            '</details>',
          ]
        : []),
    ].join('\n');
    writeDoc(section);
    log(`wrote ${path.relative(REPO, SVG)} and the results section of ${path.relative(REPO, DOC)}`);
  }
  await cleanup();
}

// Run when started as a script; importing it (to render a table or chart from saved JSON) runs nothing.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) runMain(main, USAGE);
