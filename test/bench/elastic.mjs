// The elastic pool, side by side in one run (docs/pool.md has the targets and the last results):
//   burst     0 -> 32 concurrent slow requests (GET /?ms=200) on num_workers 4 with dynamic_allocator.max_workers 28:
//             fork mode (scale_on_wait by default), exec mode with the same scale_on_wait, RoadRunner's rule (exec,
//             workers added only after allocate_timeout), and a fork pool of 32 from the start as the reference.
//             Per line: the wait of the last request to get a worker, p50/p99 of the burst, failures, the extra
//             workers added, and how long after the burst the last of them was stopped (idle_timeout 1s). Both
//             come from rrts's log (its "adding N extra worker(s)" and "stopped N extra worker(s)" lines), not
//             from /metrics, which counts a worker only once it is ready: an exec worker still booting is not there.
//             The fork lines run side by side: all started, then one burst of each per round, in turn.
//   max_jobs  steady load (4 connections, GET /?ms=5) on 4 workers with max_jobs 50: p99 of this build against
//             the builds named by --baseline (a checkout without replacement before departure), both modes, and
//             the same load without max_jobs (no worker replaced: the floor of the ratio).
//
// usage: node test/bench/elastic.mjs [--rounds N] [--seconds S] [--sweep] [--spares N,...]
//                                     [--only burst|fork-burst|max_jobs] [--baseline DIR]... [--json FILE]
//   after `npm run build`; --sweep adds fork lines with scale_on_wait 1ms, 2ms and 10ms (how the default was chosen).
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  HERE,
  HOST,
  REPO,
  UsageError,
  descendants,
  freePort,
  log,
  makeTempDir,
  percentile,
  round,
  runMain,
  sleep,
  startProcess,
  stopProcess,
  table,
  waitFor,
} from './lib.mjs';

const USAGE = `usage: node test/bench/elastic.mjs [--rounds N] [--seconds S] [--sweep] [--spares N,...]
                                    [--only burst|fork-burst|max_jobs] [--baseline DIR]... [--json FILE]
  --rounds N      bursts per line (default 5)
  --seconds S     steady max_jobs load per line (default 10)
  --sweep         also fork lines with scale_on_wait 1ms, 2ms, 10ms
  --spares N,...  also fork burst lines with server.fork.spares N (how its default was chosen)
  --only WHAT     only the burst lines, only the fork burst lines, or only the max_jobs lines
  --baseline DIR  an rrts checkout (built) to run with too: a fork burst line side by side with this build's, and
                  the max_jobs lines after this build's (one without replacement before departure for the
                  target); may be given more than once
  --json FILE     write every number to FILE`;

const APP_PRELOAD = path.join(HERE, 'app', 'preload.php');
const SLOW_WORKER = path.join(HERE, 'app', 'slow-worker.php');
const BURST = 32;
const SLOW_MS = 200;
const IDLE_TIMEOUT_MS = 1_000;

/** What rrts logged about its extra workers: how many it added and stopped, and when (epoch ms) the last went. */
function extraWorkerLog() {
  const extras = { added: 0, removed: 0, lastRemovedAt: 0 };
  const onLine = (line) => {
    if (!line.startsWith('{') || !line.includes('extra worker(s)')) return;
    let record;
    try {
      record = JSON.parse(line);
    } catch {
      return;
    }
    if (typeof record.adding === 'number') extras.added += record.adding;
    if (typeof record.removed === 'number') {
      extras.removed += record.removed;
      extras.lastRemovedAt = Number(record.ts) / 1e6; // "ts" is epoch nanoseconds
    }
  };
  return { extras, onLine };
}

async function startRrts(tmpDir, name, { root = REPO, mode, pool, fork = {}, metrics = true }) {
  const port = await freePort();
  const metricsPort = await freePort();
  const { extras, onLine } = extraWorkerLog();
  const dir = fs.mkdtempSync(path.join(tmpDir, `${name.replace(/[^a-z0-9]+/gi, '-')}-`));
  const config = {
    version: '3',
    server: {
      command: `php -d opcache.enable_cli=1 ${SLOW_WORKER}`,
      relay: 'pipes',
      fork: mode === 'fork' ? { enabled: true, preload: APP_PRELOAD, ...fork } : { enabled: false },
    },
    http: { address: `${HOST}:${port}`, pool: { allocate_timeout: '60s', destroy_timeout: '10s', ...pool } },
    ...(metrics ? { metrics: { address: `${HOST}:${metricsPort}` } } : {}),
    // info: the extra workers' additions and removals (one line each batch)
    logs: { mode: 'production', level: pool.dynamic_allocator ? 'info' : 'warn' },
  };
  const file = path.join(dir, '.rr.yaml');
  fs.writeFileSync(file, JSON.stringify(config)); // JSON is YAML
  const proc = startProcess(name, process.execPath, [path.join(root, 'bin', 'rrts'), 'serve', '-c', file], { cwd: dir, graceMs: 20_000, onLine });
  await waitFor(
    () => proc.out.includes('server started') || proc.exit !== null,
    `${name}: rrts to start`,
    120_000,
    () => proc.out.slice(-2000),
  );
  if (proc.exit) throw new Error(`${name}: rrts exited at start: ${proc.out.slice(-2000)}`);
  return { name, proc, port, metricsPort, extras };
}

function get(port, urlPath) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const req = http.get({ host: HOST, port, path: urlPath, agent: false, timeout: 120_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, ms: performance.now() - t0 }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({ status: 0, ms: performance.now() - t0 }));
  });
}

/**
 * Polls until every extra worker rrts added was stopped again; the ms from `sinceEpochMs` to the last one's removal,
 * 0 when none was added since `addedBefore`, or null when they were not all gone within the limit.
 */
async function extrasGone(s, sinceEpochMs, addedBefore, limitMs = 30_000) {
  const until = performance.now() + limitMs;
  while (s.extras.removed < s.extras.added) {
    if (performance.now() > until) return null;
    await sleep(10);
  }
  return s.extras.added === addedBefore ? 0 : Math.max(0, s.extras.lastRemovedAt - sinceEpochMs);
}

/**
 * Waits until rrts has no more PHP processes than it had idle (`s.idleProcesses`): the extra workers of the last
 * burst (of this server or another) take ~10-20 ms of CPU each to exit after their stop was logged, and a burst
 * started meanwhile shares the two cores with 28 exits. Bounded; then a pause for the master to park its spares.
 */
async function quiet(s, limitMs = 10_000) {
  const until = performance.now() + limitMs;
  while (descendants(s.proc.pid).length > s.idleProcesses && performance.now() < until) await sleep(20);
  await sleep(100);
}

/** One burst on a running rrts: its numbers, and a log line. */
async function burstRound(s, label, opts, r) {
  if (opts.pool.dynamic_allocator) await extrasGone(s, Date.now(), s.extras.added);
  const addedBefore = s.extras.added;
  const replies = await Promise.all(Array.from({ length: BURST }, () => get(s.port, `/?ms=${SLOW_MS}`)));
  const end = Date.now();
  const ms = replies.map((x) => x.ms).sort((a, b) => a - b);
  const round_ = {
    p50: percentile(ms, 50),
    p99: percentile(ms, 99),
    lastWait: ms.at(-1) - SLOW_MS, // the last request's wait for a worker (plus HTTP overhead)
    failed: replies.filter((x) => x.status !== 200).length,
    goneMs: opts.pool.dynamic_allocator ? await extrasGone(s, end, addedBefore) : null,
    added: opts.pool.dynamic_allocator ? s.extras.added - addedBefore : null,
  };
  log(
    `${label}: round ${r + 1}: last wait ${round(round_.lastWait, 0)} ms, p99 ${round(round_.p99, 0)} ms, failed ${round_.failed}, extra added ${round_.added ?? '-'}, gone after ${round_.goneMs === null ? '-' : round(round_.goneMs, 0)} ms`,
  );
  return round_;
}

/** The medians of a line's rounds. */
function burstSummary(label, key, rounds) {
  const med = (name) => {
    const xs = rounds
      .map((x) => x[name])
      .filter((x) => x !== null)
      .sort((a, b) => a - b);
    return xs.length ? xs[Math.floor(xs.length / 2)] : null;
  };
  return {
    label,
    key: key ?? null,
    rounds,
    lastWait: med('lastWait'),
    p50: med('p50'),
    p99: med('p99'),
    goneMs: med('goneMs'),
    added: med('added'),
    failed: rounds.reduce((n, x) => n + x.failed, 0),
  };
}

/**
 * Lines run side by side: every rrts started, then each round bursts each of them once, the order turned by one
 * each round, so a load that comes and goes on the shared machine falls on all of them alike.
 */
async function burstLines(tmpDir, lines, rounds) {
  const servers = [];
  try {
    for (const [label, opts] of lines) servers.push(await startRrts(tmpDir, label, opts));
    await sleep(500); // the spares parked, the first workers' exits done
    for (const s of servers) s.idleProcesses = descendants(s.proc.pid).length;
    const results = lines.map(() => []);
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < lines.length; k++) {
        const i = (k + r) % lines.length;
        const [label, opts] = lines[i];
        for (const s of servers) await quiet(s);
        results[i].push(await burstRound(servers[i], label, opts, r));
      }
    }
    return lines.map(([label, opts], i) => burstSummary(label, opts.key, results[i]));
  } finally {
    for (const s of servers) await stopProcess(s.proc);
  }
}

async function maxJobsLine(tmpDir, label, opts, seconds, maxJobs = 50) {
  const s = await startRrts(tmpDir, label, { ...opts, metrics: false, pool: { num_workers: 4, max_jobs: maxJobs } });
  const latencies = [];
  let failed = 0;
  try {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    const until = performance.now() + seconds * 1000;
    const loop = async () => {
      while (performance.now() < until) {
        const t0 = performance.now();
        const status = await new Promise((resolve) => {
          http
            .get({ host: HOST, port: s.port, path: '/?ms=5', agent }, (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode));
            })
            .on('error', () => resolve(0));
        });
        latencies.push(performance.now() - t0);
        if (status !== 200) failed++;
      }
    };
    await Promise.all([loop(), loop(), loop(), loop()]);
    agent.destroy();
  } finally {
    await stopProcess(s.proc);
  }
  latencies.sort((a, b) => a - b);
  const out = { label, requests: latencies.length, failed, p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: latencies.at(-1) };
  log(`${label}: ${out.requests} requests, p50 ${round(out.p50, 1)} ms, p99 ${round(out.p99, 1)} ms, max ${round(out.max, 0)} ms, failed ${failed}`);
  return out;
}

async function main() {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '5' },
      seconds: { type: 'string', default: '10' },
      sweep: { type: 'boolean', default: false },
      spares: { type: 'string' },
      baseline: { type: 'string', multiple: true, default: [] },
      only: { type: 'string' },
      json: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const only = values.only;
  if (only !== undefined && only !== 'burst' && only !== 'fork-burst' && only !== 'max_jobs') {
    throw new UsageError(`--only: burst, fork-burst or max_jobs, not ${only}`);
  }
  const spares = (values.spares ?? '')
    .split(',')
    .filter((x) => x !== '')
    .map(Number);
  if (spares.some((n) => !Number.isInteger(n) || n < 0 || n > 16)) throw new UsageError(`--spares: numbers from 0 to 16, not ${values.spares}`);
  const rounds = Number(values.rounds);
  const seconds = Number(values.seconds);
  const tmpDir = makeTempDir('rrts-bench-elastic-');
  const dynamic = (extra = {}) => ({ max_workers: BURST - 4, idle_timeout: `${IDLE_TIMEOUT_MS}ms`, ...extra });
  // keys: what run.mjs reads from --json
  const baselines = values.baseline.map((dir) => path.resolve(dir));
  const baselineName = (root) => (baselines.length > 1 ? `baseline ${path.basename(root)}` : 'baseline');
  // keys: what run.mjs reads from --json. The fork lines run side by side (burstLines), the exec ones one by one.
  const forkLines = [
    ['fork, 4 + dynamic (scale_on_wait default)', { key: 'forkDynamic', mode: 'fork', pool: { num_workers: 4, dynamic_allocator: dynamic() } }],
    ...baselines.map((root) => [`fork, 4 + dynamic, ${baselineName(root)}`, { root, mode: 'fork', pool: { num_workers: 4, dynamic_allocator: dynamic() } }]),
    ...spares.map((n) => [
      `fork, 4 + dynamic, server.fork.spares ${n}`,
      { mode: 'fork', fork: { spares: n }, pool: { num_workers: 4, dynamic_allocator: dynamic() } },
    ]),
    ['fork, 32 from the start', { key: 'forkStatic', mode: 'fork', pool: { num_workers: BURST } }],
  ];
  if (values.sweep) {
    for (const wait of ['1ms', '2ms', '10ms']) {
      forkLines.push([
        `fork, 4 + dynamic (scale_on_wait ${wait})`,
        { mode: 'fork', pool: { num_workers: 4, dynamic_allocator: dynamic({ scale_on_wait: wait }) } },
      ]);
    }
  }
  const execLines = [
    [
      'exec, 4 + dynamic (scale_on_wait 5ms)',
      { key: 'execDynamic', mode: 'exec', pool: { num_workers: 4, dynamic_allocator: dynamic({ scale_on_wait: '5ms' }) } },
    ],
    ["exec, 4 + dynamic (RoadRunner's rule)", { key: 'execRoadRunner', mode: 'exec', pool: { num_workers: 4, dynamic_allocator: dynamic() } }],
    ['exec, 32 from the start', { key: 'execStatic', mode: 'exec', pool: { num_workers: BURST } }],
  ];
  const bursts = [];
  if (only !== 'max_jobs') {
    bursts.push(...(await burstLines(tmpDir, forkLines, rounds)));
    if (only !== 'fork-burst') for (const line of execLines) bursts.push(...(await burstLines(tmpDir, [line], rounds)));
  }
  const maxJobs = [];
  for (const mode of only === 'burst' || only === 'fork-burst' ? [] : ['fork', 'exec']) {
    maxJobs.push(await maxJobsLine(tmpDir, `${mode}, max_jobs 50, this build`, { mode }, seconds));
    for (const root of baselines) {
      maxJobs.push(await maxJobsLine(tmpDir, `${mode}, max_jobs 50, ${baselineName(root)}`, { mode, root }, seconds));
    }
    // the floor: the same load with no worker ever replaced
    maxJobs.push(await maxJobsLine(tmpDir, `${mode}, no max_jobs, this build`, { mode }, seconds, 0));
  }

  const ms = (x) => (x === null || x === undefined ? '-' : `${round(x, 0)} ms`);
  if (bursts.length > 0) {
    process.stdout.write(`\nburst: ${BURST} concurrent GET /?ms=${SLOW_MS}, median of ${rounds} rounds; extras idle_timeout ${IDLE_TIMEOUT_MS} ms\n`);
    process.stdout.write(
      `${table(
        ['line', 'last request waited', 'p50', 'p99', 'failed', 'extra added', 'extras gone after'],
        bursts.map((b) => [b.label, ms(b.lastWait), ms(b.p50), ms(b.p99), String(b.failed), b.added === null ? '-' : String(b.added), ms(b.goneMs)]),
      )}\n`,
    );
  }
  if (maxJobs.length > 0) {
    process.stdout.write(`\nmax_jobs 50, 4 workers, 4 connections of GET /?ms=5 for ${seconds} s\n`);
    process.stdout.write(
      `${table(
        ['line', 'requests', 'p50', 'p99', 'max', 'failed'],
        maxJobs.map((m) => [m.label, String(m.requests), `${round(m.p50, 1)} ms`, `${round(m.p99, 1)} ms`, ms(m.max), String(m.failed)]),
      )}\n`,
    );
  }
  const meta = { burst: BURST, slowMs: SLOW_MS, idleTimeoutMs: IDLE_TIMEOUT_MS, tickMs: 100, rounds, seconds, baseline: baselines.length > 0 };
  if (values.json) fs.writeFileSync(values.json, JSON.stringify({ meta, bursts, maxJobs }, null, 2));
}

runMain(main, USAGE);
