// http.front.processes: 2 with a real rrts, real PHP workers and real sockets, in exec and fork mode: both front
// processes serve, the operator sees one set of workers (informer, /metrics, /health, /ready), an RPC reset
// renews every worker, a SIGKILLed front is replaced, fork mode keeps one root, and a graceful stop leaves nothing.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { RpcClient } from '../../src/cli/rpc-client.js';
import { alive, childrenOf, freePort, isForkRoot, isForkSpare, MODES, startRrts, type RrtsInstance } from './harness.js';
import { request } from './client.js';

interface State {
  pid: number;
  statusStr: string;
}

const WORKERS = 4;

function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

/** The front processes: rrts's node children running the front entry. */
function frontPids(rrts: RrtsInstance): number[] {
  return childrenOf(rrts.pid).filter((pid) => cmdline(pid).includes('front/entry.js'));
}

/** Fork mode: the roots, the masters (their children) and the workers (the masters' children that are no spares). */
function forkTree(rrts: RrtsInstance): { roots: number[]; masters: number[]; workers: number[] } {
  const roots = childrenOf(rrts.pid).filter(isForkRoot);
  const masters = roots.flatMap((pid) => childrenOf(pid));
  const workers = masters.flatMap((pid) => childrenOf(pid)).filter((pid) => !isForkSpare(pid));
  return { roots, masters, workers };
}

/** The PHP workers as processes: the fronts' children (exec) or the masters' (fork). */
function workerPids(rrts: RrtsInstance, mode: string): number[] {
  if (mode === 'fork') return forkTree(rrts).workers.sort((a, b) => a - b);
  return frontPids(rrts)
    .flatMap((pid) => childrenOf(pid))
    .sort((a, b) => a - b);
}

/** The same pids in the same order (both lists are sorted). */
function sameList(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((value, i) => value === b[i]);
}

/** `count` requests, each on a new connection (cluster hands each connection to one front), answering the worker pid. */
async function servingPids(url: string, count: number): Promise<number[]> {
  const agent = new http.Agent({ keepAlive: false });
  try {
    const pids: number[] = [];
    for (let i = 0; i < count; i++) {
      const reply = await request(`${url}/pid`, { agent });
      assert.equal(reply.status, 200);
      pids.push(Number(reply.body.toString()));
    }
    return pids;
  } finally {
    agent.destroy();
  }
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function informer(client: RpcClient): Promise<number[]> {
  const { workers } = await client.call<{ workers: State[] }>('informer.Workers', 'http');
  return workers.map((w) => w.pid).sort((a, b) => a - b);
}

async function scrape(port: number): Promise<string> {
  return (await request(`http://127.0.0.1:${port}/metrics`)).body.toString();
}

/** The value of one sample line of an exposition text (0 when absent). */
function sample(text: string, line: string): number {
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found ? Number(found.slice(line.length + 1)) : 0;
}

for (const mode of MODES) {
  describe(`http.front.processes: 2 (${mode} mode)`, () => {
    let rrts: RrtsInstance;
    let client: RpcClient;
    let metricsPort = 0;
    let statusPort = 0;
    /** requests sent to the http port so far, for the metrics test */
    let sent = 0;

    before(async () => {
      const rpcPort = await freePort();
      metricsPort = await freePort();
      statusPort = await freePort();
      rrts = await startRrts({
        mode,
        workers: WORKERS,
        config: {
          http: { front: { processes: 2 }, middleware: ['http_metrics'] },
          rpc: { listen: `tcp://127.0.0.1:${rpcPort}` },
          metrics: { address: `127.0.0.1:${metricsPort}` },
          status: { address: `127.0.0.1:${statusPort}` },
        },
      });
      client = await RpcClient.connect(`tcp://127.0.0.1:${rpcPort}`, rrts.dir);
    });

    after(async () => {
      client?.close();
      if (rrts && rrts.proc.exitCode === null) {
        const left = [...frontPids(rrts), ...workerPids(rrts, mode), ...forkTree(rrts).masters, ...forkTree(rrts).roots];
        await rrts.stop();
        for (const pid of left) if (alive(pid)) process.kill(pid, 'SIGKILL');
      }
    });

    it('runs two front processes and both serve requests', async () => {
      assert.equal(frontPids(rrts).length, 2);
      const pids = await servingPids(rrts.url, 16);
      sent += 16;
      // which front each answer came from: the worker's parent (exec) or its master (fork), one per front
      const parents = new Set(pids.map((pid) => childrenOwner(rrts, mode, pid)));
      assert.equal(parents.size, 2, `answers came from ${[...parents].join(', ')}`);
    });

    it('logs one start-up summary with every worker of both fronts', () => {
      const summary = rrts.logs().filter((r) => typeof r.msg === 'string' && r.msg.startsWith('http: ') && r.msg.includes('workers ready'));
      assert.equal(summary.length, 1, JSON.stringify(summary));
      assert.equal(summary[0]!.workers, WORKERS);
    });

    it('informer.Workers lists every worker of both fronts once', async () => {
      const listed = await informer(client);
      assert.equal(listed.length, WORKERS);
      assert.equal(new Set(listed).size, WORKERS);
      assert.deepEqual(listed, workerPids(rrts, mode));
    });

    it('/metrics is one scrape with the counters of both fronts summed', async () => {
      await servingPids(rrts.url, 6);
      sent += 6;
      const text = await scrape(metricsPort);
      assert.equal(sample(text, 'rr_http_request_total{status="200"}'), sent);
      assert.equal(sample(text, 'rr_http_request_duration_seconds_count{status="200"}'), sent);
      assert.equal(sample(text, 'rr_http_total_workers'), WORKERS);
      assert.equal(text.split('\n').filter((l) => l.startsWith('# TYPE rr_http_request_total ')).length, 1);
    });

    it('/health and /ready answer 200 for the fronts together', async () => {
      for (const path of ['/health?plugin=http', '/ready?plugin=http']) {
        const reply = await request(`http://127.0.0.1:${statusPort}${path}`);
        assert.equal(reply.status, 200, `${path}: ${reply.body.toString()}`);
      }
    });

    if (mode === 'fork') {
      it("forks every front's master from one root: one opcache segment", () => {
        const { roots, masters, workers } = forkTree(rrts);
        assert.equal(roots.length, 1);
        assert.equal(masters.length, 2);
        assert.equal(workers.length, WORKERS);
        for (const pid of workers) assert.ok(masters.includes(childrenOwner(rrts, mode, pid)));
      });
    }

    it('resetter.Reset replaces every worker of both fronts', async () => {
      const before = await informer(client);
      assert.equal(await client.call('resetter.Reset', 'http'), true);
      const afterReset = await informer(client);
      assert.equal(afterReset.length, WORKERS);
      for (const pid of before) assert.ok(!afterReset.includes(pid), `worker ${pid} survived the reset`);
      if (mode === 'fork') assert.equal(forkTree(rrts).roots.length, 1);
    });

    it('SIGHUP reloads and resets the workers of both fronts', async () => {
      const before = await informer(client);
      const resets = () => rrts.logs().filter((r) => r.msg === 'http: workers reset').length;
      const done = resets();
      rrts.proc.kill('SIGHUP');
      await until('the reload to finish', () => resets() > done);
      const afterReload = await informer(client);
      assert.equal(afterReload.length, WORKERS);
      for (const pid of before) assert.ok(!afterReload.includes(pid), `worker ${pid} survived the reload`);
      // the old workers are told to stop by the reset and exit a moment later: the process tree then lists no more
      await until('the process tree to hold only the listed workers', () => sameList(afterReload, workerPids(rrts, mode)));
      assert.deepEqual(afterReload, workerPids(rrts, mode));
    });

    it('replaces a front process that was SIGKILLed, with its workers, and serves from two fronts again', async () => {
      const [victim, survivor] = frontPids(rrts);
      const victimWorkers = mode === 'exec' ? childrenOf(victim!) : [];
      process.kill(victim!, 'SIGKILL');
      await until('a new front process', () => {
        const fronts = frontPids(rrts);
        return fronts.length === 2 && !fronts.includes(victim!) && fronts.includes(survivor!);
      });
      await until(`${WORKERS} workers listed`, async () => (await informer(client).catch(() => [])).length === WORKERS);
      for (const pid of victimWorkers) await until(`the dead front's worker ${pid} to exit`, () => !alive(pid));
      const pids = await servingPids(rrts.url, 16);
      sent += 16;
      assert.equal(new Set(pids.map((pid) => childrenOwner(rrts, mode, pid))).size, 2);
      assert.deepEqual(await informer(client), workerPids(rrts, mode));
      if (mode === 'fork') assert.equal(forkTree(rrts).roots.length, 1);
    });

    it('stops gracefully: exit 0 and no process left', async () => {
      const left = [...frontPids(rrts), ...workerPids(rrts, mode), ...forkTree(rrts).masters, ...forkTree(rrts).roots];
      assert.ok(left.length >= 2 + WORKERS);
      const exit = await rrts.stop();
      assert.equal(exit.code, 0, rrts.stderr.slice(-2000));
      for (const pid of left) assert.ok(!alive(pid), `process ${pid} (${cmdline(pid)}) outlived rrts`);
    });
  });
}

describe('http.front.processes: 2, stopping with requests in flight', () => {
  for (const mode of MODES) {
    it(`${mode}: SIGTERM lets the requests in flight finish (exit 0); a second signal forces exit 1 with nothing left`, async () => {
      const rpcPort = await freePort();
      const first = await startRrts({ mode, workers: 4, config: { http: { front: { processes: 2 } }, rpc: { listen: `tcp://127.0.0.1:${rpcPort}` } } });
      const tree = (rrts: RrtsInstance): number[] => [...frontPids(rrts), ...workerPids(rrts, mode), ...forkTree(rrts).masters, ...forkTree(rrts).roots];
      try {
        // two slow requests: each front has two workers, so both run at once wherever cluster hands their connections
        const slow = Array.from({ length: 2 }, () => request(`${first.url}/sleep?ms=1500`, { agent: new http.Agent({ keepAlive: false }) }));
        const client = await RpcClient.connect(`tcp://127.0.0.1:${rpcPort}`, first.dir);
        try {
          await until('both slow requests to be running', async () => {
            const { workers } = await client.call<{ workers: State[] }>('informer.Workers', 'http');
            return workers.filter((w) => w.statusStr === 'working').length === 2;
          });
        } finally {
          client.close();
        }
        const left = tree(first);
        first.proc.kill('SIGTERM');
        const replies = await Promise.all(slow);
        for (const reply of replies) assert.equal(reply.body.toString(), 'slept 1500');
        assert.equal((await first.exited).code, 0, first.stderr.slice(-2000));
        for (const pid of left) assert.ok(!alive(pid), `process ${pid} outlived rrts`);
      } finally {
        await first.stop();
      }
      const second = await startRrts({ mode, workers: 4, config: { http: { front: { processes: 2 } } } });
      try {
        const slow = Array.from({ length: 4 }, () => request(`${second.url}/sleep?ms=5000`, { agent: new http.Agent({ keepAlive: false }) }).catch(() => null));
        await new Promise((r) => setTimeout(r, 500));
        const left = tree(second);
        second.proc.kill('SIGTERM');
        await new Promise((r) => setTimeout(r, 200));
        second.proc.kill('SIGTERM');
        assert.equal((await second.exited).code, 1);
        await Promise.all(slow);
        for (const pid of left) await until(`process ${pid} to be gone`, () => !alive(pid), 5_000);
      } finally {
        await second.stop();
      }
    });
  }
});

describe('http.front.processes: 2 on an address in use', () => {
  it('fails the start with the address and the key, exit 1, and leaves no process', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    const rrts = await startRrts({ expectFailure: true, workers: 2, config: { http: { address: `127.0.0.1:${port}`, front: { processes: 2 } } } });
    const seen = new Set<number>();
    const watch = setInterval(() => {
      for (const pid of [...frontPids(rrts), ...frontPids(rrts).flatMap((p) => childrenOf(p))]) seen.add(pid);
    }, 20);
    try {
      const exit = await rrts.exited;
      assert.equal(exit.code, 1);
      assert.match(rrts.stderr, new RegExp(`cannot listen on '127\\.0\\.0\\.1:${port}' \\(http\\.address\\): .*EADDRINUSE`));
      for (const pid of seen) assert.ok(!alive(pid), `process ${pid} outlived the failed start`);
    } finally {
      clearInterval(watch);
      await rrts.stop();
      blocker.close();
    }
  });
});

/** The process that owns a worker: its front (exec) or its master (fork), from /proc. */
function childrenOwner(rrts: RrtsInstance, mode: string, worker: number): number {
  const owner = mode === 'exec' ? frontPids(rrts) : forkTree(rrts).masters;
  const parent = owner.find((pid) => childrenOf(pid).includes(worker));
  assert.ok(parent !== undefined, `worker ${worker} belongs to none of ${owner.join(', ')}`);
  return parent;
}
