#!/usr/bin/env node
// Fork mode with an http pool and a jobs pool of the framework-sized bench app (test/bench/app, Laravel from
// Debian's php-laravel-framework): the total PSS of every PHP process under rrts (roots, masters, spares, workers),
// and how many fork roots there are. Run it on two builds to compare (one root for both pools, or one each):
//
//   node test/bench/jobs-fork.mjs                      # this checkout, 4 http + 4 jobs workers
//   node test/bench/jobs-fork.mjs --repo <checkout>    # another built checkout (its bin/rrts and dist/)
//   node test/bench/jobs-fork.mjs --workers 8 --json out.json
//
// It sends 300 requests (keep-alive off) so the http workers have run the app, waits 2 s, then reads
// /proc/<pid>/smaps_rollup of each PHP process. Everything listens on 127.0.0.1, lives in a temp dir, and every
// process it started is stopped by pid at the end, on SIGINT/SIGTERM and on error.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  descendants,
  freePort,
  httpGet,
  log,
  makeTempDir,
  removeTempDir,
  REPO,
  runMain,
  sleep,
  smapsRollup,
  startProcess,
  stopProcess,
  waitFor,
  waitForOutput,
} from './lib.mjs';

const USAGE = 'usage: node test/bench/jobs-fork.mjs [--repo <checkout>] [--workers N] [--json <file>]';

function cmdline(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

async function main() {
  const { values } = parseArgs({ options: { repo: { type: 'string' }, workers: { type: 'string' }, json: { type: 'string' } } });
  const repo = path.resolve(values.repo ?? REPO);
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

runMain(main, USAGE);
