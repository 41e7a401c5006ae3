// The smoke cases over every relay (pipes, unix, tcp): a real rrts, real php workers, real HTTP over loopback.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { alive, freePort, startRrts, type Mode, type Relay, type RrtsInstance } from './harness.js';
import { bigBody, request, sha256 } from './client.js';

// Exec mode over each relay; fork mode always uses its private unix socket.
const CASES: Array<{ mode: Mode; relay: Relay }> = [
  { mode: 'exec', relay: 'pipes' },
  { mode: 'exec', relay: 'unix' },
  { mode: 'exec', relay: 'tcp' },
  { mode: 'fork', relay: 'pipes' },
];

for (const { mode, relay } of CASES) {
  describe(mode === 'fork' ? 'smoke in fork mode' : `smoke over ${relay}`, () => {
    let rr: RrtsInstance;
    let rpcListen = '';
    before(async () => {
      rpcListen = `tcp://127.0.0.1:${await freePort()}`;
      rr = await startRrts({ mode, relay, workers: 2, config: { rpc: { listen: rpcListen } } });
    });
    after(async () => {
      await rr?.stop();
    });

    it('GET answers from a php worker', async () => {
      const r = await request(`${rr.url}/hello`);
      assert.equal(r.status, 200);
      assert.match(r.body.toString(), /^hello from \d+$/);
      assert.equal(r.headers['content-type'], 'text/plain');
      const pid = Number(r.body.toString().split(' ').pop());
      assert.ok(rr.workerPids().includes(pid), `pid ${pid} is one of rrts's workers`);
    });

    it('HEAD has headers and no body', async () => {
      const r = await request(`${rr.url}/hello`, { method: 'HEAD' });
      assert.equal(r.status, 200);
      assert.equal(r.body.length, 0);
    });

    it('passes query arrays, repeated headers and cookies in the context', async () => {
      const r = await request(`${rr.url}/echo?b[]=1&b[]=2&x=y`, {
        headers: { 'X-Repeat': ['one', 'two'], Cookie: 'sid=abc; theme=dark%20blue' },
      });
      assert.equal(r.status, 200);
      const echo = JSON.parse(r.body.toString());
      assert.equal(echo.ctx.rawQuery, 'b[]=1&b[]=2&x=y');
      assert.deepEqual(echo.ctx.headers['X-Repeat'], ['one', 'two']);
      assert.equal(echo.ctx.headers.Host, undefined);
      assert.deepEqual(echo.ctx.cookies, { sid: 'abc', theme: 'dark blue' });
      assert.equal(echo.ctx.method, 'GET');
      assert.equal(echo.ctx.protocol, 'HTTP/1.1');
      assert.equal(echo.ctx.uri, `http://127.0.0.1:${rr.port}/echo?b[]=1&b[]=2&x=y`);
      assert.equal(echo.ctx.remoteAddr, '127.0.0.1');
    });

    it('gives the worker RR_MODE, RR_RELAY, RR_RPC and server.env', async () => {
      const r = await request(`${rr.url}/env`);
      const env = JSON.parse(r.body.toString());
      assert.equal(env.server.RR_MODE, 'http');
      assert.equal(env.server.RR_RPC, rpcListen);
      assert.ok(env.server.RR_VERSION);
      // a fork worker is handed two pipes on its relay connection (docs/protocol.md §2.3)
      if (mode === 'fork') assert.match(env.server.RR_RELAY, /^pipes:\/\/fd\/\d+:fd\/\d+$/);
      else if (relay === 'pipes') assert.equal(env.server.RR_RELAY, 'pipes');
      else assert.ok(env.server.RR_RELAY.startsWith(`${relay}://`));
      assert.equal(env.env.APP_FLAVOR, 'blue');
    });

    it('parses an urlencoded form into the tree', async () => {
      const r = await request(`${rr.url}/echo`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: 'name=John&tags[]=a&tags[]=b&user[role]=admin',
      });
      const echo = JSON.parse(r.body.toString());
      assert.equal(echo.ctx.parsed, true);
      assert.deepEqual(echo.parsed, { name: 'John', tags: ['a', 'b'], user: { role: 'admin' } });
    });

    it('sends multi-value response headers and 204 without a body', async () => {
      const h = await request(`${rr.url}/headers`);
      assert.deepEqual(h.headers['set-cookie'], ['a=1', 'b=2', 'c=3']);
      const multi = h.rawHeaders.filter((_, i) => i % 2 === 0 && h.rawHeaders[i]!.toLowerCase() === 'x-multi').length;
      assert.equal(multi, 2);
      const n = await request(`${rr.url}/status?code=204`);
      assert.equal(n.status, 204);
      assert.equal(n.body.length, 0);
    });

    it('carries a 5 MiB response intact (larger than any pipe or socket buffer)', async () => {
      const size = 5 * 1024 * 1024;
      const r = await request(`${rr.url}/big?size=${size}`);
      assert.equal(r.status, 200);
      assert.equal(sha256(r.body), sha256(bigBody(size)));
    });

    it('stops with SIGTERM: exit 0 and no php process left', async () => {
      const pids = [...rr.workerPids(), ...rr.masterPids(), ...rr.rootPids()];
      assert.equal(pids.length, mode === 'fork' ? 4 : 2); // fork: 2 workers, the master and the root
      const exit = await rr.stop();
      assert.equal(exit.code, 0);
      for (const pid of pids) assert.equal(alive(pid), false, `worker ${pid} is gone`);
    });
  });
}
