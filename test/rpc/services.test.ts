// The core RPC services against fake pools: shapes, RoadRunner's error texts, secret redaction in rpc.Config.
// (One reset at a time is the pool's own queue: test/pool/reset.test.ts.)
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Config } from '../../src/config/types.js';
import type { WorkerPool } from '../../src/pool/pool.js';
import { RpcPlugin } from '../../src/rpc/server.js';
import { REDACTED, redactSecrets, registerCoreServices } from '../../src/rpc/services.js';
import { capabilitiesOf } from '../support/pool-plugins.js';
import { RR_COMPAT_VERSION } from '../../src/version.js';
import { RpcClient } from '../../src/cli/rpc-client.js';
import { silent } from './rpc-helpers.js';
import { sleep } from '../support/sleep.js';

class FakePool {
  added = 0;
  removed = 0;
  resets = 0;
  failNextReset = false;
  mode: 'exec' | 'fork' = 'fork';
  masterPid = 777;
  isExtra(): boolean {
    return false;
  }
  list(): unknown[] {
    return [{ pid: process.pid, state: 1, statusName: 'ready', numExecs: 5, created: 1_700_000_000_000 }];
  }
  async addWorker(): Promise<void> {
    this.added++;
  }
  async removeWorker(): Promise<void> {
    this.removed++;
  }
  async reset(): Promise<void> {
    await sleep(50);
    if (this.failNextReset) {
      this.failNextReset = false;
      throw new Error('worker 123 exited at boot');
    }
    this.resets++;
  }
}

const RAW = {
  version: '3',
  rpc: { listen: 'tcp://127.0.0.1:6001' },
  server: { command: 'php worker.php', env: { DB_PASSWORD: 'hunter2', APP_FLAVOR: 'blue', Api_Token: 'tok', EMPTY_SECRET: '' } },
  jobs: { pipelines: { q: { config: { routing_key: 'k1', addr: 'amqp://guest:guestpw@127.0.0.1:5672/' } } } },
  http: { address: '127.0.0.1:8080', ssl: { key: '/etc/ssl/private.pem' }, middleware: ['gzip'] },
  redis: { auth: { user: 'u', pass: 'p' }, dsn: 'redis://:redispw@localhost:6379/0' },
};

describe('core rpc services', () => {
  let rpc: RpcPlugin;
  let client: RpcClient;
  const pool = new FakePool();
  before(async () => {
    rpc = new RpcPlugin('tcp://127.0.0.1:0', silent, process.cwd());
    const host = { config: { raw: RAW } as unknown as Config, plugins: capabilitiesOf(new Map([['http', pool as unknown as WorkerPool]])) };
    registerCoreServices(rpc, host);
    await rpc.serve();
    client = await RpcClient.connect(rpc.address, process.cwd());
  });
  after(async () => {
    client?.close();
    await rpc?.stop();
  });

  it('rpc.Version', async () => {
    assert.equal(await client.call('rpc.Version', true), RR_COMPAT_VERSION);
  });

  it('rpc.Config is the config as base64 JSON bytes, with secrets hidden', async () => {
    const b64 = await client.call<string>('rpc.Config', true);
    const text = Buffer.from(b64, 'base64').toString();
    const config = JSON.parse(text) as typeof RAW;
    for (const secret of ['hunter2', 'tok', 'k1', 'guestpw', 'redispw', '/etc/ssl/private.pem', '"p"']) assert.ok(!text.includes(secret), `${secret} leaked`);
    assert.equal(config.server.env.DB_PASSWORD, REDACTED);
    assert.equal(config.server.env.Api_Token, REDACTED);
    assert.equal(config.server.env.APP_FLAVOR, 'blue');
    assert.equal(config.server.env.EMPTY_SECRET, '');
    assert.equal(config.jobs.pipelines.q.config.addr, `amqp://guest:${REDACTED}@127.0.0.1:5672/`);
    assert.equal(config.redis.auth, REDACTED);
    assert.equal(config.rpc.listen, 'tcp://127.0.0.1:6001');
    assert.deepEqual(config.http.middleware, ['gzip']);
  });

  it('redactSecrets leaves the input alone and plain URLs untouched', () => {
    const input = { a: { PASSWORD: 'x' }, u: 'tcp://127.0.0.1:6001', list: [{ secret: 's' }] };
    assert.deepEqual(redactSecrets(input), { a: { PASSWORD: REDACTED }, u: 'tcp://127.0.0.1:6001', list: [{ secret: REDACTED }] });
    assert.equal(input.a.PASSWORD, 'x');
  });

  it('informer.List, informer.Jobs, resetter.List', async () => {
    assert.deepEqual(await client.call('informer.List', true), ['http']);
    assert.deepEqual(await client.call('resetter.List', true), ['http']);
    assert.deepEqual(await client.call('informer.Jobs', 'http'), []);
  });

  it('informer.Workers: RoadRunner State keys in order, plus uss, pss and masterPid for fork pools; unknown -> []', async () => {
    const list = await client.call<{ workers: Array<Record<string, unknown>> }>('informer.Workers', 'http');
    assert.equal(list.workers.length, 1);
    const w = list.workers[0]!;
    assert.deepEqual(Object.keys(w), ['pid', 'status', 'numExecs', 'created', 'memoryUsage', 'CPUPercent', 'command', 'statusStr', 'uss', 'pss', 'masterPid']);
    assert.equal(w.pid, process.pid);
    assert.equal(w.status, 1);
    assert.equal(w.statusStr, 'ready');
    assert.equal(w.created, 1_700_000_000_000_000_000);
    assert.equal(w.masterPid, 777);
    assert.ok(Number.isInteger(w.memoryUsage) && (w.memoryUsage as number) > 0);
    assert.deepEqual(await client.call('informer.Workers', 'nosuch'), { workers: [] });
    await assert.rejects(client.call('informer.Workers', 5), /json: cannot unmarshal number into Go value of type string/);
  });

  it('informer.AddWorker / RemoveWorker', async () => {
    assert.equal(await client.call('informer.AddWorker', 'http'), true);
    assert.equal(await client.call('informer.RemoveWorker', 'http'), true);
    assert.equal(pool.added, 1);
    assert.equal(pool.removed, 1);
    await assert.rejects(client.call('informer.AddWorker', 'grpc'), { message: 'plugin grpc does not support workers management' });
    await assert.rejects(client.call('informer.RemoveWorker', 'grpc'), { message: 'plugin grpc does not support workers management' });
  });

  it('resetter.Reset: true when done, one pool reset per call, RoadRunner error text for unknown plugins', async () => {
    const results = await Promise.all([client.call('resetter.Reset', 'http'), client.call('resetter.Reset', 'http'), client.call('resetter.Reset', 'http')]);
    assert.deepEqual(results, [true, true, true]);
    assert.equal(pool.resets, 3);
    await assert.rejects(client.call('resetter.Reset', 'foo'), { message: 'resetter_rpc_reset:\n\tresetter_plugin_reset_by_name: no such plugin: foo' });
    pool.failNextReset = true;
    await assert.rejects(client.call('resetter.Reset', 'http'), /reset failed, the old workers keep serving: worker 123 exited at boot/);
    assert.equal(await client.call('resetter.Reset', 'http'), true);
  });
});
