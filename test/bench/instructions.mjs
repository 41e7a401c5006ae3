#!/usr/bin/env node
// Instructions the rrts node process's main thread runs per HTTP request, counted by valgrind's callgrind: a figure
// for a small hot-path change, which the shared machine's timing noise (often +-15 % a round) hides. callgrind
// counts user-space instructions, so other load on the machine does not enter; the kernel's part (the writes, the
// wake-ups) and V8's compiler and GC helper threads are not in it (--separate-threads, main thread only). What
// still varies run to run (a few %) is when V8's concurrent compiler finishes: compare the medians of pairs.
//
// Per run: `rrts serve` (exec mode, php/worker.php, or --mode fork; 4 workers) under callgrind with instrumentation
// off, a warm-up of closed-loop keep-alive GETs (4 connections) so V8 has optimized the hot path, then
// instrumentation on for --requests more, off, and a dump. With --rrts-root DIR the other build runs too, the two
// alternating (other, this, other, this...), and the ratio of the medians is printed. PHP's workers run outside
// valgrind (it does not follow children). About a minute a run.
//
//   node test/bench/instructions.mjs [--rrts-root DIR] [--pairs 2] [--requests 2000] [--warmup 1500] [--mode exec|fork]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { REPO, cleanup, freePort, log, makeTempDir, median, runMain, startProcess, stopProcess, table, UsageError, waitFor, which } from './lib.mjs';

const USAGE = 'usage: node test/bench/instructions.mjs [--rrts-root DIR] [--pairs 2] [--requests 2000] [--warmup 1500] [--mode exec|fork]';

/** `total` GETs over `connections` keep-alive connections, each sent when the connection's previous answer is in. */
function closedLoop(port, total, connections) {
  const request = Buffer.from(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
  let sent = 0;
  let answered = 0;
  return new Promise((resolve, reject) => {
    for (let i = 0; i < connections; i++) {
      const socket = net.connect(port, '127.0.0.1');
      let pending = '';
      const next = () => {
        if (sent < total) {
          sent++;
          socket.write(request);
        } else socket.end();
      };
      socket.on('connect', next);
      socket.on('data', (data) => {
        pending += data.toString('latin1');
        for (;;) {
          const headEnd = pending.indexOf('\r\n\r\n');
          if (headEnd < 0) return;
          if (!pending.startsWith('HTTP/1.1 200 ')) return reject(new Error(`not a 200 answer: ${pending.slice(0, 80)}`));
          const length = /\r\ncontent-length: *(\d+)/i.exec(pending.slice(0, headEnd));
          const end = headEnd + 4 + (length ? Number(length[1]) : 0);
          if (pending.length < end) return;
          pending = pending.slice(end);
          if (++answered === total) resolve();
          next();
        }
      });
      socket.on('error', reject);
    }
  });
}

/** One rrts under callgrind: the main thread's instructions per request of the measured stretch. */
async function oneRun(root, dir, opts, index) {
  const port = await freePort();
  const cfg = path.join(dir, `run-${index}.rr.yaml`);
  fs.writeFileSync(
    cfg,
    [
      "version: '3'",
      'server:',
      `  command: php ${path.join(root, 'php', 'worker.php')}`,
      `  fork: {enabled: ${opts.mode === 'fork'}}`,
      'http:',
      `  address: 127.0.0.1:${port}`,
      '  access_logs: false',
      '  pool:',
      '    num_workers: 4',
      'logs:',
      '  mode: production',
      '  level: error',
      '',
    ].join('\n'),
  );
  const out = path.join(dir, `cg-${index}.out`);
  const valgrind = ['--tool=callgrind', '--instr-atstart=no', '--separate-threads=yes', `--callgrind-out-file=${out}`];
  const p = startProcess(`rrts under callgrind (${root})`, 'valgrind', [...valgrind, process.execPath, path.join(root, 'bin', 'rrts'), 'serve', '-c', cfg], {
    cwd: dir,
    graceMs: 30_000,
  });
  try {
    await waitFor(
      () => /server started/.test(p.out) || p.exit !== null,
      "rrts's start under valgrind",
      300_000,
      () => `; its output:\n${p.out.slice(-2000)}`,
    );
    if (p.exit !== null) throw new Error(`rrts under valgrind exited before it started:\n${p.out.slice(-2000)}`);
    await closedLoop(port, opts.warmup, 4);
    execFileSync('callgrind_control', ['-i', 'on', String(p.pid)], { stdio: 'ignore' });
    await closedLoop(port, opts.requests, 4);
    execFileSync('callgrind_control', ['-i', 'off', String(p.pid)], { stdio: 'ignore' });
    execFileSync('callgrind_control', ['-d', String(p.pid)], { stdio: 'ignore' });
    const dump = `${out}.1-01`; // dump 1, thread 1: the main thread
    await waitFor(() => fs.existsSync(dump) && /^totals: /m.test(fs.readFileSync(dump, 'utf8')), 'the dump', 60_000);
    return Number(/^totals: (\d+)/m.exec(fs.readFileSync(dump, 'utf8'))[1]) / opts.requests;
  } finally {
    await stopProcess(p);
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      'rrts-root': { type: 'string' },
      pairs: { type: 'string', default: '2' },
      requests: { type: 'string', default: '2000' },
      warmup: { type: 'string', default: '1500' },
      mode: { type: 'string', default: 'exec' },
    },
  });
  const opts = { pairs: Number(values.pairs), requests: Number(values.requests), warmup: Number(values.warmup), mode: values.mode };
  if (!['exec', 'fork'].includes(opts.mode)) throw new UsageError(`--mode must be exec or fork, not ${opts.mode}`);
  for (const n of ['pairs', 'requests', 'warmup'])
    if (!(Number.isInteger(opts[n]) && opts[n] > 0)) throw new UsageError(`--${n} must be a whole number above 0`);
  for (const tool of ['valgrind', 'callgrind_control', 'php'])
    if (!which(tool)) throw new Error(`${tool} is not installed (Debian packages valgrind, php-cli)`);
  const builds = [...(values['rrts-root'] ? [{ name: 'other', root: path.resolve(values['rrts-root']) }] : []), { name: 'this', root: REPO }];
  const dir = makeTempDir('rrts-instructions-');
  const counts = new Map(builds.map((b) => [b.name, []]));
  let index = 0;
  for (let pair = 1; pair <= opts.pairs; pair++) {
    for (const b of builds) {
      const perRequest = await oneRun(b.root, dir, opts, index++);
      counts.get(b.name).push(perRequest);
      log(`pair ${pair}, ${b.name} build: ${Math.round(perRequest).toLocaleString('en-US')} instructions per request`);
    }
  }
  const format = (n) => Math.round(n).toLocaleString('en-US');
  const rows = builds.map((b) => [b.name === 'this' ? 'this checkout' : b.root, ...counts.get(b.name).map(format), format(median(counts.get(b.name)))]);
  console.log(`\nmain-thread instructions per request (${opts.mode} mode, ${opts.requests} requests after ${opts.warmup} of warm-up):`);
  console.log(table(['build', ...Array.from({ length: opts.pairs }, (_, i) => `run ${i + 1}`), 'median'], rows));
  if (builds.length === 2) console.log(`this / other: ${(median(counts.get('this')) / median(counts.get('other'))).toFixed(3)}x`);
  console.log(JSON.stringify({ mode: opts.mode, requests: opts.requests, warmup: opts.warmup, perRequest: Object.fromEntries(counts) }));
  await cleanup();
}

runMain(main, USAGE);
