// The supervisor's tick with a memory reader that never answers (a unit test of the module: fake pool and workers).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Logger } from 'pino';
import { Supervisor } from '../../src/pool/supervisor.js';
import type { WorkerPool } from '../../src/pool/pool.js';
import type { Worker } from '../../src/worker/worker.js';
import { WorkerState } from '../../src/worker/state.js';

describe('supervisor', () => {
  it('a memory read that never answers does not stop the checks: the tick ends, says so, and ttl still applies', async () => {
    const worker = { pid: 4242, state: WorkerState.Ready, created: Date.now() - 60_000, numExecs: 1, lastUsed: Date.now() } as unknown as Worker;
    const retired: Array<[number, WorkerState]> = [];
    const pool = { list: () => [worker], markForRetirement: (w: Worker, state: WorkerState) => retired.push([w.pid, state]) } as unknown as WorkerPool;
    const warnings: string[] = [];
    const log = { warn: (msg: string) => warnings.push(msg), info: () => undefined } as unknown as Logger;
    const config = { watchTick: 100, ttl: 30_000, idleTtl: 0, maxWorkerMemory: 20 * 1048576, execTtl: 0 };
    const supervisor = new Supervisor(pool, config, log, () => new Promise(() => undefined));
    const keepAlive = setTimeout(() => undefined, 10_000); // the supervisor's own timers do not hold the process
    const t0 = performance.now();
    await supervisor.tick();
    const ms = performance.now() - t0;
    clearTimeout(keepAlive);
    assert.ok(ms >= 900 && ms < 5_000, `the tick took ${ms.toFixed(0)} ms`);
    assert.deepEqual(retired, [[4242, WorkerState.TTLReached]]);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /reading the workers' memory took over 1000 ms/);
  });
});
