// Raw Node `http` hello server for test/bench/hello.mjs: the ceiling of a one-loop front. One process, no
// framework, the same page shape and size as php/worker.php's. Run by hello.mjs as
// `node test/bench/node-hello.mjs <port>`; it prints `listening` once it serves and stops on SIGTERM/SIGINT.
// Also imported by hello.mjs for helloPage(), the one JS copy of the page the three targets serve.
import http from 'node:http';
import { fileURLToPath } from 'node:url';

/** PHP's htmlspecialchars() with its PHP 8.1+ defaults (ENT_QUOTES | ENT_SUBSTITUTE | ENT_HTML401). */
export function htmlspecialchars(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#039;' })[c]);
}

/**
 * The hello page, byte for byte as php/worker.php prints it when name = 'rrts' and servedBy = 'PHP worker'.
 * `uri` is the absolute URL (RoadRunner puts scheme://host/path?query in the request context).
 */
export function helloPage({ name, servedBy, method, uri, pid }) {
  return (
    '<!doctype html>\n' +
    `<html><head><meta charset="utf-8"><title>Hello from ${name}</title></head>\n` +
    '<body>\n' +
    `<h1>Hello from ${name}</h1>\n` +
    `<p>${method} ${uri}</p>\n` +
    `<p>Served by ${servedBy} pid ${pid}.</p>\n` +
    '</body></html>\n'
  );
}

/** What this server says: "node"/"JS handler" keep the page exactly as long as rrts' "rrts"/"PHP worker". */
export const NODE_PAGE = { name: 'node', servedBy: 'JS handler' };

function main() {
  const port = Number(process.argv[2]);
  if (!Number.isInteger(port) || port <= 0) {
    process.stderr.write('usage: node test/bench/node-hello.mjs <port>\n');
    process.exit(2);
  }
  // Same keep-alive timeout as rrts' HTTP server, so neither closes idle benchmark connections earlier.
  const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    const body = helloPage({
      ...NODE_PAGE,
      method: htmlspecialchars(req.method ?? 'GET'),
      uri: htmlspecialchars(`http://${req.headers.host ?? 'localhost'}${req.url ?? '/'}`),
      pid: process.pid,
    });
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  });
  server.listen(port, '127.0.0.1', () => process.stdout.write(`node hello listening on 127.0.0.1:${port}\n`));
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
