// The start-up summary: config and working directory, every listener with its bound address, the workers ready
// and the start's duration, and in fork mode the master and its preload, each once at info.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MODES, startRrts } from './harness.js';

for (const mode of MODES) {
  describe(`start-up summary (${mode})`, () => {
    it('names the config, each listener with its port, the ready workers and the mode', async () => {
      const rr = await startRrts({
        mode,
        workers: 2,
        config: { rpc: { listen: 'tcp://127.0.0.1:0' }, status: { address: '127.0.0.1:0' }, metrics: { address: '127.0.0.1:0' } },
      });
      try {
        const logs = rr.logs();
        const listeners = Object.fromEntries(logs.filter((l) => typeof l.listener === 'string').map((l) => [l.listener, String(l.address)]));
        assert.equal(listeners.http, `127.0.0.1:${rr.port}`);
        for (const role of ['rpc', 'status', 'metrics']) {
          assert.match(listeners[role] ?? '', /127\.0\.0\.1:[1-9]\d*$/, `${role} with its bound port, not 0`);
        }
        const config = logs.find((l) => typeof l.config === 'string');
        assert.match(String(config?.config), /\.rr\.yaml$/);
        assert.equal(config?.workdir, rr.dir);
        const ready = logs.filter((l) => l.plugin === 'http' && typeof l.workers === 'number');
        assert.equal(ready.length, 1, 'one ready line');
        assert.equal(ready[0]!.workers, 2);
        assert.equal(ready[0]!.mode, mode);
        assert.match(String(ready[0]!.msg), /^http: 2 workers ready in \d+ ms/);
        const master = logs.filter((l) => l.plugin === 'http' && 'master' in l);
        assert.equal(master.length, mode === 'fork' ? 1 : 0);
        if (mode === 'fork') assert.deepEqual([master[0]!.master], rr.masterPids());
      } finally {
        await rr.stop();
      }
    });
  });
}
