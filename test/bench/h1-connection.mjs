// CPU per request of rrts's own HTTP/1.1 front (src/http/h1/connection.ts: H1Front, H1Request, H1Response, as the
// HTTP plugin uses them) against node:http, both serving the same trivial in-process answer, and nginx answering the same bytes with `return 200` (when
// installed), loaded by wrk in turns. CPU: this process's own for the two node servers (it hosts them, wrk runs
// apart), nginx's master and worker from /proc; divided by the requests wrk completed. Needs `npm run build`, wrk.
// `--rrts-root DIR` also serves with the H1Front of another built checkout (e.g. the previous commit), in this same
// process and in turns with the others: a side-by-side figure for a change of the front.
//
// `--close`: every request on a connection of its own (wrk sends `Connection: close`), for what a connection's
// set-up costs (the accept, and H1Front's move of the connection into a socket read with onread).
//
//   node test/bench/h1-connection.mjs [--rounds 3] [--seconds 5] [--connections 32] [--rrts-root DIR] [--close]
import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
import { cleanup, cpuMsBetween, descendants, groupTicks, makeTempDir, startProcess, stopProcess, which } from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i === -1 ? fallback : args[i + 1];
};
const ROUNDS = Number(option('--rounds', 3));
const SECONDS = Number(option('--seconds', 5));
const CONNECTIONS = Number(option('--connections', 32));
const CLOSE = args.includes('--close');

const { H1Front } = await import(path.join(here, '../../dist/src/http/h1/connection.js'));
const otherRoot = option('--rrts-root', null);
const OtherH1Front = otherRoot === null ? null : (await import(path.join(path.resolve(otherRoot), 'dist/src/http/h1/connection.js'))).H1Front;

const BODY = Buffer.from('<!doctype html>\n<html><body><h1>Hello</h1><p>' + 'x'.repeat(150) + '</p></body></html>\n');
const TYPE = 'text/html; charset=UTF-8';

function nodeServer() {
  return http.createServer((req, res) => {
    // Read the body the way a front must before answering (none for wrk's GET).
    req.on('data', () => {});
    req.on('end', () => {
      res.writeHead(200, { 'Content-Type': TYPE, 'Content-Length': BODY.length });
      res.end(BODY);
    });
  });
}

const silentLog = { debug() {}, info() {}, warn() {}, error() {}, isLevelEnabled: () => false };

function rrtsServer(Front = H1Front) {
  const options = {
    tls: false,
    headersTimeoutMs: 300_000,
    requestTimeoutMs: 300_000,
    keepAliveTimeoutMs: 60_000,
    maxHeaderBytes: (1 << 20) + 4096,
    log: silentLog,
  };
  const front = new Front((req, res) => {
    // As the plugin does: the answer's headers one by one, then the body with the head in one write.
    const answer = () => {
      res.setHeader('Content-Type', TYPE);
      res.setHeader('Content-Length', BODY.length);
      res.end(BODY);
    };
    if (req.readableEnded) answer();
    else {
      req.on('end', answer);
      req.resume();
    }
  }, options);
  const server = net.createServer({ allowHalfOpen: true }, (socket) => front.serve(socket));
  server.closeAllConnections = () => front.closeAll();
  return server;
}

function listen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
}

function wrk(port) {
  return new Promise((resolve, reject) => {
    const close = CLOSE ? ['-H', 'Connection: close'] : [];
    const child = spawn('wrk', ['-t1', `-c${CONNECTIONS}`, `-d${SECONDS}s`, ...close, `http://127.0.0.1:${port}/`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('exit', (code) => {
      const m = /(\d+) requests in/.exec(out);
      if (code !== 0 || !m) reject(new Error(`wrk failed (exit ${code}):\n${out}`));
      else resolve({ requests: Number(m[1]), errors: /Non-2xx|Socket errors/.test(out) ? out : '' });
    });
  });
}

/** nginx (master + 1 worker) answering BODY itself; { port, cpuMs(), stop() }, or null without nginx. */
async function startNginx() {
  const bin = which('nginx');
  if (!bin) return null;
  const dir = makeTempDir('rrts-h1-nginx-');
  const probe = http.createServer();
  const port = await listen(probe);
  await new Promise((resolve) => probe.close(resolve));
  fs.writeFileSync(path.join(dir, 'body.html'), BODY);
  fs.writeFileSync(
    path.join(dir, 'nginx.conf'),
    `daemon off;\nmaster_process on;\nworker_processes 1;\npid ${dir}/nginx.pid;\nerror_log ${dir}/error.log warn;\n` +
      `events { worker_connections 1024; }\n` +
      `http {\n  access_log off;\n  keepalive_requests 1000000;\n  client_body_temp_path ${dir}/body;\n  proxy_temp_path ${dir}/proxy;\n` +
      `  fastcgi_temp_path ${dir}/fastcgi;\n  uwsgi_temp_path ${dir}/uwsgi;\n  scgi_temp_path ${dir}/scgi;\n` +
      `  server {\n    listen 127.0.0.1:${port};\n    location / { default_type "${TYPE}"; return 200 "${BODY.toString().replaceAll('\n', '\\n')}"; }\n  }\n}\n`,
  );
  const p = startProcess('nginx', bin, ['-e', `${dir}/error.log`, '-p', dir, '-c', path.join(dir, 'nginx.conf')]);
  for (let i = 0; i < 100 && descendants(p.pid).length === 0; i++) await new Promise((r) => setTimeout(r, 50));
  const pids = () => [p.pid, ...descendants(p.pid)];
  return { port, ticks: () => groupTicks(pids()), stop: () => stopProcess(p) };
}

const targets = [
  ['node:http', nodeServer()],
  ['rrts H1Front', rrtsServer()],
];
if (OtherH1Front !== null) targets.push([`H1Front of ${path.basename(path.resolve(otherRoot))}`, rrtsServer(OtherH1Front)]);
const ports = [];
for (const [, server] of targets) ports.push(await listen(server));
const nginx = await startNginx();
if (nginx) {
  targets.push(['nginx return 200', null]);
  ports.push(nginx.port);
}

const results = targets.map(() => []);
try {
  for (let round = 0; round < ROUNDS; round++) {
    const order = targets.map((_, i) => i);
    if (round % 2 === 1) order.reverse();
    for (const i of order) {
      const external = targets[i][1] === null;
      const before = external ? nginx.ticks() : process.cpuUsage();
      const { requests, errors } = await wrk(ports[i]);
      const usedUs = external ? cpuMsBetween(before, nginx.ticks()).ms * 1000 : ((u) => u.user + u.system)(process.cpuUsage(before));
      if (errors) console.error(`${targets[i][0]}: wrk reported errors:\n${errors}`);
      const perRequest = usedUs / requests;
      results[i].push({ perRequest, rps: requests / SECONDS });
      console.error(`round ${round + 1} ${targets[i][0]}: ${perRequest.toFixed(2)} µs CPU/request, ${(requests / SECONDS).toFixed(0)} req/s`);
    }
  }
} finally {
  for (const [, server] of targets) {
    if (server === null) continue;
    server.closeAllConnections?.();
    server.close();
  }
  if (nginx) await nginx.stop();
  // nginx and its temp dir, by pid, also when a round failed.
  await cleanup();
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const base = median(results[0].map((r) => r.perRequest));
console.log(
  `node ${process.version}; wrk -t1 -c${CONNECTIONS} -d${SECONDS}s${CLOSE ? ' Connection: close' : ''} x ${ROUNDS} rounds; median CPU of the serving process per request`,
);
for (let i = 0; i < targets.length; i++) {
  const m = median(results[i].map((r) => r.perRequest));
  const rps = median(results[i].map((r) => r.rps));
  console.log(`${targets[i][0].padEnd(24)} ${m.toFixed(2)} µs/request (${(m / base).toFixed(2)}x)  ${rps.toFixed(0)} req/s`);
}
