// CPU per job of the relay's transport to a PHP worker: what libuv gives `spawn` for stdio 'pipe' (an AF_UNIX
// socketpair) against real pipes (what rrts's exec spawner now gives a worker), each job one write of a frame-sized message and one read of the answer.
// Runs W php echo children at once (as the pool does), the transports in turns; prints Node's CPU per job and the
// children's. No HTTP: the number is only the transport's share of the front's cost. The transports:
//   socketpair           libuv's stdio 'pipe' (an AF_UNIX socketpair), written and read through the streams
//   pipes-stream         real pipes, written and read through the streams (rrts's exec relay before writeWhole)
//   pipes-direct-write   real pipes, each job written by writeWhole (one write(2), the native addon), stream reads
//   pipes-rrts           openWorkerPipes as rrts's exec relay uses it: writeWhole, and the answers read by onread
//   unix-accepted        the child connects to a unix socket (fork mode's relay); writeWhole, the accepted socket's
//                        stream reads (rrts's fork relay before adoptConnection)
//   unix-rrts            the same connection moved by adoptConnection into a socket read by onread (rrts's now)
//
//   node test/bench/relay-transport.mjs [--rounds 3] [--jobs 40000] [--workers 4] [--job-bytes 700] [--answer-bytes 300]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import posixNode from 'posix-node';
import os from 'node:os';
import { cleanup, cpuMsBetween, groupTicks, median, REPO, runMain, trackedPids } from './lib.mjs';

const { openWorkerPipes } = await import(path.join(REPO, 'dist/src/spawn/exec-pipes.js'));
const { writeWhole } = await import(path.join(REPO, 'dist/src/native/direct-write.js'));
const { adoptConnection } = await import(path.join(REPO, 'dist/src/native/adopt.js'));
const { CopiedReads } = await import(path.join(REPO, 'dist/src/relay/copied-reads.js'));

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i === -1 ? fallback : Number(args[i + 1]);
};
const ROUNDS = option('--rounds', 3);
const JOBS = option('--jobs', 40_000);
const WORKERS = option('--workers', 4);
const JOB_BYTES = option('--job-bytes', 700);
const ANSWER_BYTES = option('--answer-bytes', 300);

// Reads one whole job, writes one answer, forever: the PHP side's least possible work. With an argument, over a
// unix socket connected to that path (as a fork worker talks to rrts), else over stdin and stdout.
const ECHO_PHP = `
if (isset($argv[1])) { $in = $out = stream_socket_client('unix://' . $argv[1]); }
else { $in = fopen('php://stdin', 'rb'); $out = fopen('php://stdout', 'wb'); }
$answer = str_repeat('a', ${ANSWER_BYTES});
for (;;) {
  $need = ${JOB_BYTES};
  while ($need > 0) { $got = fread($in, $need); if ($got === false || $got === '') exit(0); $need -= strlen($got); }
  fwrite($out, $answer); fflush($out);
}`;

/** One child on stdio 'pipe': libuv makes each a socketpair. */
function socketpairChild() {
  const child = spawn('php', ['-r', ECHO_PHP], { stdio: ['pipe', 'pipe', 'inherit'] });
  trackedPids.add(child.pid);
  return { child, output: child.stdin, send: (buf) => child.stdin.write(buf), onBytes: streamReads(child.stdout) };
}

/** Reads through the Readable's 'data' events. */
function streamReads(socket) {
  return (receiver) => {
    socket.removeAllListeners('data');
    socket.on('data', receiver);
  };
}

/** Real pipes made here with pipe2, both sides through the streams, as rrts's exec relay was before writeWhole. */
function pipesStreamChild() {
  const posix = posixNode.default ?? posixNode;
  const cloexec = posix.constants.O_CLOEXEC;
  const jobsPipe = posix.pipe2(cloexec);
  const answersPipe = posix.pipe2(cloexec);
  const jobs = new net.Socket({ fd: jobsPipe.writefd, readable: false, writable: true });
  const answers = new net.Socket({ fd: answersPipe.readfd, readable: true, writable: false });
  let child;
  try {
    child = spawn('php', ['-r', ECHO_PHP], { stdio: [jobsPipe.readfd, answersPipe.writefd, 'inherit'] });
  } finally {
    fs.closeSync(jobsPipe.readfd);
    fs.closeSync(answersPipe.writefd);
  }
  trackedPids.add(child.pid);
  return { child, output: jobs, answers, send: (buf) => jobs.write(buf), onBytes: streamReads(answers) };
}

/** Real pipes, each job written by writeWhole as FrameRelay.send writes a frame; the answers read by the stream. */
function pipesDirectWriteChild() {
  const w = pipesStreamChild();
  return { ...w, send: (buf) => writeWhole(w.output, buf) };
}

/** One child on real pipes as rrts's exec spawner makes them (openWorkerPipes), written and read as its relay does. */
function pipesRrtsChild() {
  const pipes = openWorkerPipes();
  let child;
  try {
    child = spawn('php', ['-r', ECHO_PHP], { stdio: [pipes.childStdin, pipes.childStdout, 'inherit'] });
  } finally {
    pipes.closeChildEnds();
  }
  trackedPids.add(child.pid);
  return { child, output: pipes.jobs, send: (buf) => writeWhole(pipes.jobs, buf), onBytes: (receiver) => pipes.onAnswerBytes(receiver) };
}

/** Children connected to a unix socket of ours, as fork workers connect to rrts's relay listener. */
async function unixChildren(count, adopt) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-relay-bench-'));
  const file = path.join(dir, 'relay.sock');
  const server = net.createServer();
  await new Promise((resolve) => server.listen(file, resolve));
  const out = [];
  for (let i = 0; i < count; i++) {
    const accepting = new Promise((resolve) => server.once('connection', resolve));
    const child = spawn('php', ['-r', ECHO_PHP, '--', file], { stdio: ['ignore', 'inherit', 'inherit'] });
    trackedPids.add(child.pid);
    const accepted = await accepting;
    if (!adopt) {
      out.push({ child, output: accepted, send: (buf) => writeWhole(accepted, buf), onBytes: streamReads(accepted) });
      continue;
    }
    const reads = new CopiedReads();
    const adopted = adoptConnection(accepted, reads.buffer, reads.callback);
    if (adopted === null) throw new Error('adoptConnection is not available here (the native addon lacks dupCloexec)');
    reads.prepend(adopted.early);
    out.push({ child, output: adopted.socket, send: (buf) => writeWhole(adopted.socket, buf), onBytes: (receiver) => reads.onBytes(receiver) });
  }
  server.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return out;
}

/** Runs `jobs` round trips spread over the workers, as fast as they answer; Node's and the children's CPU. */
async function measure(workers, jobs) {
  const job = Buffer.alloc(JOB_BYTES, 'j');
  let sent = 0;
  let done = 0;
  const pids = workers.map((w) => w.child.pid);
  const beforeTicks = groupTicks(pids);
  const beforeCpu = process.cpuUsage();
  await new Promise((resolve) => {
    for (const w of workers) {
      let got = 0;
      w.onBytes((chunk) => {
        got += chunk.length;
        while (got >= ANSWER_BYTES) {
          got -= ANSWER_BYTES;
          if (++done === jobs) resolve();
          else if (sent < jobs) {
            sent++;
            w.send(job);
          }
        }
      });
      sent++;
      w.send(job);
    }
  });
  const cpu = process.cpuUsage(beforeCpu);
  const php = cpuMsBetween(beforeTicks, groupTicks(pids));
  return { nodeUs: (cpu.user + cpu.system) / jobs, nodeSysUs: cpu.system / jobs, phpUs: (php.ms * 1000) / jobs };
}

async function main() {
  const kinds = {
    socketpair: Array.from({ length: WORKERS }, () => socketpairChild()),
    'pipes-stream': Array.from({ length: WORKERS }, () => pipesStreamChild()),
    'pipes-direct-write': Array.from({ length: WORKERS }, () => pipesDirectWriteChild()),
    'pipes-rrts': Array.from({ length: WORKERS }, () => pipesRrtsChild()),
    'unix-accepted': await unixChildren(WORKERS, false),
    'unix-rrts': await unixChildren(WORKERS, true),
  };
  const names = Object.keys(kinds);
  const results = Object.fromEntries(names.map((k) => [k, []]));
  for (const k of names) await measure(kinds[k], 2000); // warm up all
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? names : [...names].reverse();
    for (const k of order) results[k].push(await measure(kinds[k], JOBS));
  }
  const fmt = (xs, f) => `${median(xs.map(f)).toFixed(1)} (${Math.min(...xs.map(f)).toFixed(1)}-${Math.max(...xs.map(f)).toFixed(1)})`;
  console.log(`${WORKERS} workers, ${JOBS} jobs per round, ${ROUNDS} rounds; job ${JOB_BYTES} B, answer ${ANSWER_BYTES} B; us per job, median (min-max)`);
  for (const k of Object.keys(results)) {
    const xs = results[k];
    console.log(`${k.padEnd(19)} node ${fmt(xs, (x) => x.nodeUs)}  of which sys ${fmt(xs, (x) => x.nodeSysUs)}  php ${fmt(xs, (x) => x.phpUs)}`);
  }
  for (const k of Object.keys(kinds)) for (const w of kinds[k]) w.output.destroy();
  await cleanup();
}

runMain(main);
