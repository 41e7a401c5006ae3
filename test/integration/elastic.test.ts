// The elastic pool with real php workers, in exec and fork mode: pool.dynamic_allocator's extra workers (rrts's
// scale_on_wait and RoadRunner's rule at allocate_timeout), shown in /metrics and stopped once idle; the replacement
// of a worker past max_jobs or ttl started before it leaves; overload answered 503 with Retry-After; crash loops.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MODES, freePort, startRrts, sleep, type RrtsInstance } from './harness.js';
import { request } from './client.js';

/** One sample of the metrics text, or undefined. */
async function metric(port: number, name: string, labels = ''): Promise<number | undefined> {
  const text = (await request(`http://127.0.0.1:${port}/metrics`)).body.toString();
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

/** Sequential /rand?ms= requests until `enough` says stop (bounded): each one's pid and latency. */
async function sequential(rr: RrtsInstance, ms: number, enough: (pids: number[]) => boolean, max = 400): Promise<Array<{ pid: number; totalMs: number }>> {
  const out: Array<{ pid: number; totalMs: number }> = [];
  for (let i = 0; i < max && !enough(out.map((r) => r.pid)); i++) {
    const reply = await request(`${rr.url}/rand?ms=${ms}`);
    assert.equal(reply.status, 200, `request ${i}: ${reply.body.toString()}`);
    out.push({ pid: (JSON.parse(reply.body.toString()) as { pid: number }).pid, totalMs: reply.totalMs });
  }
  return out;
}

/** The requests served by the first worker to be replaced, and every one after. */
const distinct = (pids: number[]): number => new Set(pids).size;

for (const mode of MODES) {
  describe(`elastic pool (${mode})`, () => {
    it('scale_on_wait: a burst gets extra workers before allocate_timeout; /metrics counts them; idle ones go, num_workers stay', async () => {
      const metricsPort = await freePort();
      const rr = await startRrts({
        mode,
        workers: 1,
        config: {
          http: { pool: { allocate_timeout: '30s', dynamic_allocator: { max_workers: 3, spawn_rate: 3, idle_timeout: '1s', scale_on_wait: '10ms' } } },
          metrics: { address: `127.0.0.1:${metricsPort}` },
        },
      });
      try {
        const [original] = await rr.waitForWorkers(1);
        const burst = Array.from({ length: 4 }, () => request(`${rr.url}/rand?ms=2500`));
        // the burst runs 2.5 s: the extra workers join the pool (after their handshake) long before it ends
        let extra: number | undefined;
        for (let i = 0; i < 200 && extra !== 3; i++) {
          extra = await metric(metricsPort, 'rrts_dynamic_workers', '{pool="http"}');
          if (extra !== 3) await sleep(10);
        }
        assert.equal(extra, 3, 'three extra workers while the burst runs');
        assert.equal(await metric(metricsPort, 'rr_http_total_workers'), 4);
        const replies = await Promise.all(burst);
        const pids = replies.map((r) => (JSON.parse(r.body.toString()) as { pid: number }).pid);
        assert.equal(new Set(pids).size, 4, 'each request of the burst ran on a worker of its own');
        // the burst's requests may start waiting a few ms apart, so the three can come in more than one addition
        const added = rr
          .logs()
          .filter((l) => / extra worker\(s\)$/.test(String(l.msg)) && typeof l.adding === 'number')
          .reduce((sum, l) => sum + (l.adding as number), 0);
        assert.equal(added, 3, 'the additions logged add up to the three extra workers');
        // idle_timeout 1s: the extra workers go; the num_workers one stays
        await rr.waitForWorkers(1, 10_000);
        assert.deepEqual(rr.workerPids(), [original]);
        assert.equal(await metric(metricsPort, 'rrts_dynamic_workers', '{pool="http"}'), 0);
        assert.ok(rr.logs().some((l) => String(l.msg).includes('extra worker(s) idle for idle_timeout')));
      } finally {
        await rr.stop();
      }
    });

    it('an extra worker that dies is replaced by another extra worker, as RoadRunner replaces every worker', async () => {
      const metricsPort = await freePort();
      const rr = await startRrts({
        mode,
        workers: 1,
        config: {
          http: { pool: { allocate_timeout: '30s', dynamic_allocator: { max_workers: 1, spawn_rate: 1, idle_timeout: '2s', scale_on_wait: '10ms' } } },
          metrics: { address: `127.0.0.1:${metricsPort}` },
        },
      });
      try {
        const [original] = await rr.waitForWorkers(1);
        const burst = await Promise.all([request(`${rr.url}/rand?ms=300`), request(`${rr.url}/rand?ms=300`)]);
        assert.deepEqual(
          burst.map((r) => r.status),
          [200, 200],
        );
        // an exec worker may still be booting when the burst ends: it dies in the pool, not during its start
        const extraJoined = async (): Promise<boolean> => {
          for (let i = 0; i < 500; i++) {
            if ((await metric(metricsPort, 'rrts_dynamic_workers', '{pool="http"}')) === 1) return true;
            await sleep(10);
          }
          return false;
        };
        assert.ok(await extraJoined(), 'the burst added an extra worker');
        const [extra] = rr.workerPids().filter((pid) => pid !== original);
        process.kill(extra!, 'SIGKILL');
        // the replacement is started only once the pool saw the death: the metric cannot count the dead one then
        await rr.waitFor(() => rr.workerPids().length === 2 && !rr.workerPids().includes(extra!), 'the replacement of the extra worker', 10_000);
        assert.ok(rr.workerPids().includes(original!));
        assert.ok(await extraJoined(), 'the replacement joined the pool as an extra worker');
        // and it goes after idle_timeout like any extra worker
        await rr.waitForWorkers(1, 10_000);
        assert.deepEqual(rr.workerPids(), [original]);
      } finally {
        await rr.stop();
      }
    });

    it("RoadRunner's rule (scale_on_wait: 0): workers are added only once a request waited allocate_timeout, and it is served", async () => {
      const rr = await startRrts({
        mode,
        workers: 1,
        config: { http: { pool: { allocate_timeout: '1500ms', dynamic_allocator: { max_workers: 2, spawn_rate: 2, idle_timeout: '1s', scale_on_wait: 0 } } } },
      });
      try {
        await rr.waitForWorkers(1);
        const busy = request(`${rr.url}/rand?ms=5000`);
        await sleep(100);
        const waiting = request(`${rr.url}/rand`);
        await sleep(300);
        assert.equal(rr.workerPids().length, 1, 'nothing added while the request waits less than allocate_timeout');
        const served = await waiting;
        assert.equal(served.status, 200, 'the request that waited allocate_timeout runs on an added worker');
        assert.equal(rr.workerPids().length, 3);
        assert.ok(rr.logs().some((l) => String(l.msg).includes('no free workers in the pool, wait timeout exceed; adding 2 extra worker(s)')));
        assert.equal((await busy).status, 200);
      } finally {
        await rr.stop();
      }
    });

    it('overload_retry_after: no worker free in time, or max_queue_size reached, is a 503 with Retry-After', async () => {
      const rr = await startRrts({
        mode,
        workers: 1,
        config: { http: { internal_error_code: 500, overload_retry_after: '2s', pool: { allocate_timeout: '300ms', max_queue_size: 2 } } },
      });
      try {
        const busy = request(`${rr.url}/rand?ms=2000`);
        await sleep(100);
        const waited = request(`${rr.url}/hello`); // the second in the pool: waits allocate_timeout
        await sleep(50);
        const refused = await request(`${rr.url}/hello`); // the third: over max_queue_size, at once
        assert.equal(refused.status, 503);
        assert.equal(refused.headers['retry-after'], '2');
        const timedOut = await waited;
        assert.equal(timedOut.status, 503);
        assert.equal(timedOut.headers['retry-after'], '2');
        assert.equal((await busy).status, 200);
        const error = await request(`${rr.url}/error`);
        assert.equal(error.status, 500, "the application's own errors keep internal_error_code");
        assert.equal(error.headers['retry-after'], undefined);
      } finally {
        await rr.stop();
      }
    });

    it('a crash loop: logged once, /ready 503 though a worker still serves, over once a worker stays up', async () => {
      const statusPort = await freePort();
      const flagDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-loop-'));
      const flag = path.join(flagDir, 'fail');
      const rr = await startRrts({ mode, workers: 2, env: { FIXTURE_FAIL_IF_EXISTS: flag }, config: { status: { address: `127.0.0.1:${statusPort}` } } });
      const ready = async (): Promise<number> => (await request(`http://127.0.0.1:${statusPort}/ready?plugin=http`)).status;
      const loopRecords = (): number => rr.logs().filter((l) => /crash loop, \d+ failed starts in a row/.test(String(l.msg))).length;
      try {
        await rr.waitForWorkers(2);
        assert.equal(await ready(), 200);
        fs.writeFileSync(flag, '1');
        await request(`${rr.url}/exit?code=1`); // one worker dies; its replacements cannot start
        await rr.waitFor(() => loopRecords() === 1, 'the crash loop error');
        assert.equal(await ready(), 503, 'not ready in a crash loop');
        assert.equal((await request(`${rr.url}/hello`)).status, 200, 'the other worker still serves');
        // a few more failed attempts (800 ms, 1.6 s apart): still one error record
        await rr.waitFor(() => rr.logs().filter((l) => String(l.msg).startsWith('cannot start a worker')).length >= 5, 'more failed starts');
        assert.equal(loopRecords(), 1, 'the loop is logged once, not per attempt');
        fs.rmSync(flag);
        await rr.waitFor(() => rr.logs().some((l) => String(l.msg).includes('the crash loop is over')), 'the end of the crash loop', 20_000);
        assert.equal(await ready(), 200);
      } finally {
        await rr.stop();
        fs.rmSync(flagDir, { recursive: true, force: true });
      }
    });

    it('ttl: the replacement starts first and the old worker serves until it is ready', async () => {
      const bootMs = 1_500;
      const rr = await startRrts({
        mode,
        workers: 1,
        env: { FIXTURE_BOOT_DELAY_MS: String(bootMs) },
        config: { http: { pool: { supervisor: { ttl: '1s', watch_tick: '100ms' } } } },
      });
      try {
        await rr.waitForWorkers(1);
        // until a third worker serves: two replacements, each booting 1.5 s while requests keep coming
        const runs = await sequential(rr, 20, (pids) => distinct(pids) >= 3, 1_000);
        assert.ok(distinct(runs.map((r) => r.pid)) >= 3, 'workers were replaced');
        const slowest = Math.max(...runs.map((r) => r.totalMs));
        assert.ok(slowest < bootMs, `a request waited ${Math.round(slowest)} ms: for a worker's boot (${bootMs} ms)`);
        assert.ok(rr.logs().some((l) => /its replacement \d+ is ready/.test(String(l.msg))));
      } finally {
        await rr.stop();
      }
    });

    it('max_jobs: the replacement starts ahead and is ready when the old worker, served first, reaches its limit', async () => {
      const bootMs = 300;
      const rr = await startRrts({ mode, workers: 1, env: { FIXTURE_BOOT_DELAY_MS: String(bootMs) }, config: { http: { pool: { max_jobs: 20 } } } });
      try {
        await rr.waitForWorkers(1);
        // 60 ms jobs: 20 take 1.2 s; the pool's starts take ~300 ms, so the replacement starts ~10 jobs ahead
        const runs = await sequential(rr, 60, (pids) => distinct(pids) >= 2 && pids.slice(-5).every((p) => p !== pids[0]), 200);
        const pids = runs.map((r) => r.pid);
        const first = pids.filter((p) => p === pids[0]).length;
        assert.ok(first >= 20 && first <= 22, `the first worker ran ${first} jobs (max_jobs 20, jitter 14 %)`);
        const successor = pids.find((p) => p !== pids[0])!;
        // the old worker gets the jobs while it has any left: else it would linger beside its replacement, idle
        assert.ok(pids.lastIndexOf(pids[0]!) < pids.indexOf(successor), `the old worker served after its replacement began: ${pids.join(' ')}`);
        const slowest = Math.max(...runs.map((r) => r.totalMs));
        assert.ok(slowest < 60 + bootMs, `a request waited ${Math.round(slowest)} ms: for a worker's boot (${bootMs} ms)`);
      } finally {
        await rr.stop();
      }
    });
  });
}

describe('elastic pool (fork): spares sized for a burst', () => {
  it('a pool with a dynamic_allocator parks a spare per extra worker, and a burst takes them first', async () => {
    const rr = await startRrts({
      mode: 'fork',
      workers: 1,
      config: { http: { pool: { allocate_timeout: '30s', dynamic_allocator: { max_workers: 3, spawn_rate: 3, idle_timeout: '1s', scale_on_wait: '10ms' } } } },
    });
    try {
      const [original] = await rr.waitForWorkers(1);
      // server.fork.spares is not written: one per extra worker (max_workers 3), not the default 1
      await rr.waitFor(() => rr.sparePids().length === 3, 'three parked spares', 10_000);
      const spares = rr.sparePids().sort((a, b) => a - b);
      const replies = await Promise.all(Array.from({ length: 4 }, () => request(`${rr.url}/rand?ms=1000`)));
      assert.deepEqual(
        replies.map((r) => r.status),
        [200, 200, 200, 200],
      );
      const pids = replies.map((r) => (JSON.parse(r.body.toString()) as { pid: number }).pid);
      assert.deepEqual(
        pids.filter((pid) => pid !== original).sort((a, b) => a - b),
        spares,
        'the three extra workers were the parked spares, woken rather than forked',
      );
      // and the master parks three again
      await rr.waitFor(() => rr.sparePids().length === 3 && !rr.sparePids().some((pid) => spares.includes(pid)), 'three new spares', 10_000);
    } finally {
      await rr.stop();
    }
  });

  it('server.fork.spares, when written, holds for a pool with a dynamic_allocator too', async () => {
    const rr = await startRrts({
      mode: 'fork',
      workers: 1,
      config: {
        server: { fork: { spares: 2 } },
        http: { pool: { dynamic_allocator: { max_workers: 5, spawn_rate: 5, idle_timeout: '1s', scale_on_wait: '10ms' } } },
      },
    });
    try {
      await rr.waitForWorkers(1);
      await rr.waitFor(() => rr.sparePids().length === 2, 'two parked spares', 10_000);
      await sleep(300); // the master parks them 20 ms after its last fork: more would be there by now
      assert.equal(rr.sparePids().length, 2, `spares: ${rr.sparePids().join(', ')}`);
    } finally {
      await rr.stop();
    }
  });
});
