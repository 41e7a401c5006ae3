#!/usr/bin/env node
// Jobs throughput, side by side in one run (issue 20's targets): how fast 4 consumers doing nothing drain a queue of N
// jobs through rrts (amqp pipeline, memory pipeline) and, as the reference, as 4 PHP processes consuming the same
// RabbitMQ queue directly with php-amqp (basic_consume + ack). Both sides hold the same number of unacked deliveries:
// the pipeline's prefetch is one QoS for its one consumer, shared by its workers (as RoadRunner's), so it is the
// direct consumers' prefetch times their number (40 = 4 x 10 by default).
//
//   direct      4 `php test/fixtures/php/amqp-direct-consumer.php`: each its own connection, channel and prefetch
//   rrts-amqp   `rrts serve`, jobs pipeline `bench-amqp` (driver amqp, same queue), 4 workers of jobs-bench-consumer.php
//   rrts-memory the same rrts, pipeline `bench-memory` (driver memory), the jobs pushed first over RPC (PushBatch)
//
// A private RabbitMQ (as the tests start it) and one rrts serve the whole run. Each measurement fills the queue
// first (amqp: published by this script with the rr_* headers rrts's push writes; memory: jobs.PushBatch in protobuf
// while the pipeline is paused, timed as the push rate), then starts consuming (direct: a line to each consumer's
// stdin; rrts: jobs.Resume) and times until the consumers have recorded all N; rrts's pipeline is paused again.
// Targets run round-robin (direct, rrts-amqp, rrts-memory, direct, ...), so noise hits all alike. Each job carries
// a sequence number; every consumer appends the number of each job it acked to a file of its own, and at the end
// every number pushed must have been recorded exactly once (and the queue must be empty after each amqp drain and
// once rrts has stopped).
// Around each drain it reads /proc for the CPU of rrts's node process, the PHP consumers, the broker and the rest
// of the machine (noise). Prints the tables, then the result as JSON on stdout's last line (or into --json FILE).
// Every process is started and stopped by pid (also on ^C), the temp dir is removed. Run `npm run build` first.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { once } from 'node:events';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import {
  HOST,
  REPO,
  UsageError,
  cleanup,
  cpuMsBetween,
  descendants,
  freePort,
  groupTicks,
  log,
  machineCpu,
  machineFacts,
  makeTempDir,
  median,
  noteDescendants,
  requireTools,
  round,
  rrtsRevision,
  runMain,
  sleep,
  startProcess,
  startRabbitMq,
  stopProcess,
  stopRabbitMq,
  table,
  CLK_TCK,
  tail,
  waitFor,
  waitForOutput,
} from './lib.mjs';

const USAGE = `usage: node test/bench/jobs.mjs [options]   (after npm run build)
  --jobs N        jobs per measurement (default 30000; a drain should last several seconds)
  --rounds R      measurements per target, round-robin (default 3)
  --warmup N      jobs through each target before the measured rounds (default 3000)
  --workers N     consumers per target (default 4)
  --prefetch N    the amqp pipeline's prefetch, shared by its workers (default: workers x the direct prefetch, 40)
  --direct-prefetch N  each direct consumer's prefetch (default: the pipeline's / workers, rounded up; else 10,
                  RoadRunner's default): the same jobs in flight on both sides
  --payload B     bytes per job payload (default 64)
  --batch N       jobs per jobs.PushBatch call (default 1000)
  --targets LIST  comma-separated subset of direct,rrts-amqp,rrts-memory (default all)
  --quick         3000 jobs, 1 round, 500 warm-up jobs: a smoke run, only indicative
  --cpu-prof DIR  run rrts under node --cpu-prof, its profile written into DIR when it stops
  --rrts-root DIR measure the rrts built in DIR (its bin/rrts, dist/, the consumer fixture and php/lib) instead of
                  this checkout: run once with each to compare two builds
  --json FILE     write the JSON result to FILE instead of stdout's last line
  -h, --help`;

const DIST = path.join(REPO, 'dist', 'src');
// The rrts under test: this checkout, or another built tree given with --rrts-root (set in main()).
let RRTS_ROOT = REPO;
let RRTS_BIN = '';
let RRTS_CONSUMER = '';
function setRrtsRoot(root) {
  RRTS_ROOT = path.resolve(root);
  RRTS_BIN = path.join(RRTS_ROOT, 'bin', 'rrts');
  RRTS_CONSUMER = path.join(RRTS_ROOT, 'test', 'fixtures', 'php', 'jobs-bench-consumer.php');
  for (const file of [RRTS_BIN, RRTS_CONSUMER, path.join(RRTS_ROOT, 'dist', 'src', 'cli', 'main.js')]) {
    if (!fs.existsSync(file)) throw new UsageError(`--rrts-root ${root}: ${path.relative(RRTS_ROOT, file)} is missing (a built rrts tree?)`);
  }
}
const DIRECT_CONSUMER = path.join(REPO, 'test', 'fixtures', 'php', 'amqp-direct-consumer.php');
const TARGETS = ['direct', 'rrts-amqp', 'rrts-memory'];
const LABEL = { direct: 'php-amqp direct', 'rrts-amqp': 'rrts amqp', 'rrts-memory': 'rrts memory' };
const AMQP_PIPELINE = 'bench-amqp';
const MEMORY_PIPELINE = 'bench-memory';
const EXCHANGE = 'rrts-bench';
const QUEUE = 'rrts-bench-jobs';
/** A drain that records no job for this long is stuck. */
const STALL_MS = 30_000;
const POLL_MS = 10;
const NOISY_CORES = 0.15;
/** RoadRunner's amqp prefetch default, here each direct consumer's */
const DEFAULT_DIRECT_PREFETCH = 10;

// dist's modules, loaded in main() (after the check that the build is there)
let dist = null;

async function loadDist() {
  const load = (file) => import(pathToFileURL(path.join(DIST, file)).href);
  if (!fs.existsSync(path.join(DIST, 'jobs', 'proto.js'))) throw new Error(`no build in ${path.relative(REPO, DIST)}: run 'npm run build' first`);
  const [proto, frame, messages, flags, amqpMessage, amqplib] = await Promise.all([
    load('jobs/proto.js'),
    load('goridge/frame.js'),
    load('goridge/messages.js'),
    load('goridge/flags.js'),
    load('jobs/drivers/amqp/message.js'),
    import('amqplib'),
  ]);
  dist = { JobsProto: proto.JobsProto, FrameDecoder: frame.FrameDecoder, ...messages, Flag: flags.Flag, ...amqpMessage, amqp: amqplib.default };
}

// ---------------------------------------------------------------------------------------------- jobs RPC (protobuf)

/** A goridge RPC connection speaking the protobuf codec (0x80), as the PHP SDK's Jobs client does. */
class ProtoRpc {
  static async connect(port) {
    const socket = net.connect(port, HOST);
    await once(socket, 'connect');
    socket.setNoDelay(true);
    return new ProtoRpc(socket);
  }

  constructor(socket) {
    this.socket = socket;
    this.seq = 0;
    this.pending = new Map();
    this.decoder = new dist.FrameDecoder({ maxPayload: 64 * 1024 * 1024 });
    socket.on('data', (chunk) => {
      for (const frame of this.decoder.push(chunk)) {
        const msg = dist.decodeRpc(frame);
        const call = this.pending.get(msg.seq);
        this.pending.delete(msg.seq);
        call?.(msg);
      }
    });
    const fail = (err) => {
      for (const call of this.pending.values()) call({ error: err });
      this.pending.clear();
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('the RPC connection closed')));
  }

  /** `method` with `arg` encoded as `argType`; resolves the answer decoded as `resultType`, rejects with rrts's error text. */
  call(method, argType, arg, resultType, timeoutMs = 120_000) {
    const seq = this.seq++;
    const body = Buffer.from(argType.encode(argType.fromObject(arg)).finish());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(seq);
        reject(new Error(`${method}: no answer within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.pending.set(seq, (msg) => {
        clearTimeout(timer);
        if (msg.error) reject(new Error(`${method}: ${msg.error.message}`));
        else if (msg.flags & dist.Flag.ERROR) reject(new Error(`${method}: ${msg.body.toString('utf8')}`));
        else resolve(resultType.toObject(resultType.decode(msg.body), { defaults: true, longs: Number }));
      });
      this.socket.write(dist.encodeRpc({ seq, method, flags: dist.Flag.CODEC_PROTO, body }));
    });
  }

  pipelines(method, names) {
    const { Pipelines, Empty } = dist.JobsProto;
    return this.call(`jobs.${method}`, Pipelines, { pipelines: names }, Empty);
  }

  stat() {
    const { Empty, Stats } = dist.JobsProto;
    return this.call('jobs.Stat', Empty, {}, Stats);
  }

  close() {
    this.socket.destroy();
  }
}

// ---------------------------------------------------------------------------------------------- jobs and records

/** A job's payload: its sequence number, then padding to `size` bytes (the consumers read the leading digits). */
function payloadOf(seq, size) {
  const head = `${seq} `;
  return Buffer.from(head.length >= size ? head : head + 'x'.repeat(size - head.length));
}

/** Bytes the consumers have recorded so far (4 per job) in `dir`. */
function recordedBytes(dir) {
  let total = 0;
  for (const name of fs.readdirSync(dir)) total += fs.statSync(path.join(dir, name)).size;
  return total;
}

/** How many times each sequence number below `total` was recorded, and the numbers out of that range. */
function countRecords(dir, total) {
  const counts = new Uint8Array(total);
  let outOfRange = 0;
  for (const name of fs.readdirSync(dir)) {
    const bytes = fs.readFileSync(path.join(dir, name));
    for (let at = 0; at + 4 <= bytes.length; at += 4) {
      const seq = bytes.readUInt32LE(at);
      if (seq < total) counts[seq] = Math.min(255, counts[seq] + 1);
      else outOfRange++;
    }
  }
  return { counts, outOfRange };
}

// ---------------------------------------------------------------------------------------------- the parts

/** The amqp side every target shares: the exchange and queue as rrts's pipeline declares them, and a publisher. */
async function openBroker(broker, opts) {
  const connection = await dist.amqp.connect(broker.url);
  connection.on('error', (err) => log(`bench's amqp connection: ${err.message}`));
  const channel = await connection.createConfirmChannel();
  // what the amqp driver declares for the pipeline's config below (durable false, direct exchange)
  await channel.assertExchange(EXCHANGE, 'direct', { durable: false, autoDelete: false });
  await channel.assertQueue(QUEUE, { durable: false, exclusive: false, autoDelete: false });
  await channel.bindQueue(QUEUE, EXCHANGE, QUEUE);
  return {
    /** Publishes jobs [from, from + count) as rrts's push would (rr_* headers), waits for the broker's confirms. */
    async fill(from, count) {
      for (let seq = from; seq < from + count; seq++) {
        const headers = dist.packHeaders({
          id: `bench-${seq}`,
          job: 'bench.Job',
          pipeline: AMQP_PIPELINE,
          headers: {},
          delaySeconds: 0,
          priority: 10,
          autoAck: false,
        });
        if (!channel.publish(EXCHANGE, QUEUE, payloadOf(seq, opts.payload), dist.publishOptions(headers))) await once(channel, 'drain');
      }
      await channel.waitForConfirms();
      const { messageCount } = await channel.checkQueue(QUEUE);
      if (messageCount !== count) throw new Error(`the queue holds ${messageCount} messages after publishing ${count} into an empty one`);
    },
    /** Ready messages in the queue (unacked ones of a gone consumer come back to it). */
    async ready() {
      return (await channel.checkQueue(QUEUE)).messageCount;
    },
    close: () => connection.close().catch(() => {}),
  };
}

async function startRrts(tmp, broker, opts) {
  const dir = fs.mkdtempSync(path.join(tmp, 'rrts-'));
  const rpcPort = await freePort();
  const config = {
    version: '3',
    rpc: { listen: `tcp://${HOST}:${rpcPort}` },
    server: { command: `php ${RRTS_CONSUMER}`, relay: 'pipes', env: { JOBS_BENCH_DIR: opts.records } },
    amqp: { addr: broker.url },
    jobs: {
      pool: { num_workers: opts.workers, allocate_timeout: '60s', destroy_timeout: '10s' },
      pipelines: {
        [AMQP_PIPELINE]: { driver: 'amqp', config: { queue: QUEUE, exchange: EXCHANGE, exchange_type: 'direct', routing_key: QUEUE, prefetch: opts.prefetch } },
        [MEMORY_PIPELINE]: { driver: 'memory', config: {} },
      },
      // neither consumes at first: each drain starts with jobs.Resume
      consume: [],
    },
    logs: { mode: 'production', level: 'warn' },
  };
  const file = path.join(dir, '.rr.yaml');
  fs.writeFileSync(file, JSON.stringify(config, null, 2)); // JSON is YAML
  const nodeArgs = opts.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(opts.cpuProf)] : [];
  const proc = startProcess('rrts', process.execPath, [...nodeArgs, RRTS_BIN, 'serve', '-c', file], { cwd: dir, graceMs: 20_000 });
  await waitForOutput(proc, (out) => out.includes('server started'), 120_000, 'server started');
  await waitFor(
    () => descendants(proc.pid).length >= opts.workers,
    `${opts.workers} rrts jobs workers`,
    60_000,
    () => `; rrts output:\n${tail(proc.out)}`,
  );
  noteDescendants(proc);
  const rpc = await ProtoRpc.connect(rpcPort);
  return { proc, rpc };
}

async function startDirectConsumers(broker, opts) {
  const procs = Array.from({ length: opts.workers }, (_, i) =>
    startProcess(`direct-${i}`, 'php', [DIRECT_CONSUMER, String(broker.port), QUEUE, String(opts.directPrefetch), opts.records], {
      stdin: 'pipe',
      graceMs: 5_000,
    }),
  );
  await Promise.all(procs.map((p) => waitForOutput(p, (out) => out.includes('ready'), 30_000, 'ready')));
  return procs;
}

// ---------------------------------------------------------------------------------------------- one drain

/**
 * Fills the target's queue with jobs [from, from + count), starts consuming, and times until the consumers have
 * recorded `count` more jobs. Returns { rate, seconds, pushRate?, cpu }.
 */
async function drain(target, from, count, ctx) {
  const { opts, rrts, publisher, broker } = ctx;
  let pushRate = null;
  let direct = null;
  if (target === 'rrts-memory') {
    const { PushBatchRequest, Empty } = dist.JobsProto;
    const t0 = performance.now();
    for (let at = from; at < from + count; at += opts.batch) {
      const jobs = [];
      for (let seq = at; seq < Math.min(at + opts.batch, from + count); seq++) {
        jobs.push({ job: 'bench.Job', id: `bench-${seq}`, payload: payloadOf(seq, opts.payload), headers: {}, options: { pipeline: MEMORY_PIPELINE } });
      }
      await rrts.rpc.call('jobs.PushBatch', PushBatchRequest, { jobs }, Empty);
    }
    pushRate = count / ((performance.now() - t0) / 1000);
  } else {
    await publisher.fill(from, count);
    if (target === 'direct') direct = await startDirectConsumers(broker, opts);
  }

  const phpPids = () => (direct ? direct.map((p) => p.pid) : descendants(rrts.proc.pid));
  const groups = () => ({ rrts: groupTicks([rrts.proc.pid]), php: groupTicks(phpPids()), broker: groupTicks(broker.pids()), bench: groupTicks([process.pid]) });
  const baseline = recordedBytes(opts.records);
  const goal = baseline + 4 * count;
  const before = { ticks: groups(), machine: machineCpu() };
  const t0 = performance.now();
  if (direct) for (const p of direct) p.child.stdin.write('go\n');
  else await rrts.rpc.pipelines('Resume', [target === 'rrts-amqp' ? AMQP_PIPELINE : MEMORY_PIPELINE]);
  let seen = baseline;
  let progressAt = t0;
  for (;;) {
    const now = recordedBytes(opts.records);
    if (now >= goal) break;
    if (now !== seen) [seen, progressAt] = [now, performance.now()];
    else if (performance.now() - progressAt > STALL_MS) {
      throw new Error(
        `${LABEL[target]}: stuck at ${(seen - baseline) / 4} of ${count} jobs for ${STALL_MS / 1000} s; rrts output:\n${tail(rrts.proc.out)}` +
          (direct ? `\ndirect consumers:\n${direct.map((p) => `${p.name}: ${tail(p.out, 5)}`).join('\n')}` : ''),
      );
    }
    await sleep(POLL_MS);
  }
  const seconds = (performance.now() - t0) / 1000;
  const after = { ticks: groups(), machine: machineCpu() };

  if (direct) await Promise.all(direct.map((p) => stopProcess(p)));
  else await rrts.rpc.pipelines('Pause', [target === 'rrts-amqp' ? AMQP_PIPELINE : MEMORY_PIPELINE]);
  if (target !== 'rrts-memory') {
    // every job acked: nothing comes back to the queue once the consumers are gone or paused
    await sleep(200);
    const left = await publisher.ready();
    if (left !== 0) throw new Error(`${LABEL[target]}: ${left} job(s) back in the queue after all ${count} were recorded (unacked, or redelivered)`);
  }

  const cpu = {};
  for (const group of ['rrts', 'php', 'broker', 'bench']) {
    if (group === 'rrts' && direct) continue;
    const used = cpuMsBetween(before.ticks[group], after.ticks[group]);
    cpu[group] = {
      usPerJob: (used.ms * 1000) / count,
      sysUsPerJob: (used.sysMs * 1000) / count,
      cores: used.ms / 1000 / seconds,
      // the main threads' sleeps per job: how often a process waited for the other side (the broker's threads are not counted)
      sleepsPerJob: used.voluntarySwitches / count,
    };
  }
  const ours = Object.values(cpu).reduce((sum, c) => sum + c.cores, 0);
  const busy = (after.machine.busy - before.machine.busy - (after.machine.steal - before.machine.steal)) / CLK_TCK / seconds;
  cpu.otherCores = Math.max(0, busy - ours);
  return { rate: count / seconds, seconds, pushRate, cpu };
}

// ---------------------------------------------------------------------------------------------- output

const int = (v) => (v === null || v === undefined ? '-' : Math.round(v).toLocaleString('en-US'));
const x = (v) => (v === null || !Number.isFinite(v) ? '-' : `${v.toFixed(2)}x`);

function summarise(runs, targets) {
  const out = {};
  for (const t of targets) {
    const rs = runs.filter((r) => r.target === t);
    const pick = (f) => rs.map(f).filter((v) => v !== null && v !== undefined);
    const cpu = (group, field = 'usPerJob') => (rs[0]?.cpu[group] ? median(pick((r) => r.cpu[group][field])) : null);
    out[t] = {
      label: LABEL[t],
      rate: { median: median(pick((r) => r.rate)), min: Math.min(...pick((r) => r.rate)), max: Math.max(...pick((r) => r.rate)), rounds: pick((r) => r.rate) },
      pushRate: t === 'rrts-memory' ? { median: median(pick((r) => r.pushRate)), rounds: pick((r) => r.pushRate) } : null,
      usPerJob: { rrts: cpu('rrts'), php: cpu('php'), broker: cpu('broker'), bench: cpu('bench') },
      sysUsPerJob: { rrts: cpu('rrts', 'sysUsPerJob'), php: cpu('php', 'sysUsPerJob'), broker: cpu('broker', 'sysUsPerJob') },
      sleepsPerJob: { rrts: cpu('rrts', 'sleepsPerJob'), php: cpu('php', 'sleepsPerJob') },
      cores: { rrts: cpu('rrts', 'cores'), php: cpu('php', 'cores'), broker: cpu('broker', 'cores') },
      otherCores: median(pick((r) => r.cpu.otherCores)),
      otherCoresMax: Math.max(...pick((r) => r.cpu.otherCores)),
    };
  }
  return out;
}

/** a / b per round (the two ran back to back in the same round) and their median. */
function ratio(runs, a, b, rounds) {
  const per = [];
  for (let r = 0; r < rounds; r++) {
    const ra = runs.find((run) => run.round === r && run.target === a);
    const rb = runs.find((run) => run.round === r && run.target === b);
    if (ra && rb) per.push(ra.rate / rb.rate);
  }
  return per.length ? { value: median(per), min: Math.min(...per), max: Math.max(...per), rounds: per } : null;
}

function render(result) {
  const { meta, targets, ratios, check } = result;
  const lines = [];
  lines.push(
    `jobs throughput${meta.quick ? ' (--quick: only indicative)' : ''}: ${meta.jobs} jobs per drain, ${meta.rounds} round(s) round-robin, ${meta.workers} consumers doing nothing, ` +
      `amqp prefetch ${meta.prefetch} (each direct consumer: ${meta.directPrefetch}), ${meta.payload}-byte payloads, warm-up ${meta.warmup} jobs each`,
  );
  lines.push('');
  lines.push(
    table(
      ['target', 'jobs/s median', 'min-max', 'push jobs/s', 'rrts us/job', 'php us/job', 'broker us/job', 'other load (cores)'],
      Object.values(targets).map((s) => [
        s.label,
        int(s.rate.median),
        `${int(s.rate.min)}-${int(s.rate.max)}`,
        s.pushRate ? int(s.pushRate.median) : '-',
        s.usPerJob.rrts === null ? '-' : s.usPerJob.rrts.toFixed(1),
        s.usPerJob.php.toFixed(1),
        s.usPerJob.broker.toFixed(1),
        s.otherCores.toFixed(2),
      ]),
    ),
  );
  lines.push('');
  const us = (v) => (v === null ? '-' : v.toFixed(1));
  const cores = (v) => (v === null ? '-' : v.toFixed(2));
  lines.push("where the CPU goes (medians): of each us/job the kernel's share, the cores each used during the drain, and");
  lines.push("how often per job a main thread slept waiting for its peer (rrts node, each PHP consumer; the broker's threads not counted)");
  lines.push('');
  lines.push(
    table(
      ['target', 'rrts sys us', 'php sys us', 'broker sys us', 'rrts cores', 'php cores', 'broker cores', 'rrts sleeps/job', 'php sleeps/job'],
      Object.values(targets).map((s) => [
        s.label,
        us(s.sysUsPerJob.rrts),
        us(s.sysUsPerJob.php),
        us(s.sysUsPerJob.broker),
        cores(s.cores.rrts),
        cores(s.cores.php),
        cores(s.cores.broker),
        us(s.sleepsPerJob.rrts),
        us(s.sleepsPerJob.php),
      ]),
    ),
  );
  lines.push('');
  lines.push(`rounds (jobs/s, in run order): ${result.runs.map((r) => `${r.target} ${int(r.rate)}`).join(', ')}`);
  const verdict = (r, goal) => (r ? (r.value >= goal ? 'met' : 'MISSED') : 'not measured');
  const roundsOf = (r) => (r ? ` [${r.rounds.map((v) => v.toFixed(2)).join(', ')}]` : '');
  lines.push('');
  lines.push(
    `rrts amqp / php-amqp direct:  ${x(ratios.amqpOverDirect?.value ?? null)}${roundsOf(ratios.amqpOverDirect)}  target >= 0.8x: ${verdict(ratios.amqpOverDirect, 0.8)}`,
  );
  lines.push(
    `rrts memory / rrts amqp:      ${x(ratios.memoryOverAmqp?.value ?? null)}${roundsOf(ratios.memoryOverAmqp)}  target >= 2x: ${verdict(ratios.memoryOverAmqp, 2)}`,
  );
  lines.push(
    `exactly once: ${check.pushed} jobs pushed, ${check.lost} lost, ${check.duplicated} recorded more than once, ${check.outOfRange} unknown, ` +
      `${check.leftInQueue} back in the queue after rrts stopped: ${check.ok ? 'ok' : 'FAILED'}`,
  );
  for (const s of Object.values(targets)) {
    if (s.otherCoresMax > NOISY_CORES)
      lines.push(`note: ${s.label}: other processes used up to ${s.otherCoresMax.toFixed(2)} cores during its drains: noisy machine`);
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------- main

function positive(text, name) {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`--${name}: expected a whole number above 0, got ${JSON.stringify(text)}`);
  return n;
}

async function main() {
  const { values } = parseArgs({
    options: {
      jobs: { type: 'string' },
      rounds: { type: 'string' },
      warmup: { type: 'string' },
      workers: { type: 'string', default: '4' },
      prefetch: { type: 'string' },
      'direct-prefetch': { type: 'string' },
      payload: { type: 'string', default: '64' },
      batch: { type: 'string', default: '1000' },
      targets: { type: 'string', default: TARGETS.join(',') },
      quick: { type: 'boolean', default: false },
      'cpu-prof': { type: 'string' },
      'rrts-root': { type: 'string' },
      json: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  setRrtsRoot(values['rrts-root'] ?? REPO);
  const quick = values.quick;
  const opts = {
    quick,
    jobs: positive(values.jobs ?? (quick ? '3000' : '30000'), 'jobs'),
    rounds: positive(values.rounds ?? (quick ? '1' : '3'), 'rounds'),
    warmup: values.warmup === '0' ? 0 : positive(values.warmup ?? (quick ? '500' : '3000'), 'warmup'),
    workers: positive(values.workers, 'workers'),
    prefetch: 0,
    directPrefetch: 0,
    payload: positive(values.payload, 'payload'),
    batch: positive(values.batch, 'batch'),
    cpuProf: values['cpu-prof'] ?? null,
    records: null,
  };
  // the same unacked deliveries on both sides: the pipeline's one QoS against each direct consumer's own
  if (values.prefetch !== undefined) {
    opts.prefetch = positive(values.prefetch, 'prefetch');
    opts.directPrefetch = positive(values['direct-prefetch'] ?? String(Math.ceil(opts.prefetch / opts.workers)), 'direct-prefetch');
  } else {
    opts.directPrefetch = positive(values['direct-prefetch'] ?? String(DEFAULT_DIRECT_PREFETCH), 'direct-prefetch');
    opts.prefetch = opts.directPrefetch * opts.workers;
  }
  const targets = values.targets.split(',').map((t) => t.trim());
  for (const t of targets) if (!TARGETS.includes(t)) throw new UsageError(`--targets: unknown target ${JSON.stringify(t)} (known: ${TARGETS.join(', ')})`);
  if (opts.cpuProf) fs.mkdirSync(opts.cpuProf, { recursive: true });

  requireTools(['php-cli', 'rabbitmq-server', ...(targets.includes('direct') ? ['php-amqp'] : [])]);
  await loadDist();
  const tmp = makeTempDir('rrts-bench-jobs-');
  opts.records = path.join(tmp, 'records');
  fs.mkdirSync(opts.records);

  log('starting RabbitMQ');
  const broker = await startRabbitMq(tmp);
  const publisher = await openBroker(broker, opts);
  log('starting rrts');
  const rrts = await startRrts(tmp, broker, opts);
  const ctx = { opts, rrts, publisher, broker };

  let next = 0; // the next sequence number: unique over the whole run
  if (opts.warmup > 0) {
    for (const t of targets) {
      log(`warm-up: ${opts.warmup} jobs through ${LABEL[t]}`);
      await drain(t, next, opts.warmup, ctx);
      next += opts.warmup;
    }
  }
  const runs = [];
  for (let r = 0; r < opts.rounds; r++) {
    for (const t of targets) {
      const run = await drain(t, next, opts.jobs, ctx);
      next += opts.jobs;
      runs.push({ round: r, target: t, ...run });
      log(
        `round ${r + 1}/${opts.rounds} ${LABEL[t]}: ${int(run.rate)} jobs/s (${run.seconds.toFixed(1)} s)${run.pushRate ? `, pushed at ${int(run.pushRate)} jobs/s` : ''}; ` +
          `other load ${run.cpu.otherCores.toFixed(2)} cores`,
      );
    }
  }

  // every number pushed recorded exactly once, before and after rrts stops (a late redelivery would show then)
  const stat = await rrts.rpc.stat();
  rrts.rpc.close();
  await stopProcess(rrts.proc);
  // a delivery rrts took and never acked goes back to the queue once its connection is gone
  await sleep(200);
  const leftInQueue = await publisher.ready();
  await publisher.close();
  const { counts, outOfRange } = countRecords(opts.records, next);
  let lost = 0;
  let duplicated = 0;
  for (const c of counts) {
    if (c === 0) lost++;
    else if (c > 1) duplicated++;
  }
  const check = { pushed: next, lost, duplicated, outOfRange, leftInQueue, ok: lost === 0 && duplicated === 0 && outOfRange === 0 && leftInQueue === 0 };
  await stopRabbitMq(broker);

  const result = {
    meta: { ...opts, records: undefined, cpuProf: undefined, targets, date: new Date().toISOString() },
    machine: machineFacts(),
    rrts: rrtsRevision(RRTS_ROOT),
    targets: summarise(runs, targets),
    ratios: { amqpOverDirect: ratio(runs, 'rrts-amqp', 'direct', opts.rounds), memoryOverAmqp: ratio(runs, 'rrts-memory', 'rrts-amqp', opts.rounds) },
    check,
    pipelinesAtEnd: stat.stats,
    rrtsStop: rrts.proc.stopNote,
    runs: runs.map((r) => ({ ...r, rate: round(r.rate, 0), pushRate: r.pushRate === null ? null : round(r.pushRate, 0), seconds: round(r.seconds, 2) })),
  };
  process.stdout.write(`${render(result)}\n`);
  if (values.json) {
    fs.writeFileSync(values.json, `${JSON.stringify(result, null, 2)}\n`);
    process.stdout.write(`\nJSON written to ${values.json}\n`);
  } else {
    process.stdout.write(`${JSON.stringify(result)}\n`);
  }
  await cleanup();
  if (!check.ok) {
    throw new Error(
      `jobs were lost or done twice: ${lost} lost, ${duplicated} duplicated, ${outOfRange} unknown, ${leftInQueue} back in the queue after rrts stopped`,
    );
  }
}

runMain(main, USAGE);
