#!/usr/bin/env node
// What exec mode's relay peer check (dist/src/relay/peer-check.js) costs a worker start: checkPeer() on a real
// connection from a child process, over unix and tcp, with the TCP table as it is and with --idle N more loopback
// connections open (each adds two lines to /proc/net/tcp). Run `npm run build` first.
//   node test/bench/peer-check.mjs [--rounds 500] [--idle 2000]
// Prints the median and p99 in ms per case; the child processes it starts are killed by pid on the way out.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/src');
const { checkPeer } = await import(pathToFileURL(path.join(DIST, 'relay', 'peer-check.js')).href);
const { values } = parseArgs({ options: { rounds: { type: 'string', default: '500' }, idle: { type: 'string', default: '2000' } } });
const rounds = Number(values.rounds);
const children = new Set();
process.on('exit', () => children.forEach((pid) => kill(pid)));

function kill(pid) {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

/** A child node process connected to `listener`; resolves with the server side of its connection. */
async function connectFromChild(listener, target) {
  const accepted = new Promise((resolve) => listener.once('connection', resolve));
  const script = `require('node:net').connect(JSON.parse(process.argv[1])); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['-e', script, JSON.stringify(target)], { stdio: 'ignore' });
  children.add(child.pid);
  return { pid: child.pid, socket: await accepted };
}

async function measure(kind, socket, pid) {
  const ms = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    const verdict = await checkPeer(socket, kind, pid, (p) => p === pid);
    ms.push(performance.now() - t0);
    if (!verdict.ok) throw new Error(`the check refused its own child: ${verdict.why}`);
  }
  ms.sort((a, b) => a - b);
  return { median: ms[Math.floor(ms.length / 2)], p99: ms[Math.floor(ms.length * 0.99)] };
}

/** `n` idle loopback connections inside this process, to grow /proc/net/tcp; returns a closer. */
async function idleConnections(n) {
  const server = net.createServer(() => {});
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  const sockets = [];
  for (let i = 0; i < n; i++) {
    const s = net.connect(port, '127.0.0.1');
    await new Promise((resolve, reject) => s.once('connect', resolve).once('error', reject));
    sockets.push(s);
  }
  return async () => {
    sockets.forEach((s) => s.destroy());
    server.close();
  };
}

function tcpLines() {
  return fs.readFileSync('/proc/net/tcp', 'latin1').split('\n').length - 2 + (fs.readFileSync('/proc/net/tcp6', 'latin1').split('\n').length - 2);
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-peer-bench-'));
const unixListener = net.createServer();
await new Promise((resolve) => unixListener.listen(path.join(dir, 'relay.sock'), resolve));
const tcpListener = net.createServer();
await new Promise((resolve) => tcpListener.listen(0, '127.0.0.1', resolve));
const unixPeer = await connectFromChild(unixListener, { path: path.join(dir, 'relay.sock') });
const tcpPeer = await connectFromChild(tcpListener, { host: '127.0.0.1', port: tcpListener.address().port });

const rows = [];
rows.push({ case: 'unix', tcpLines: tcpLines(), ...(await measure('unix', unixPeer.socket, unixPeer.pid)) });
rows.push({ case: 'tcp', tcpLines: tcpLines(), ...(await measure('tcp', tcpPeer.socket, tcpPeer.pid)) });
const closeIdle = await idleConnections(Number(values.idle));
rows.push({ case: `tcp, +${values.idle} idle connections`, tcpLines: tcpLines(), ...(await measure('tcp', tcpPeer.socket, tcpPeer.pid)) });
await closeIdle();

for (const r of rows)
  console.log(`${r.case.padEnd(32)} /proc/net/tcp{,6} lines ${String(r.tcpLines).padStart(6)}   median ${r.median.toFixed(3)} ms   p99 ${r.p99.toFixed(3)} ms`);
unixPeer.socket.destroy();
tcpPeer.socket.destroy();
unixListener.close();
tcpListener.close();
children.forEach((pid) => kill(pid));
fs.rmSync(dir, { recursive: true, force: true });
