// The pool with real workers: crashes, soft errors, restart requests, max_jobs, the supervisor, garbage on stdout.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { MODES, startRrts, sleep, type RrtsInstance } from './harness.js';
import { request } from './client.js';

for (const mode of MODES) {
  describe(`pool recovery (${mode})`, () => {
    let rr: RrtsInstance;
    before(async () => {
      rr = await startRrts({ mode, workers: 4 });
    });
    after(async () => {
      await rr?.stop();
    });

    it('a worker that exits mid-request gives that request a 500, then 20 requests succeed on 4 workers', async () => {
      const r = await request(`${rr.url}/exit?code=1`);
      assert.equal(r.status, 500);
      for (let i = 0; i < 20; i++) assert.equal((await request(`${rr.url}/hello`)).status, 200);
      await rr.waitForWorkers(4);
    });

    it('Worker::error() gives 500 and keeps the worker', async () => {
      const before = rr.workerPids();
      const r = await request(`${rr.url}/error`);
      assert.equal(r.status, 500);
      assert.equal(r.body.length, 0);
      await sleep(200);
      assert.deepEqual(rr.workerPids(), before);
      assert.ok(rr.logs().some((l) => String(l.msg).includes('boom from')));
    });

    it('Worker::stop() hands the request to another worker', async () => {
      const flag = path.join(rr.dir, 'stopped-once');
      const r = await request(`${rr.url}/stop?once=${encodeURIComponent(flag)}`);
      assert.equal(r.status, 200);
      const stoppedPid = fs.readFileSync(flag, 'utf8');
      assert.match(r.body.toString(), /^answered by \d+$/);
      assert.notEqual(r.body.toString().split(' ').pop(), stoppedPid);
      await rr.waitForWorkers(4);
    });

    if (mode === 'fork') {
      // Fork workers talk over a socket: their stdout is not the protocol, only a log line.
      it('output on stdout is logged and the request still succeeds', async () => {
        const r = await request(`${rr.url}/garbage`);
        assert.equal(r.status, 200);
        await rr.waitFor(() => rr.logs().some((l) => String(l.msg).includes('not a goridge frame')), 'the stdout line in the log', 5000);
      });
      return;
    }
    it('garbage on stdout: that request 500, the worker replaced, its pid in the log, still serving', async () => {
      const r = await request(`${rr.url}/garbage`);
      assert.equal(r.status, 500);
      // rrts's log reaches the test through a pipe, which may deliver the line after the 500.
      const quotesGarbage = (l: { msg?: unknown }): boolean => typeof l.msg === 'string' && l.msg.includes('not a goridge frame');
      await rr.waitFor(() => rr.logs().some(quotesGarbage), 'a log line that quotes the garbage', 5000);
      const line = rr.logs().find(quotesGarbage)!;
      assert.ok(typeof line.pid === 'number' || /\d+/.test(String(line.msg)), 'the log line names the pid');
      await rr.waitForWorkers(4);
      for (let i = 0; i < 5; i++) assert.equal((await request(`${rr.url}/hello`)).status, 200);
    });
  });
}

for (const mode of MODES) {
  describe(`max_jobs (${mode})`, () => {
    let rr: RrtsInstance;
    before(async () => {
      rr = await startRrts({ mode, workers: 1, config: { http: { pool: { max_jobs: 3 } } } });
    });
    after(async () => {
      await rr?.stop();
    });

    it('recycles a worker after 3 jobs', async () => {
      const pids: string[] = [];
      for (let i = 0; i < 9; i++) pids.push((await request(`${rr.url}/pid`)).body.toString());
      assert.deepEqual(pids.slice(0, 3), [pids[0], pids[0], pids[0]]);
      assert.notEqual(pids[3], pids[0]);
      assert.equal(new Set(pids).size, 3);
    });
  });
}

for (const mode of MODES) {
  describe(`supervisor (${mode})`, () => {
    let rr: RrtsInstance;
    before(async () => {
      rr = await startRrts({ mode, workers: 1, config: { http: { pool: { supervisor: { watch_tick: '100ms', exec_ttl: '1s', max_worker_memory: 20 } } } } });
    });
    after(async () => {
      await rr?.stop();
    });

    it('exec_ttl kills a slow request', async () => {
      const [pid] = rr.workerPids();
      const r = await request(`${rr.url}/sleep?ms=5000`);
      assert.equal(r.status, 500);
      assert.ok(r.totalMs < 4000, `answered after ${r.totalMs} ms`);
      const [next] = await rr.waitForWorkers(1);
      assert.notEqual(next, pid);
    });

    it('max_worker_memory replaces a leaking worker', async () => {
      const [pid] = await rr.waitForWorkers(1);
      const r = await request(`${rr.url}/leak?mb=40`);
      assert.equal(r.status, 200);
      await rr.waitFor(() => rr.workerPids().length === 1 && rr.workerPids()[0] !== pid, 'the leaking worker to be replaced', 10_000);
      assert.equal((await request(`${rr.url}/hello`)).status, 200);
    });
  });
}
