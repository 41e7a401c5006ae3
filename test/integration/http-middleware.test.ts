// http.middleware end to end: headers and CORS (preflight answered without a worker), gzip negotiation, static
// files (ETag, 304, ranges, escapes refused), and proxy_ip_parser for trusted and untrusted peers.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { startRrts, type RrtsInstance } from './harness.js';
import { request } from './client.js';

/** A raw HTTP/1.1 GET with the target exactly as given (clients normalise `..`). */
function rawGet(port: number, target: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
}

function fromAddress(url: string, localAddress: string, headers: http.OutgoingHttpHeaders): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { localAddress, headers }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
  });
}

describe('http.middleware', () => {
  let rr: RrtsInstance;
  let root: string;
  let publicDir: string;
  const bigText = 'static text that compresses well. '.repeat(200);
  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-static-'));
    publicDir = path.join(root, 'public');
    fs.mkdirSync(publicDir);
    fs.writeFileSync(path.join(root, 'secret.txt'), 'top secret');
    fs.writeFileSync(path.join(publicDir, 'hello.txt'), '0123456789abcdefghij');
    fs.writeFileSync(path.join(publicDir, 'big.txt'), bigText);
    fs.writeFileSync(path.join(publicDir, 'index.php'), '<?php echo "source";');
    for (const name of ['data.csv', 'song.mp3', 'photo.avif', 'app.js.map', 'site.webmanifest', 'page.HTML']) {
      fs.writeFileSync(path.join(publicDir, name), 'x');
    }
    fs.symlinkSync(path.join(root, 'secret.txt'), path.join(publicDir, 'link.txt'));
    rr = await startRrts({
      workers: 1,
      config: {
        http: {
          // last listed is outermost: proxy_ip_parser, then headers (CORS), gzip, static
          middleware: ['static', 'gzip', 'headers', 'proxy_ip_parser', 'sendfile_unknown'],
          trusted_subnets: ['127.0.0.1/32'],
          static: { dir: publicDir, forbid: ['.php'], calculate_etag: true, response: { 'X-Static': 'yes' } },
          headers: {
            request: { 'X-Added-Request': 'req-value' },
            response: { 'X-Added-Response': 'res-value' },
            cors: {
              allowed_origin: 'https://app.example, https://*.trusted.example',
              allowed_headers: 'Content-Type, X-Token',
              allowed_methods: 'GET, POST, PUT',
              allow_credentials: true,
              exposed_headers: 'X-Total',
              max_age: 600,
            },
          },
        },
      },
    });
  });
  after(async () => {
    await rr?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('warns once about an unknown middleware name', () => {
    const warnings = rr.stderr.split('\n').filter((l) => l.includes('sendfile_unknown'));
    assert.equal(warnings.length, 1, rr.stderr);
  });

  describe('headers', () => {
    it('adds http.headers.request to the request and http.headers.response to the response', async () => {
      const r = await request(`${rr.url}/echo`);
      assert.equal(r.headers['x-added-response'], 'res-value');
      const echo = JSON.parse(r.body.toString());
      assert.deepEqual(echo.ctx.headers['X-Added-Request'], ['req-value']);
    });

    it('answers a CORS preflight without a worker', async () => {
      const before = (await request(`${rr.url}/count`)).body.toString();
      const r = await request(`${rr.url}/anything`, {
        method: 'OPTIONS',
        headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'PUT', 'Access-Control-Request-Headers': 'content-type,x-token' },
      });
      assert.equal(r.status, 200);
      assert.equal(r.headers.vary, 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers');
      assert.equal(r.headers['access-control-allow-origin'], 'https://app.example');
      assert.equal(r.headers['access-control-allow-methods'], 'PUT', 'the method asked for, as rs/cors answers');
      assert.equal(r.headers['access-control-allow-headers'], 'content-type,x-token', 'the headers asked for');
      assert.equal(r.headers['access-control-allow-credentials'], 'true');
      assert.equal(r.headers['access-control-max-age'], '600');
      const afterCount = (await request(`${rr.url}/count`)).body.toString();
      assert.equal(Number(afterCount), Number(before) + 1, 'only the /count requests reached PHP');
    });

    it('refuses a preflight whose method or headers are not allowed, still with 200 and Vary', async () => {
      const preflight = (headers: Record<string, string>) =>
        request(`${rr.url}/anything`, { method: 'OPTIONS', headers: { Origin: 'https://app.example', ...headers } });
      const refused: Array<Record<string, string>> = [
        { 'Access-Control-Request-Method': 'DELETE' },
        { 'Access-Control-Request-Method': 'PUT', 'Access-Control-Request-Headers': 'x-token,content-type' }, // not sorted
        { 'Access-Control-Request-Method': 'PUT', 'Access-Control-Request-Headers': 'x-other' },
      ];
      for (const headers of refused) {
        const r = await preflight(headers);
        assert.equal(r.status, 200, JSON.stringify(headers));
        assert.equal(r.headers['access-control-allow-origin'], undefined, JSON.stringify(headers));
        assert.equal(r.headers.vary, 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers');
      }
    });

    it('adds CORS headers to actual requests from allowed origins only', async () => {
      const byWildcard = await request(`${rr.url}/hello`, { headers: { Origin: 'https://shop.trusted.example' } });
      assert.equal(byWildcard.headers['access-control-allow-origin'], 'https://shop.trusted.example');
      assert.equal(byWildcard.headers['access-control-expose-headers'], 'X-Total');
      assert.equal(byWildcard.headers['access-control-allow-credentials'], 'true');
      const stranger = await request(`${rr.url}/hello`, { headers: { Origin: 'https://evil.example' } });
      assert.equal(stranger.headers['access-control-allow-origin'], undefined);
      assert.match(String(stranger.headers.vary), /^Origin(, |$)/);
      assert.equal(stranger.status, 200);
      const noOrigin = await request(`${rr.url}/hello`);
      assert.match(String(noOrigin.headers.vary), /^Origin(, |$)/, 'rs/cors sets Vary on every request');
    });
  });

  describe('gzip', () => {
    it('compresses when the client accepts gzip', async () => {
      const r = await request(`${rr.url}/big?size=20000`, { headers: { 'Accept-Encoding': 'gzip, deflate' } });
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-encoding'], 'gzip');
      assert.match(String(r.headers.vary), /Accept-Encoding/);
      assert.ok(r.body.length < 20000);
      assert.equal(zlib.gunzipSync(r.body).toString(), '0123456789abcdef'.repeat(1250));
    });

    it('sends identity when the client does not accept gzip', async () => {
      const r = await request(`${rr.url}/big?size=20000`);
      assert.equal(r.headers['content-encoding'], undefined);
      assert.equal(r.body.length, 20000);
      assert.match(String(r.headers.vary), /Accept-Encoding/);
    });

    it('leaves tiny bodies and 204 alone', async () => {
      const tiny = await request(`${rr.url}/hello`, { headers: { 'Accept-Encoding': 'gzip' } });
      assert.equal(tiny.headers['content-encoding'], undefined);
      assert.match(tiny.body.toString(), /^hello from/);
      const empty = await request(`${rr.url}/status?code=204`, { headers: { 'Accept-Encoding': 'gzip' } });
      assert.equal(empty.status, 204);
      assert.equal(empty.headers['content-encoding'], undefined);
    });

    it('compresses a streamed answer chunk by chunk', async () => {
      const r = await request(`${rr.url}/stream?chunks=3&delay_ms=50`, { headers: { 'Accept-Encoding': 'gzip' } });
      assert.equal(r.headers['content-encoding'], 'gzip');
      assert.equal(zlib.gunzipSync(r.body).toString(), 'chunk 0\nchunk 1\nchunk 2\n');
    });

    it('compresses static files too', async () => {
      const r = await request(`${rr.url}/big.txt`, { headers: { 'Accept-Encoding': 'gzip' } });
      assert.equal(r.headers['content-encoding'], 'gzip');
      assert.equal(zlib.gunzipSync(r.body).toString(), bigText);
    });
  });

  describe('static', () => {
    it('serves a file with ETag, Last-Modified and the configured response headers', async () => {
      const r = await request(`${rr.url}/hello.txt`);
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), '0123456789abcdefghij');
      assert.match(String(r.headers.etag), /^"[^"]+"$/);
      assert.ok(r.headers['last-modified']);
      assert.equal(r.headers['x-static'], 'yes');
      assert.match(String(r.headers['content-type']), /text\/plain/);
    });

    it("names the type of common files as Go does, from mime-types beyond Go's own table", async () => {
      const expected: Record<string, string> = {
        'data.csv': 'text/csv; charset=utf-8',
        'song.mp3': 'audio/mpeg',
        'photo.avif': 'image/avif',
        'app.js.map': 'application/json; charset=utf-8',
        'site.webmanifest': 'application/manifest+json; charset=utf-8',
        'page.HTML': 'text/html; charset=utf-8',
      };
      for (const [name, type] of Object.entries(expected)) {
        const r = await request(`${rr.url}/${name}`);
        assert.equal(r.status, 200, name);
        assert.equal(r.headers['content-type'], type, name);
      }
    });

    it('answers 304 to a matching If-None-Match', async () => {
      const first = await request(`${rr.url}/hello.txt`);
      const r = await request(`${rr.url}/hello.txt`, { headers: { 'If-None-Match': String(first.headers.etag) } });
      assert.equal(r.status, 304);
      assert.equal(r.body.length, 0);
    });

    it('serves byte ranges (206) and refuses unsatisfiable ones (416)', async () => {
      const r = await request(`${rr.url}/hello.txt`, { headers: { Range: 'bytes=2-5' } });
      assert.equal(r.status, 206);
      assert.equal(r.body.toString(), '2345');
      assert.equal(r.headers['content-range'], 'bytes 2-5/20');
      const suffix = await request(`${rr.url}/hello.txt`, { headers: { Range: 'bytes=-3' } });
      assert.equal(suffix.body.toString(), 'hij');
      const bad = await request(`${rr.url}/hello.txt`, { headers: { Range: 'bytes=100-' } });
      assert.equal(bad.status, 416);
      assert.equal(bad.headers['content-range'], 'bytes */20');
    });

    it('HEAD gets the headers without the body', async () => {
      const r = await request(`${rr.url}/hello.txt`, { method: 'HEAD' });
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-length'], '20');
      assert.equal(r.body.length, 0);
    });

    it('never serves outside dir: ../, encoded ../ and symlinks out are refused', async () => {
      for (const target of ['/../secret.txt', '/%2e%2e/secret.txt', '/..%2fsecret.txt', '/link.txt']) {
        const text = await rawGet(rr.port, target);
        assert.doesNotMatch(text, /top secret/, target);
        assert.match(text, /^HTTP\/1\.1 403/, `${target}: ${text.slice(0, 80)}`);
      }
    });

    it('passes missing files, directories and forbidden extensions to PHP', async () => {
      const missing = await request(`${rr.url}/nope.txt`);
      assert.equal(missing.status, 404);
      assert.equal(missing.body.toString(), 'not found'); // the PHP fixture's 404
      const php = await request(`${rr.url}/index.php`);
      assert.equal(php.body.toString(), 'not found');
      const post = await request(`${rr.url}/hello.txt`, { method: 'POST', body: 'x' });
      assert.equal(post.body.toString(), 'not found');
    });
  });

  describe('proxy_ip_parser', () => {
    it('takes the client IP from a trusted peer', async () => {
      const xff = await request(`${rr.url}/echo`, { headers: { 'X-Forwarded-For': '203.0.113.9, 198.51.100.7' } });
      assert.equal(JSON.parse(xff.body.toString()).ctx.remoteAddr, '198.51.100.7', 'right-most untrusted');
      const chain = await request(`${rr.url}/echo`, { headers: { 'X-Forwarded-For': '203.0.113.9, 127.0.0.1' } });
      assert.equal(JSON.parse(chain.body.toString()).ctx.remoteAddr, '203.0.113.9', 'trusted hops are skipped');
      const fwd = await request(`${rr.url}/echo`, { headers: { Forwarded: 'for="[2001:db8::1]:4711";proto=https' } });
      assert.equal(JSON.parse(fwd.body.toString()).ctx.remoteAddr, '2001:db8::1');
      const real = await request(`${rr.url}/echo`, { headers: { 'X-Real-Ip': '192.0.2.44' } });
      assert.equal(JSON.parse(real.body.toString()).ctx.remoteAddr, '192.0.2.44');
      const cf = await request(`${rr.url}/echo`, { headers: { 'Cf-Connecting-Ip': '192.0.2.45' } });
      assert.equal(JSON.parse(cf.body.toString()).ctx.remoteAddr, '192.0.2.45');
    });

    it('ignores the headers of an untrusted peer', async () => {
      const r = await fromAddress(`${rr.url}/echo`, '127.0.0.2', { 'X-Forwarded-For': '203.0.113.9', 'X-Real-Ip': '192.0.2.44' });
      assert.equal(r.status, 200);
      assert.equal(JSON.parse(r.body).ctx.remoteAddr, '127.0.0.2');
    });
  });
});

// RoadRunner's own CORS tests (headers plugin, tests/configs/.rr-cors-headers*.yaml), with their configs and answers.
for (const [name, origin] of [
  ['allowed_origin: "*"', { allowed_origin: '*' }],
  ['allowed_origin_regex', { allowed_origin_regex: '^http?://(localhost|127\\.0\\.0\\.1)(:[0-9]+)?$' }],
] as const) {
  describe(`CORS as RoadRunner's tests check it (${name})`, () => {
    let rr: RrtsInstance;
    const expectedOrigin = 'allowed_origin' in origin ? '*' : 'http://127.0.0.1:10';
    before(async () => {
      rr = await startRrts({
        config: {
          http: {
            middleware: ['headers'],
            headers: {
              cors: {
                ...origin,
                allowed_headers: '*',
                allowed_methods: 'GET,POST,PUT,DELETE',
                allow_credentials: true,
                exposed_headers: 'Cache-Control,Content-Language,Content-Type,Expires,Last-Modified,Pragma',
                debug: true,
                max_age: 600,
              },
            },
          },
        },
      });
    });
    after(async () => {
      await rr?.stop();
    });

    it('preflight', async () => {
      const r = await request(`${rr.url}/`, {
        method: 'OPTIONS',
        headers: { 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': 'origin, x-requested-with', Origin: 'http://127.0.0.1:10' },
      });
      assert.equal(r.status, 200);
      assert.equal(r.headers['access-control-allow-credentials'], 'true');
      assert.equal(r.headers['access-control-allow-headers'], 'origin, x-requested-with');
      assert.equal(r.headers['access-control-allow-methods'], 'GET');
      assert.equal(r.headers['access-control-allow-origin'], expectedOrigin, '"*" stays "*" with credentials, as rs/cors sends it');
      assert.equal(r.headers['access-control-max-age'], '600');
    });

    it('actual request', async () => {
      const r = await request(`${rr.url}/hello`, { headers: { Origin: 'http://127.0.0.1:10' } });
      assert.equal(r.status, 200);
      assert.equal(r.headers['access-control-allow-credentials'], 'true');
      assert.equal(r.headers['access-control-allow-origin'], expectedOrigin);
      assert.equal(r.headers['access-control-expose-headers'], 'Cache-Control, Content-Language, Content-Type, Expires, Last-Modified, Pragma');
    });
  });
}

describe('http.static start-up', () => {
  it('fails when static.dir does not exist', async () => {
    const rr = await startRrts({ expectFailure: true, config: { http: { middleware: ['static'], static: { dir: '/nonexistent/rrts-static' } } } });
    const exit = await rr.exited;
    await rr.stop();
    assert.notEqual(exit.code, 0);
    assert.match(rr.stderr, /http\.static\.dir/);
  });

  it('fails when static.dir does not exist even if static is not in the middleware list, as RoadRunner does', async () => {
    const rr = await startRrts({ expectFailure: true, config: { http: { middleware: ['headers'], static: { dir: '/nonexistent/rrts-static' } } } });
    const exit = await rr.exited;
    await rr.stop();
    assert.notEqual(exit.code, 0);
    assert.match(rr.stderr, /http\.static\.dir.*does not exist/);
  });

  it('static listed without an http.static section: a warning, and the working directory is not served', async () => {
    const rr = await startRrts({ config: { http: { middleware: ['static'] } } });
    try {
      assert.match(rr.stderr, /static is listed but there is no http\.static section/);
      const r = await request(`${rr.url}/.rr.yaml`);
      assert.doesNotMatch(r.body.toString(), /version/, 'the config file next to the worker is not served');
    } finally {
      await rr.stop();
    }
  });
});
