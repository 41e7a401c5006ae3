#!/usr/bin/env node
// The jobs boltdb driver (dist/src/jobs/drivers/boltdb.js) on a real file: pushes per second with every push
// fsynced before it resolves (one at a time, and N in flight sharing group commits), how many jobs per second move
// from the file into the jobs queue (RoadRunner's boltdb moves one per 500 ms), and push + take + ack round trips.
// Run `npm run build` first.
//   node test/bench/jobs-boltdb.mjs [--jobs 20000] [--payload 1024] [--inflight 64] [--dir DIR] [--json FILE]
// The journal lives in a temp folder under --dir (default os.tmpdir(): put it on the disk you want to measure),
// removed on the way out.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/src');
const { openBoltdbDriver } = await import(pathToFileURL(path.join(DIST, 'jobs', 'drivers', 'boltdb.js')).href);
const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '20000' },
    payload: { type: 'string', default: '1024' },
    inflight: { type: 'string', default: '64' },
    dir: { type: 'string', default: os.tmpdir() },
    json: { type: 'string' },
  },
});
const JOBS = Number(values.jobs);
const PAYLOAD = Buffer.alloc(Number(values.payload), 'x');
const INFLIGHT = Number(values.inflight);
const RR_JOBS_PER_SECOND = 2;

const root = fs.mkdtempSync(path.join(values.dir, 'rrts-bench-boltdb-'));
process.on('exit', () => fs.rmSync(root, { recursive: true, force: true }));
process.on('SIGINT', () => process.exit(130));

/** The jobs plugin's queue, reduced to what the driver calls; `onInsert` sees every job put in. */
function queue(onInsert = () => {}) {
  const jobs = [];
  return {
    jobs,
    async insert(job) {
      jobs.push(job);
      onInsert(job);
    },
    removePipeline(name) {
      const out = jobs.filter((job) => job.item.pipeline === name);
      jobs.length = 0;
      return out;
    },
  };
}

const silent = { debug() {}, info() {}, warn() {}, error() {}, child: () => silent };

async function open(name, q, config = {}) {
  const dir = fs.mkdtempSync(path.join(root, `${name}-`));
  return openBoltdbDriver(
    { name, driver: 'boltdb', priority: 10, config: { prefetch: 1_000_000, ...config }, declared: false },
    { queue: q, log: silent, workDir: dir, timeoutMs: 60_000, globalConfig: {} },
  );
}

function item(n) {
  return {
    id: `job-${n}`,
    job: 'bench.Job',
    payload: PAYLOAD,
    headers: { 'x-n': [String(n)] },
    pipeline: 'bench',
    priority: 10,
    delaySeconds: 0,
    autoAck: false,
  };
}

/** Runs `count` calls of `fn(n)` with `inflight` of them in flight; returns calls per second. */
async function rate(count, inflight, fn) {
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: Math.min(inflight, count) }, async () => {
      while (next < count) await fn(next++);
    }),
  );
  return count / (Number(process.hrtime.bigint() - started) / 1e9);
}

const results = {};
const fsyncBound = Math.min(JOBS, 2000);

{
  const driver = await open('bench', queue());
  results.pushOneAtATime = await rate(fsyncBound, 1, (n) => driver.push(item(n)));
  await driver.stop();
}
{
  const driver = await open('bench', queue());
  results.pushInflight = await rate(JOBS, INFLIGHT, (n) => driver.push(item(n)));
  await driver.stop();
}
{
  // a backlog of JOBS jobs, then run(): how fast they reach the queue
  let reached = 0;
  let done;
  const all = new Promise((resolve) => (done = resolve));
  const q = queue(() => {
    if (++reached === JOBS) done();
  });
  const driver = await open('bench', q);
  await rate(JOBS, INFLIGHT, (n) => driver.push(item(n)));
  const started = process.hrtime.bigint();
  await driver.run();
  await all;
  results.intoQueue = JOBS / (Number(process.hrtime.bigint() - started) / 1e9);
  await driver.stop();
}
{
  // push, take, ack: every push and every ack fsynced; INFLIGHT producers and INFLIGHT consumers
  const q = queue();
  const driver = await open('bench', q, { prefetch: INFLIGHT });
  await driver.run();
  let acked = 0;
  const started = process.hrtime.bigint();
  const consumers = Array.from({ length: INFLIGHT }, async () => {
    while (acked < JOBS) {
      const job = q.jobs.shift();
      if (!job) {
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      await job.ack();
      acked += 1;
    }
  });
  await rate(JOBS, INFLIGHT, (n) => driver.push(item(n)));
  await Promise.all(consumers);
  results.pushTakeAck = JOBS / (Number(process.hrtime.bigint() - started) / 1e9);
  await driver.stop();
}

const round = (x) => Math.round(x);
const rows = [
  ['pushes/s, one at a time (each fsynced)', round(results.pushOneAtATime), `${fsyncBound} jobs`],
  [`pushes/s, ${INFLIGHT} in flight (group commit)`, round(results.pushInflight), `${JOBS} jobs`],
  [
    'jobs/s from the file into the queue',
    round(results.intoQueue),
    `${JOBS} jobs; RoadRunner: ${RR_JOBS_PER_SECOND}/s (${round(results.intoQueue / RR_JOBS_PER_SECOND)}x)`,
  ],
  [`push + take + ack /s, ${INFLIGHT} in flight`, round(results.pushTakeAck), `${JOBS} jobs`],
];
const width = Math.max(...rows.map((r) => r[0].length));
console.log(`boltdb journal, ${PAYLOAD.length}-byte payloads, in ${values.dir} (${os.cpus().length} CPUs, Node ${process.version})`);
for (const [what, value, detail] of rows) console.log(`${what.padEnd(width)}  ${String(value).padStart(9)}  ${detail}`);
if (values.json) fs.writeFileSync(values.json, JSON.stringify({ jobs: JOBS, payload: PAYLOAD.length, inflight: INFLIGHT, results }, null, 2));
