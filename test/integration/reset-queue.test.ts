// Resets of a pool with real php, RPC and signals: an RPC reset and a SIGHUP reload asked for together run one after
// the other (never more than one old and one fresh generation alive), and pool.reset_timeout kills an old worker
// still busy with a long request so the reset completes.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RpcClient } from '../../src/cli/rpc-client.js';
import { alive, FIXTURE, freePort, killQuietly, MODES, startRrts, type RrtsInstance } from './harness.js';
import { request, type Reply } from './client.js';
import { sleep } from '../support/sleep.js';

interface WorkerInfo {
  pid: number;
  statusStr: string;
}

/** The pid of the worker running a request, once informer.Workers shows one (bounded). */
async function workingPid(client: RpcClient): Promise<number> {
  for (let i = 0; i < 400; i++) {
    const { workers } = await client.call<{ workers: WorkerInfo[] }>('informer.Workers', 'http');
    const busy = workers.find((w) => w.statusStr === 'working');
    if (busy) return busy.pid;
    await sleep(25);
  }
  throw new Error('no worker started the long request');
}

/** A worker script that writes "start <pid>" and "exit <pid>" lines to `lifeLog` around the fixture's loop. */
function lifeLoggingWorker(dir: string, lifeLog: string): string {
  const script = path.join(dir, 'life.php');
  const line = (event: string): string => `file_put_contents(${JSON.stringify(lifeLog)}, "${event} " . getmypid() . "\\n", FILE_APPEND | LOCK_EX);`;
  fs.writeFileSync(script, `<?php\n${line('start')}\nrequire ${JSON.stringify(FIXTURE)};\n${line('exit')}\n`);
  return script;
}

/** The most workers the life log shows alive at once, and how many started. */
function lifeStats(lifeLog: string): { maxAlive: number; starts: number } {
  const alive = new Set<string>();
  let maxAlive = 0;
  let starts = 0;
  for (const [event, pid] of fs
    .readFileSync(lifeLog, 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split(' '))) {
    if (event === 'start') {
      starts++;
      alive.add(pid!);
    } else alive.delete(pid!);
    maxAlive = Math.max(maxAlive, alive.size);
  }
  return { maxAlive, starts };
}

async function withRpc(rr: RrtsInstance, address: string, body: (client: RpcClient) => Promise<void>): Promise<void> {
  const client = await RpcClient.connect(address, rr.dir);
  try {
    await body(client);
  } finally {
    client.close();
  }
}

for (const mode of MODES) {
  describe(`pool resets (${mode})`, () => {
    it('an RPC reset and a SIGHUP reload asked for together never overlap', async () => {
      const address = `tcp://127.0.0.1:${await freePort()}`;
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-reset-queue-'));
      const lifeLog = path.join(dir, 'life.log');
      const script = lifeLoggingWorker(dir, lifeLog);
      const rr = await startRrts({
        mode,
        workers: 1,
        config: { rpc: { listen: address }, server: { command: `php ${script}` }, http: { pool: { reset_timeout: '60s' } } },
      });
      try {
        await withRpc(rr, address, async (client) => {
          // the only worker is busy for a while: the first reset cannot end before the request does
          const long = request(`${rr.url}/sleep?ms=3000`, { timeoutMs: 30_000 });
          const first = await workingPid(client);
          const rpcReset = client.call('resetter.Reset', 'http');
          rr.proc.kill('SIGHUP');
          const reply: Reply = await long;
          assert.equal(reply.status, 200, 'the request the old worker was running completes');
          assert.equal(await rpcReset, true);
          await rr.waitFor(() => rr.logs().some((l) => l.msg === 'http: workers reset'), 'the reload', 30_000);
          await rr.waitFor(() => !alive(first) && rr.workerPids().length === 1 && lifeStats(lifeLog).starts === 3, 'both resets to end', 30_000);
        });
        const { maxAlive, starts } = lifeStats(lifeLog);
        assert.equal(starts, 3, 'the first worker and one per reset');
        assert.equal(maxAlive, 2, `at most the old and the fresh worker at once; the life log:\n${fs.readFileSync(lifeLog, 'utf8')}`);
        assert.equal((await request(`${rr.url}/hello`)).status, 200);
      } finally {
        const exit = await rr.stop();
        fs.rmSync(dir, { recursive: true, force: true });
        assert.equal(exit.code, 0);
      }
    });

    it('pool.reset_timeout: an old worker still busy when it runs out is killed and the reset completes', async () => {
      const address = `tcp://127.0.0.1:${await freePort()}`;
      const rr = await startRrts({ mode, workers: 1, config: { rpc: { listen: address }, http: { pool: { reset_timeout: '1s' } } } });
      let busy = 0;
      try {
        await withRpc(rr, address, async (client) => {
          const long = request(`${rr.url}/sleep?ms=30000`, { timeoutMs: 60_000 }).catch((err: Error) => err);
          busy = await workingPid(client);
          assert.equal(await client.call('resetter.Reset', 'http'), true);
          assert.equal(alive(busy), false, 'the busy old worker is gone when the reset returns');
          const reply = await long;
          assert.ok(!(reply instanceof Error) && reply.status === 500, `the killed request: ${reply instanceof Error ? reply.message : reply.status}`);
          const killed = rr.logs().find((l) => String(l.msg).startsWith(`worker ${busy} killed`));
          assert.match(String(killed?.msg), /still busy with a request when the reset's pool\.reset_timeout \(1000 ms\) ran out/);
        });
        assert.equal((await request(`${rr.url}/hello`)).status, 200);
      } finally {
        if (busy) killQuietly(busy); // when the reset left it running, rrts's stop would wait for its request
        const exit = await rr.stop();
        assert.equal(exit.code, 0);
      }
    });
  });
}
