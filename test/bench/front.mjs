#!/usr/bin/env node
// http.front.processes: N against 1, side by side in one run (docs/front.md, docs/benchmarks.md).
//
// rrts in exec mode (or fork mode with --mode fork) with php/worker.php (the hello page), 4 workers, `wrk -t2 -c32 --latency` on GET /, rounds
// alternating between `processes: 1` and `processes: N` (default 2), each on a fresh `rrts serve`. Per round: req/s,
// p99, failed requests (non-2xx and socket errors), and each front process's share of the requests (the numExecs
// of its workers from informer.Workers, each worker's front found by its parent pid in /proc). Prints a table and
// the ratio N / 1 of each round's req/s (the machine is shared: compare rounds of one run, report the range), the
// PSS of the whole PHP side after the warm-up (fork mode: the root, masters, spares and workers; and how many roots),
// and the result as JSON on stdout's last line. A fork worker's front is the one connected to its master (`ss -xp`).
//
// Run (after `npm run build`; needs php and wrk):
//   node test/bench/front.mjs                      # 3 rounds x 10 s of each
//   node test/bench/front.mjs --quick              # 1 round x 3 s
//   node test/bench/front.mjs --processes 2 --rounds 5 --duration 20s --json front.json
// Everything listens on 127.0.0.1, configs live in a temp dir, and every process is stopped by pid at the end.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  REPO,
  childrenOf,
  cleanup,
  descendants,
  freePort,
  groupTicks,
  cpuMsBetween,
  log,
  makeTempDir,
  MiB,
  UsageError,
  median,
  parseDuration,
  requireTools,
  round,
  runMain,
  runWrk,
  smapsRollup,
  startProcess,
  stopProcess,
  table,
  waitForOutput,
} from './lib.mjs';

const USAGE = 'usage: node test/bench/front.mjs [--quick] [--mode exec|fork] [--processes N] [--rounds N] [--duration 10s] [--workers 4] [--json FILE]';

async function informerWorkers(rpcPort, dir) {
  const { RpcClient } = await import(path.join(REPO, 'dist/src/cli/rpc-client.js'));
  const client = await RpcClient.connect(`tcp://127.0.0.1:${rpcPort}`, dir);
  try {
    return (await client.call('informer.Workers', 'http')).workers;
  } finally {
    client.close();
  }
}

/** One round on a fresh rrts: wrk's figures and each front's share of the requests. */
async function round1(dir, processes, opts) {
  const port = await freePort();
  const rpcPort = await freePort();
  const file = path.join(dir, `front-${processes}.rr.yaml`);
  fs.writeFileSync(
    file,
    [
      "version: '3'",
      'server:',
      `  command: php ${path.join(REPO, 'php', 'worker.php')}`,
      `  fork: {enabled: ${opts.fork}}`,
      'http:',
      `  address: 127.0.0.1:${port}`,
      '  pool:',
      `    num_workers: ${opts.workers}`,
      '  front:',
      `    processes: ${processes}`,
      'rpc:',
      `  listen: tcp://127.0.0.1:${rpcPort}`,
      'logs:',
      '  mode: production',
      '  level: warn',
      '',
    ].join('\n'),
  );
  const rrts = startProcess(`rrts (processes: ${processes})`, process.execPath, [path.join(REPO, 'bin', 'rrts'), 'serve', '-c', file], { cwd: dir });
  try {
    await waitForOutput(rrts, (out) => out.includes('server started'), 30_000, 'its start');
    const fronts = processes > 1 ? childrenOf(rrts.pid).filter((pid) => !isPhp(pid)) : [rrts.pid];
    // exec: the fronts' php children; fork: rrts's (or a front's) fork root and everything under it
    const phpPids = () => (opts.fork ? descendants(rrts.pid).filter(isPhp) : fronts.flatMap((pid) => childrenOf(pid)).filter(isPhp));
    // the primary's CPU counts too: it accepts the connections and hands them to the fronts
    const frontGroup = processes > 1 ? [rrts.pid, ...fronts] : fronts;
    const target = { port, path: '/', groups: () => ({ front: frontGroup, php: phpPids() }) };
    await runWrk(target, { threads: 2, connections: 32 }, { wrk: '1s', seconds: 1 }); // warm-up
    const phpPss = phpPids().reduce((sum, pid) => sum + (smapsRollup(pid)?.Pss ?? 0), 0); // after the warm-up
    const before = await informerWorkers(rpcPort, dir);
    const ioBefore = syscallCounts(frontGroup);
    const primaryBefore = groupTicks([rrts.pid]);
    const r = await runWrk(target, { threads: 2, connections: 32 }, opts.duration);
    const primary = cpuMsBetween(primaryBefore, groupTicks([rrts.pid]));
    const ioAfter = syscallCounts(frontGroup);
    const after = await informerWorkers(rpcPort, dir);
    const execsBefore = new Map(before.map((w) => [w.pid, w.numExecs]));
    const byFront = new Map(fronts.map((pid) => [pid, 0]));
    // fork mode: a worker's front is the one whose master forked it (workers report their masterPid)
    const frontOf = (w) => (opts.fork ? frontOfMaster(fronts, w.masterPid) : fronts.find((pid) => childrenOf(pid).includes(w.pid)));
    for (const w of after) {
      const front = frontOf(w);
      if (front !== undefined) byFront.set(front, byFront.get(front) + w.numExecs - (execsBefore.get(w.pid) ?? 0));
    }
    const total = [...byFront.values()].reduce((a, b) => a + b, 0);
    return {
      processes,
      rps: r.rps,
      p99Ms: r.p99Ms,
      failed: r.non2xx + Object.values(r.socketErrors).reduce((a, b) => a + b, 0),
      shares: [...byFront.values()].map((n) => (total ? n / total : 0)),
      frontUsPerReq: r.cpu.frontUsPerReq,
      // where a second front's extra CPU per request goes: more reads and writes per request (fewer requests per
      // turn of each loop), more sleeps and wake-ups, or the primary
      readsPerReq: r.requests ? (ioAfter.reads - ioBefore.reads) / r.requests : null,
      writesPerReq: r.requests ? (ioAfter.writes - ioBefore.writes) / r.requests : null,
      frontSwitchesPerReq: r.cpu.frontSwitchesPerReq,
      primaryUsPerReq: processes > 1 && r.requests ? (primary.ms * 1000) / r.requests : 0,
      phpPss,
      roots: opts.fork ? childrenOf(rrts.pid).filter(isPhp).length : 0,
      otherCores: r.cpu.otherCores ?? null,
    };
  } finally {
    await stopProcess(rrts);
  }
}

/** The front whose fork master is `masterPid`: the one holding the master's control connection (its unix socket). */
function frontOfMaster(fronts, masterPid) {
  const inodes = (pid) => {
    const out = new Set();
    try {
      for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
        const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) out.add(m[1]);
      }
    } catch {
      /* gone */
    }
    return out;
  };
  const peers = peerInodes(inodes(masterPid));
  return fronts.find((pid) => [...inodes(pid)].some((i) => peers.has(i)));
}

/** The inodes of the other ends of these unix sockets (/proc/net/unix does not say; ss does). */
function peerInodes(own) {
  const out = new Set();
  const text = execFileSync('ss', ['-xpn'], { encoding: 'utf8' });
  for (const line of text.split('\n')) {
    const cols = line.trim().split(/\s+/);
    // Netid State Recv-Q Send-Q Local Address:Port Peer Address:Port
    const localInode = cols[5];
    const peerInode = cols[7];
    if (own.has(localInode) && peerInode) out.add(peerInode);
  }
  return out;
}

/** read and write system calls (readv/writev included) of these processes so far, from /proc/<pid>/io. */
function syscallCounts(pids) {
  let reads = 0;
  let writes = 0;
  for (const pid of pids) {
    try {
      const text = fs.readFileSync(`/proc/${pid}/io`, 'utf8');
      reads += Number(/syscr:\s+(\d+)/.exec(text)?.[1] ?? 0);
      writes += Number(/syscw:\s+(\d+)/.exec(text)?.[1] ?? 0);
    } catch {
      /* gone */
    }
  }
  return { reads, writes };
}

function isPhp(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'php';
  } catch {
    return false;
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      processes: { type: 'string', default: '2' },
      rounds: { type: 'string' },
      duration: { type: 'string' },
      workers: { type: 'string', default: '4' },
      mode: { type: 'string', default: 'exec' },
      json: { type: 'string' },
    },
  });
  requireTools(['php-cli', 'wrk']);
  const processes = Number(values.processes);
  if (!['exec', 'fork'].includes(values.mode)) throw new UsageError(`--mode is exec or fork, got ${values.mode}`);
  const opts = {
    fork: values.mode === 'fork',
    workers: Number(values.workers),
    duration: parseDuration(values.duration ?? (values.quick ? '3s' : '10s'), '--duration'),
  };
  const rounds = Number(values.rounds ?? (values.quick ? 1 : 3));
  const dir = makeTempDir('rrts-bench-front-');
  const results = [];
  for (let i = 0; i < rounds; i++) {
    for (const n of [1, processes]) {
      log(`round ${i + 1}/${rounds}: processes ${n}`);
      results.push({ round: i + 1, ...(await round1(dir, n, opts)) });
    }
  }
  const rows = results.map((r) => [
    String(r.round),
    String(r.processes),
    String(Math.round(r.rps)),
    `${round(r.p99Ms, 2)} ms`,
    String(r.failed),
    r.shares.map((s) => `${Math.round(s * 100)}%`).join(' / '),
    `${Math.round(r.frontUsPerReq)} µs`,
    `${round(r.readsPerReq, 2)} / ${round(r.writesPerReq, 2)}`,
    round(r.frontSwitchesPerReq, 2).toString(),
    `${round(r.primaryUsPerReq, 1)} µs`,
    `${MiB(r.phpPss)} MiB${opts.fork ? ` (${r.roots} root)` : ''}`,
    r.otherCores === null ? '?' : round(r.otherCores, 2).toString(),
  ]);
  process.stdout.write(
    `${table(['round', 'processes', 'req/s', 'p99', 'failed', 'share per front', 'front CPU/req', 'reads / writes per req', 'ctx sw/req', 'primary CPU/req', 'PHP side PSS', 'other load (cores)'], rows)}\n`,
  );
  const ratios = [];
  for (let i = 1; i <= rounds; i++) {
    const one = results.find((r) => r.round === i && r.processes === 1);
    const many = results.find((r) => r.round === i && r.processes === processes);
    ratios.push(many.rps / one.rps);
  }
  const minShare = Math.min(...results.filter((r) => r.processes === processes).flatMap((r) => r.shares));
  const summary = {
    processes,
    ratios,
    ratioMedian: median(ratios),
    minShare,
    failed: results.reduce((a, r) => a + r.failed, 0),
  };
  process.stdout.write(
    `processes ${processes} / 1, req/s per round: ${ratios.map((x) => round(x, 2)).join(', ')} (median ${round(summary.ratioMedian, 2)}; target >= 0.95)\n` +
      `smallest share of one front: ${Math.round(minShare * 100)}% (target >= 30%); failed: ${summary.failed}\n`,
  );
  if (values.json) fs.writeFileSync(values.json, JSON.stringify({ results, summary }, null, 2));
  process.stdout.write(`${JSON.stringify({ results, summary })}\n`);
  await cleanup();
}

runMain(main, USAGE);
