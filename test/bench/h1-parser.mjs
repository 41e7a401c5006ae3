// Parse CPU per request of the HTTP/1 request parsers rrts could use, side by side in one run: Node's own llhttp
// (through the undocumented `_http_common` module), http-parser-js (pure JS; measured when installed, or from
// --http-parser-js DIR), and rrts's src/http/h1/parser.ts. Each run parses the same requests and makes the same
// strings (method, target, header names and values) and reads the same body bytes. Needs `npm run build`.
//
//   node test/bench/h1-parser.mjs [--rounds 5] [--requests 200000] [--http-parser-js DIR]
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i === -1 ? fallback : args[i + 1];
};
const ROUNDS = Number(option('--rounds', 5));
const REQUESTS = Number(option('--requests', 200000));

const { H1Parser } = await import(path.join(here, '../../dist/src/http/h1/parser.js'));

// A browser's GET: 10 header lines, ~450 bytes in all.
const BROWSER_GET =
  'GET /products/42?ref=home&sort=price HTTP/1.1\r\n' +
  'Host: shop.example.com\r\n' +
  'User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n' +
  'Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n' +
  'Accept-Language: en-US,en;q=0.9\r\n' +
  'Accept-Encoding: gzip, deflate, br\r\n' +
  'Connection: keep-alive\r\n' +
  'Cookie: session=8f2a9c1e77b04d3c; theme=dark\r\n' +
  'Upgrade-Insecure-Requests: 1\r\n' +
  'Referer: https://shop.example.com/\r\n' +
  'Cache-Control: max-age=0\r\n' +
  '\r\n';
// wrk's default request.
const WRK_GET = 'GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n';
const FORM = 'name=rrts&kind=server&lang=typescript&body=' + 'x'.repeat(60);
const FORM_POST =
  'POST /submit HTTP/1.1\r\nHost: shop.example.com\r\nContent-Type: application/x-www-form-urlencoded\r\n' +
  `Content-Length: ${FORM.length}\r\nAccept: */*\r\n\r\n${FORM}`;
const CHUNKED_POST =
  'POST /upload HTTP/1.1\r\nHost: shop.example.com\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n' +
  '20\r\n' +
  'a'.repeat(32) +
  '\r\n40;ext=1\r\n' +
  'b'.repeat(64) +
  '\r\n0\r\n\r\n';

const CASES = [
  ['browser GET (450 B)', BROWSER_GET],
  ['wrk GET', WRK_GET],
  ['form POST (CL)', FORM_POST],
  ['chunked POST', CHUNKED_POST],
];

let sink = 0;

/** The rrts parser: one instance per connection, fed one read per request. */
function rrtsRunner() {
  const parser = new H1Parser({
    onRequest(head) {
      sink += head.method.length + head.target.length + head.rawHeaders.length;
      for (const s of head.rawHeaders) sink += s.length;
    },
    onBody(chunk) {
      sink += chunk.length;
    },
    onRequestEnd() {
      sink++;
    },
    onError(error) {
      throw error;
    },
  });
  return (buf) => parser.execute(buf);
}

/** A binding-style HTTPParser (llhttp's, or http-parser-js's drop-in): node:http's own use of it, minus streams. */
function bindingRunner(HTTPParser, initialize) {
  const parser = new HTTPParser();
  initialize(parser);
  const methods = HTTPParser.methods ?? require('node:http').METHODS;
  parser[HTTPParser.kOnHeaders] = (headers, url) => {
    // Only called for heads of more than 32 lines; none here.
    sink += headers.length + url.length;
  };
  parser[HTTPParser.kOnHeadersComplete] = (major, minor, headers, method, url) => {
    sink += methods[method].length + url.length + headers.length;
    for (const s of headers) sink += s.length;
    return 0;
  };
  parser[HTTPParser.kOnBody] = (buf, start, len) => {
    // llhttp passes a view; http-parser-js (buf, start, len).
    sink += len ?? buf.length;
  };
  parser[HTTPParser.kOnMessageComplete] = () => {
    sink++;
  };
  parser[HTTPParser.kOnExecute] = () => {};
  return (buf) => {
    const r = parser.execute(buf);
    if (r instanceof Error) throw r;
  };
}

const runners = [];
const { HTTPParser: LlHttp } = require('_http_common');
runners.push(['llhttp (node:_http_common)', () => bindingRunner(LlHttp, (p) => p.initialize(LlHttp.REQUEST, {}, 0, LlHttp.kLenientNone ?? 0))]);
const hpjsDir = option('--http-parser-js', undefined);
let hpjs;
try {
  hpjs = hpjsDir ? require(path.resolve(hpjsDir)) : require('http-parser-js');
} catch {
  hpjs = undefined;
}
if (hpjs) runners.push(['http-parser-js', () => bindingRunner(hpjs.HTTPParser, (p) => p.initialize(hpjs.HTTPParser.REQUEST, {}))]);
runners.push(['rrts h1/parser.ts', () => rrtsRunner()]);

function cpuMicros() {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** µs of CPU per request: REQUESTS requests, each its own read (a fresh Buffer, as the socket gives). */
function measure(makeRunner, request) {
  const run = makeRunner();
  const bufs = Array.from({ length: 64 }, () => Buffer.from(request, 'latin1'));
  for (let i = 0; i < 20000; i++) run(bufs[i & 63]);
  const t0 = cpuMicros();
  for (let i = 0; i < REQUESTS; i++) run(bufs[i & 63]);
  return (cpuMicros() - t0) / REQUESTS;
}

const results = new Map();
for (let round = 0; round < ROUNDS; round++) {
  for (const [caseName, request] of CASES) {
    // Alternate the order each round so no parser always runs on a warmer or cooler machine.
    const order = round % 2 === 0 ? runners : [...runners].reverse();
    for (const [name, make] of order) {
      const key = `${caseName}\0${name}`;
      if (!results.has(key)) results.set(key, []);
      results.get(key).push(measure(make, request));
    }
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`node ${process.version}, ${ROUNDS} rounds x ${REQUESTS} requests; median µs of CPU per request (ratio to llhttp)`);
const header = ['request', ...runners.map(([n]) => n)];
console.log(header.join(' | '));
for (const [caseName] of CASES) {
  const base = median(results.get(`${caseName}\0${runners[0][0]}`));
  const row = [caseName];
  for (const [name] of runners) {
    const m = median(results.get(`${caseName}\0${name}`));
    row.push(`${m.toFixed(3)} (${(m / base).toFixed(2)}x)`);
  }
  console.log(row.join(' | '));
}
if (!hpjs) console.log('(http-parser-js not installed: pass --http-parser-js DIR to include it)');
if (sink === 0) console.log('');
