// Health, readiness and Prometheus metrics of a real rrts with real workers, in both pool modes.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, MODES, sleep, startRrts } from './harness.js';
import { request } from './client.js';

/** Every sample line of a Prometheus text exposition, as name -> list of {labels, value}. */
function parseProm(text: string): Map<string, Array<{ labels: string; value: number }>> {
  const out = new Map<string, Array<{ labels: string; value: number }>>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    assert.ok(m, `not a Prometheus sample line: ${line}`);
    const list = out.get(m[1]!) ?? [];
    list.push({ labels: m[2] ?? '', value: Number(m[3]) });
    out.set(m[1]!, list);
  }
  return out;
}

for (const mode of MODES) {
  describe(`status and metrics (${mode})`, () => {
    it('/health, /ready and /metrics follow the workers', async () => {
      const statusPort = await freePort();
      const metricsPort = await freePort();
      const flagDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-obs-'));
      const flag = path.join(flagDir, 'fail');
      const rr = await startRrts({
        mode,
        workers: 2,
        env: { FIXTURE_FAIL_IF_EXISTS: flag },
        config: {
          status: { address: `127.0.0.1:${statusPort}` },
          metrics: { address: `127.0.0.1:${metricsPort}` },
          http: { middleware: ['http_metrics'] },
        },
      });
      const status = `http://127.0.0.1:${statusPort}`;
      try {
        const health = await request(`${status}/health?plugin=http`);
        assert.equal(health.status, 200);
        assert.deepEqual(JSON.parse(health.body.toString()), [{ plugin_name: 'http', error_message: '', status_code: 200 }]);
        assert.equal((await request(`${status}/ready?plugin=http`)).status, 200);

        // both workers busy: not ready, still healthy
        const busy = [request(`${rr.url}/sleep?ms=1200`), request(`${rr.url}/sleep?ms=1200`)];
        await sleep(300);
        assert.equal((await request(`${status}/ready?plugin=http`)).status, 503);
        assert.equal((await request(`${status}/health?plugin=http`)).status, 200);
        await Promise.all(busy);

        const metrics = parseProm((await request(`http://127.0.0.1:${metricsPort}/metrics`)).body.toString());
        assert.equal(metrics.get('rr_http_total_workers')?.[0]?.value, 2);
        assert.equal(metrics.get('rr_http_worker_memory_bytes')?.length, 2);
        const total = (metrics.get('rr_http_request_total') ?? []).reduce((n, s) => n + s.value, 0);
        assert.ok(total >= 2, `rr_http_request_total = ${total}`);
        assert.ok(metrics.has('process_cpu_user_seconds_total'));
        if (mode === 'fork') assert.ok((metrics.get('rrts_forks_total')?.[0]?.value ?? 0) >= 2);

        // every worker dead and unable to start again: unhealthy
        fs.writeFileSync(flag, '1');
        await Promise.all([request(`${rr.url}/exit?code=1`), request(`${rr.url}/exit?code=1`)]);
        await rr.waitFor(() => rr.workerPids().length === 0, 'all workers gone', 10_000);
        const down = await request(`${status}/health?plugin=http`);
        assert.equal(down.status, 503);
      } finally {
        await rr.stop();
        fs.rmSync(flagDir, { recursive: true, force: true });
      }
    });
  });
}
