// SIGHUP reload with real workers: a changed config reaches the workers through a rolling reset with no failed
// request; a broken config is refused with a log line and rrts keeps serving on the old one.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import os from 'node:os';
import { FIXTURE, MODES, ROOT, sleep, startRrts } from './harness.js';
import { request } from './client.js';

async function flavor(url: string): Promise<string> {
  return JSON.parse((await request(`${url}/env`)).body.toString()).env.APP_FLAVOR;
}

for (const mode of MODES) {
  describe(`SIGHUP reload (${mode})`, () => {
    it('applies a changed worker script and server.env under load with zero failures, and refuses a broken config', async () => {
      // the worker script is a copy the test can change; it requires the protocol library by absolute path
      const appDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-reload-'));
      const script = path.join(appDir, 'worker.php');
      fs.writeFileSync(
        script,
        fs.readFileSync(FIXTURE, 'utf8').replaceAll("__DIR__ . '/../../../php/lib/rr.php'", JSON.stringify(path.join(ROOT, 'php/lib/rr.php'))),
      );
      const rr = await startRrts({ mode, workers: 2, config: { server: { command: `php ${script}` } } });
      const file = path.join(rr.dir, '.rr.yaml');
      const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
      let running = true;
      let ok = 0;
      const failures: string[] = [];
      const loops = Array.from({ length: 4 }, async () => {
        while (running) {
          const r = await request(`${rr.url}/sleep?ms=5`, { agent }).catch((e: Error) => e);
          if (r instanceof Error || r.status !== 200) failures.push(r instanceof Error ? r.message : `status ${r.status}`);
          else ok++;
        }
      });
      try {
        assert.equal(await flavor(rr.url), 'blue');
        assert.match((await request(`${rr.url}/hello`)).body.toString(), /^hello from/);
        fs.writeFileSync(script, fs.readFileSync(script, 'utf8').replace('"hello from $pid"', '"hello v2 from $pid"'));
        const original = fs.readFileSync(file, 'utf8');
        fs.writeFileSync(file, original.replace('APP_FLAVOR: blue', 'APP_FLAVOR: green'));
        rr.proc.kill('SIGHUP');
        await rr.waitFor(() => rr.logs().some((l) => l.msg === 'http: workers reset'), 'the reset', 20_000);
        await rr.waitFor(() => rr.workerPids().length === 2, 'the old workers to leave', 10_000);
        assert.equal(await flavor(rr.url), 'green');
        assert.match((await request(`${rr.url}/hello`)).body.toString(), /^hello v2 from/);

        fs.writeFileSync(file, 'version: "3"\nhttp: [this is: not valid\n');
        rr.proc.kill('SIGHUP');
        await rr.waitFor(() => rr.logs().some((l) => String(l.msg).startsWith('config reload failed')), 'the refusal', 10_000);
        await sleep(200);
        assert.equal(await flavor(rr.url), 'green');
        running = false;
        await Promise.all(loops);
        assert.deepEqual(failures, []);
        assert.ok(ok > 20, `${ok} requests during the test`);
      } finally {
        running = false;
        await Promise.all(loops);
        agent.destroy();
        const exit = await rr.stop();
        fs.rmSync(appDir, { recursive: true, force: true });
        assert.equal(exit.code, 0);
      }
    });
  });
}
