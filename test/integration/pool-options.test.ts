// Pool options with real workers: max_queue_size, allocate_timeout for requests, pool.debug, on_init,
// and a client that goes away in the middle of a streamed response.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { MODES, startRrts, sleep } from './harness.js';
import { request } from './client.js';

for (const mode of MODES) {
  describe(`pool options (${mode})`, () => {
    it('max_queue_size refuses at once what does not fit', async () => {
      const rr = await startRrts({ mode, workers: 1, config: { http: { pool: { max_queue_size: 2 } } } });
      try {
        const first = request(`${rr.url}/sleep?ms=800`);
        const second = request(`${rr.url}/sleep?ms=10`);
        await sleep(100);
        const third = await request(`${rr.url}/hello`);
        assert.equal(third.status, 500);
        assert.ok(third.totalMs < 500, `refused after ${third.totalMs} ms`);
        assert.equal((await first).status, 200);
        assert.equal((await second).status, 200);
        assert.ok(rr.logs().some((l) => String(l.msg).includes('max queue size reached')));
      } finally {
        await rr.stop();
      }
    });

    it('a request that waits longer than allocate_timeout for a worker gets the internal error code', async () => {
      const rr = await startRrts({ mode, workers: 1, config: { http: { internal_error_code: 503, pool: { allocate_timeout: '400ms' } } } });
      try {
        const busy = request(`${rr.url}/sleep?ms=1500`);
        await sleep(100);
        const waited = await request(`${rr.url}/hello`);
        assert.equal(waited.status, 503);
        assert.ok(waited.totalMs >= 350 && waited.totalMs < 1400, `answered after ${waited.totalMs} ms`);
        assert.equal((await busy).status, 200);
      } finally {
        await rr.stop();
      }
    });

    it('pool.debug starts a fresh worker for every request and shows the error text', async () => {
      const rr = await startRrts({ mode, workers: 2, config: { http: { pool: { debug: true } } } });
      try {
        if (mode === 'fork') await rr.waitFor(() => rr.sparePids().length === 1, 'the parked spare'); // not a worker
        assert.equal(rr.workerPids().length, 0);
        const a = (await request(`${rr.url}/pid`)).body.toString();
        const b = (await request(`${rr.url}/pid`)).body.toString();
        assert.notEqual(a, b);
        const err = await request(`${rr.url}/error`);
        assert.equal(err.status, 500);
        assert.match(err.body.toString(), /boom from/);
      } finally {
        await rr.stop();
      }
    });

    it('server.on_init runs once before the workers, with its env', async () => {
      const marker = path.join(fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'rrts-init-')), 'ran');
      const rr = await startRrts({
        mode,
        workers: 1,
        config: {
          server: {
            on_init: { command: ['php', '-r', `file_put_contents(${JSON.stringify(marker)}, getenv('INIT_VAR'));`], env: { init_var: 'from-on-init' } },
          },
        },
      });
      try {
        assert.equal(fs.readFileSync(marker, 'utf8'), 'from-on-init');
      } finally {
        await rr.stop();
        fs.rmSync(path.dirname(marker), { recursive: true, force: true });
      }
    });

    it('a client leaving mid-stream stops the stream; the worker serves the next request', async () => {
      const rr = await startRrts({ mode, workers: 1 });
      try {
        const [pid] = rr.workerPids();
        await new Promise<void>((resolve, reject) => {
          const req = http.get(`${rr.url}/stream?chunks=200&delay_ms=20`, (res) => {
            res.once('data', () => {
              req.destroy();
              resolve();
            });
          });
          req.on('error', (err) => (err.message.includes('socket hang up') || err.message.includes('aborted') ? resolve() : reject(err)));
        });
        const next = await request(`${rr.url}/hello`, { timeoutMs: 5000 });
        assert.equal(next.status, 200);
        assert.ok(next.totalMs < 2000, `the next request waited ${next.totalMs} ms (the stream would have run 4 s)`);
        assert.deepEqual(rr.workerPids(), [pid]);
      } finally {
        await rr.stop();
      }
    });
  });
}
