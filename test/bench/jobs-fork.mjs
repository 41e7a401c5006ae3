#!/usr/bin/env node
// Fork mode with the jobs pool, on the framework-sized bench app (test/bench/app, Laravel from Debian's
// php-laravel-framework): the total PSS of every PHP process under rrts (roots, masters, spares, workers).
//
// --consumers N: the issue's target, N jobs consumers alone (no http), exec mode against fork mode side by side in
// one run (alternated, --rounds of each), each consumer having taken jobs pushed over RPC (one jobs.PushBatch of
// --jobs jobs by test/fixtures/php/jobs-producer.php; each job goes through the app's Router and pauses 10 ms, as
// a job waiting on I/O, so they spread over the consumers); prints the PSS by role and fork/exec (target <= 0.2):
//
//   node test/bench/jobs-fork.mjs --consumers 8 [--jobs 400] [--rounds 1] [--json out.json]
//
// Without it: an http pool and a jobs pool in fork mode, and how many fork roots they use. Run it on two builds to
// compare (one root for both pools, or one each):
//
//   node test/bench/jobs-fork.mjs                      # this checkout, 4 http + 4 jobs workers
//   node test/bench/jobs-fork.mjs --repo <checkout>    # another built checkout (its bin/rrts and dist/)
//   node test/bench/jobs-fork.mjs --workers 8 --json out.json
//
// It sends 300 requests (keep-alive off) so the http workers have run the app, waits 2 s, then reads
// /proc/<pid>/smaps_rollup of each PHP process. Everything listens on 127.0.0.1, lives in a temp dir, and every
// process it started is stopped by pid at the end, on SIGINT/SIGTERM and on error.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  descendants,
  freePort,
  httpGet,
  log,
  makeTempDir,
  median,
  MiB,
  readProcStat,
  removeTempDir,
  REPO,
  round,
  runMain,
  sleep,
  smapsRollup,
  startProcess,
  stopProcess,
  table,
  UsageError,
  waitFor,
  waitForOutput,
} from './lib.mjs';

const USAGE =
  'usage: node test/bench/jobs-fork.mjs [--repo <checkout>] [--workers N] [--json <file>]\n' +
  '       node test/bench/jobs-fork.mjs --consumers N [--jobs N] [--rounds N] [--repo <checkout>] [--json <file>]';
const APP = path.join(REPO, 'test', 'bench', 'app');
const PRODUCER = path.join(REPO, 'test', 'fixtures', 'php', 'jobs-producer.php');
/** the issue's target: fork mode's total PSS at most this share of exec mode's */
const TARGET_RATIO = 0.2;

function cmdline(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      repo: { type: 'string' },
      workers: { type: 'string' },
      json: { type: 'string' },
      consumers: { type: 'string' },
      jobs: { type: 'string' },
      rounds: { type: 'string' },
    },
  });
  const repo = path.resolve(values.repo ?? REPO);
  if (values.consumers !== undefined) return consumersMain(repo, values);
  const workers = Number(values.workers ?? 4);
  const dir = makeTempDir('rrts-bench-jobs-fork-');
  const port = await freePort();
  const app = path.join(REPO, 'test', 'bench', 'app');
  const config = [
    "version: '3'",
    'server:',
    `  command: php -d opcache.enable_cli=1 ${path.join(app, 'http-and-jobs.php')}`,
    `  fork: { enabled: true, preload: ${path.join(app, 'preload.php')} }`,
    'http:',
    `  address: 127.0.0.1:${port}`,
    `  pool: { num_workers: ${workers}, allocate_timeout: 60s }`,
    'jobs:',
    `  pool: { num_workers: ${workers}, allocate_timeout: 60s }`,
    '  pipelines: { main: { driver: memory, config: { priority: 10 } } }',
    '  consume: [main]',
    'logs: { mode: production, level: warn }',
    '',
  ].join('\n');
  const file = path.join(dir, '.rr.yaml');
  fs.writeFileSync(file, config);
  const rrts = startProcess('rrts', process.execPath, [path.join(repo, 'bin', 'rrts'), 'serve', '-c', file], { cwd: dir });
  try {
    await waitForOutput(rrts, (out) => out.includes('server started'), 120_000, 'server started');
    const php = () => descendants(rrts.pid).filter((pid) => cmdline(pid).includes('php') || cmdline(pid).startsWith('rrts: fork'));
    await waitFor(() => php().length >= 2 * workers, `${2 * workers} workers`, 30_000);
    for (let i = 0; i < 300; i++) await httpGet(port, '/');
    await sleep(2_000);
    const pids = php();
    const roots = pids.filter((pid) => cmdline(pid).startsWith('rrts: fork root'));
    let pss = 0;
    for (const pid of pids) pss += smapsRollup(pid)?.Pss ?? 0;
    const result = { repo, workers, roots: roots.length, processes: pids.length, pssMiB: Math.round((pss / 2 ** 20) * 10) / 10 };
    log(`${repo}: ${roots.length} fork root(s), ${pids.length} PHP processes, total PSS ${result.pssMiB} MiB`);
    if (values.json) fs.writeFileSync(values.json, JSON.stringify(result, null, 2));
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await stopProcess(rrts);
    removeTempDir(dir);
  }
}

/** A positive integer option, or a usage error naming it. */
function count(values, name, fallback) {
  const n = Number(values[name] ?? fallback);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name} must be a positive integer, got ${values[name]}`);
  return n;
}

/** N jobs consumers in exec mode and in fork mode, alternated: PSS by role, and fork/exec. */
async function consumersMain(repo, values) {
  const consumers = count(values, 'consumers', 8);
  const jobs = count(values, 'jobs', 50 * consumers);
  const rounds = count(values, 'rounds', 1);
  const runs = { exec: [], fork: [] };
  for (let round = 1; round <= rounds; round++) {
    for (const mode of ['exec', 'fork']) {
      log(`round ${round}/${rounds}: ${consumers} consumers, ${mode} mode`);
      runs[mode].push(await consumersRun(repo, mode, consumers, jobs));
    }
  }
  // the median run of each mode (the upper one of an even count)
  const middle = (mode) => runs[mode].map((r) => r.totalPss).sort((a, b) => a - b)[Math.floor(runs[mode].length / 2)];
  const row = (label, pick) => [label, ...['exec', 'fork'].map((mode) => runs[mode].map(pick).join(', '))];
  const mib = (bytes) => (bytes === null ? '-' : MiB(bytes));
  process.stdout.write(
    `\n${table(
      ['PSS (MiB) of the PHP processes', 'exec', 'fork'],
      [
        row('total', (r) => MiB(r.totalPss)),
        row('processes', (r) => r.processes),
        row('root', (r) => mib(r.role.root)),
        row('masters', (r) => mib(r.role.master)),
        row('spares', (r) => mib(r.role.spare)),
        row(`${consumers} consumers`, (r) => MiB(r.role.worker)),
        row('one consumer, median PSS', (r) => MiB(r.workerPssMedian)),
        row('one consumer, median private (USS)', (r) => MiB(r.workerUssMedian)),
        row('jobs each consumer took (min-max)', (r) => `${r.perConsumer[0]}-${r.perConsumer.at(-1)}`),
      ],
    )}\n`,
  );
  const ratio = round(middle('fork') / middle('exec'), 3);
  const met = ratio <= TARGET_RATIO;
  process.stdout.write(`\nfork / exec total PSS: ${ratio}x (target <= ${TARGET_RATIO}x: ${met ? 'met' : 'missed'})\n`);
  const result = { repo, consumers, jobs, rounds, ratio, target: TARGET_RATIO, met, runs };
  if (values.json) fs.writeFileSync(values.json, JSON.stringify(result, null, 2));
  process.stdout.write(`${JSON.stringify({ consumers, jobs, rounds, ratio, met, execMiB: MiB(middle('exec')), forkMiB: MiB(middle('fork')) })}\n`);
}

/** One rrts with only a jobs pool of `consumers` consumers: start, push `jobs` jobs, let them be taken, read PSS. */
async function consumersRun(repo, mode, consumers, jobs) {
  const dir = makeTempDir(`rrts-bench-consumers-${mode}-`);
  const rpcPort = await freePort();
  const jobLog = path.join(dir, 'consumed.log');
  const config = [
    "version: '3'",
    'server:',
    `  command: php -d opcache.enable_cli=1 ${path.join(APP, 'http-and-jobs.php')}`,
    `  env: { RRTS_BENCH_JOB_LOG: ${jobLog}, RRTS_BENCH_JOB_MS: '10' }`,
    mode === 'fork' ? `  fork: { enabled: true, preload: ${path.join(APP, 'preload.php')} }` : '  fork: { enabled: false }',
    `rpc: { listen: 'tcp://127.0.0.1:${rpcPort}' }`,
    'jobs:',
    `  pool: { num_workers: ${consumers}, allocate_timeout: 120s }`,
    '  pipelines: { main: { driver: memory, config: { priority: 10, prefetch: 100 } } }',
    '  consume: [main]',
    'logs: { mode: production, level: warn }',
    '',
  ].join('\n');
  const file = path.join(dir, '.rr.yaml');
  fs.writeFileSync(file, config);
  const rrts = startProcess(`rrts (${mode})`, process.execPath, [path.join(repo, 'bin', 'rrts'), 'serve', '-c', file], { cwd: dir });
  try {
    await waitForOutput(rrts, (out) => out.includes('server started'), 300_000, 'server started');
    const php = () => descendants(rrts.pid).filter((pid) => cmdline(pid).includes('php') || cmdline(pid).startsWith('rrts: fork'));
    await waitFor(() => php().length >= consumers, `${consumers} consumers`, 60_000);
    execFileSync('php', [PRODUCER, `tcp://127.0.0.1:${rpcPort}`, 'batch', 'main', String(jobs)], { timeout: 60_000 });
    const taken = () => (fs.existsSync(jobLog) ? fs.readFileSync(jobLog, 'utf8').split('\n').filter(Boolean) : []);
    await waitFor(
      () => taken().length >= jobs,
      `${jobs} jobs to be consumed`,
      120_000,
      () => ` (${taken().length} so far)`,
    );
    await sleep(2_000);
    const pids = php();
    const byPid = new Map();
    for (const pid of taken()) byPid.set(Number(pid), (byPid.get(Number(pid)) ?? 0) + 1);
    const roles = pids.map((pid) => ({ pid, role: roleOf(pid, mode), mem: smapsRollup(pid) }));
    const workers = roles.filter((r) => r.role === 'worker');
    const perConsumer = workers.map((w) => byPid.get(w.pid) ?? 0).sort((a, b) => a - b);
    if (workers.length !== consumers) throw new Error(`${mode}: expected ${consumers} consumers, found ${workers.length}`);
    if (perConsumer[0] === 0) throw new Error(`${mode}: a consumer took no job (${perConsumer.join(', ')})`);
    const pss = (r) => r.mem?.Pss ?? 0;
    const sum = (role) => {
      const of = roles.filter((r) => r.role === role);
      return of.length === 0 ? null : of.reduce((a, r) => a + pss(r), 0);
    };
    const result = {
      mode,
      processes: pids.length,
      totalPss: roles.reduce((a, r) => a + pss(r), 0),
      role: { root: sum('root'), master: sum('master'), spare: sum('spare'), worker: sum('worker') },
      workerPssMedian: median(workers.map(pss)),
      workerUssMedian: median(workers.map((w) => (w.mem?.Private_Clean ?? 0) + (w.mem?.Private_Dirty ?? 0))),
      perConsumer,
    };
    log(`${mode}: ${pids.length} PHP processes, total PSS ${MiB(result.totalPss)} MiB`);
    return result;
  } finally {
    await stopProcess(rrts);
    removeTempDir(dir);
  }
}

/** fork mode: the root, a spare, a master (the root's child) or a worker (a master's); exec mode: every one a worker. */
function roleOf(pid, mode) {
  if (mode === 'exec') return 'worker';
  const title = cmdline(pid);
  if (title.startsWith('rrts: fork root')) return 'root';
  if (title.startsWith('rrts: fork spare')) return 'spare';
  const parent = readProcStat(pid)?.ppid;
  return parent !== undefined && cmdline(parent).startsWith('rrts: fork root') ? 'master' : 'worker';
}

runMain(main, USAGE);
