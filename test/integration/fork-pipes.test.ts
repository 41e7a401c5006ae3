// Fork workers' relay with real php: handed two real pipes with the pid request on their relay connection (direct
// forks and woken spares alike), or left on the unix socket when the hand-over is switched off (RRTS_RELAY_PIPES=0);
// either way without a warning about their relay connections.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { bigBody, request, sha256 } from './client.js';
import { killQuietly, startRrts, type RrtsInstance } from './harness.js';

/** A process's fds above 2 (stdio is the root's or the output socket's), by what they link to. */
function relayFds(pid: number): { pipes: Map<number, string>; sockets: Map<number, string> } {
  const pipes = new Map<number, string>();
  const sockets = new Map<number, string>();
  for (const entry of fs.readdirSync(`/proc/${pid}/fd`)) {
    const fd = Number(entry);
    if (fd <= 2) continue;
    let link: string;
    try {
      link = fs.readlinkSync(`/proc/${pid}/fd/${entry}`);
    } catch {
      continue; // closed while we looked
    }
    if (link.startsWith('pipe:')) pipes.set(fd, link);
    else if (link.startsWith('socket:')) sockets.set(fd, link);
  }
  return { pipes, sockets };
}

/** The pipe inodes rrts holds ends of. */
function pipesOf(pid: number): Set<string> {
  const links = new Set<string>();
  for (const entry of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const link = fs.readlinkSync(`/proc/${pid}/fd/${entry}`);
      if (link.startsWith('pipe:')) links.add(link);
    } catch {
      /* closed while we looked */
    }
  }
  return links;
}

/**
 * The worker talks to rrts over two pipes rrts holds the other ends of (new ones: its master has none of them), and
 * holds no socket besides its stdio.
 */
function assertOnPipes(rr: RrtsInstance, pid: number): void {
  const { pipes, sockets } = relayFds(pid);
  assert.deepEqual([...sockets.entries()], [], `worker ${pid} holds no relay socket`);
  const master = pipesOf(rr.masterPids()[0]!);
  const shared = new Set([...pipes.values()].filter((link) => pipesOf(rr.pid).has(link) && !master.has(link)));
  assert.equal(shared.size, 2, `worker ${pid} shares two pipes with rrts: ${JSON.stringify([...pipes.entries()])}`);
}

/** RR_RELAY of each of `pids`, by pid: batches of concurrent requests (so every worker gets some), at most 20. */
async function relaysOf(rr: RrtsInstance, pids: number[]): Promise<Map<number, string>> {
  const seen = new Map<number, string>();
  for (let batch = 0; batch < 20 && !pids.every((pid) => seen.has(pid)); batch++) {
    const answers = await Promise.all(Array.from({ length: 8 }, () => request(`${rr.url}/env`)));
    for (const answer of answers) {
      const r = JSON.parse(answer.body.toString()) as { pid: number; server: { RR_RELAY: string } };
      seen.set(r.pid, r.server.RR_RELAY);
    }
  }
  assert.deepEqual(
    pids.filter((pid) => !seen.has(pid)),
    [],
    `every worker answered /env: ${JSON.stringify([...seen])}`,
  );
  return seen;
}

/** rrts's warnings from its relay listener (a hand-over that went wrong, a connection dropped). */
function relayWarnings(rr: RrtsInstance): string[] {
  return rr
    .logs()
    .filter((l) => (l.level === 'warn' || l.level === 'error') && /worker connection|hand-over|pipes/.test(String(l.msg)))
    .map((l) => String(l.msg));
}

describe('fork workers on pipes', { timeout: 60_000 }, () => {
  let rr: RrtsInstance;
  before(async () => {
    rr = await startRrts({ mode: 'fork', workers: 2, config: { server: { fork: { spares: 1 } } } });
  });
  after(async () => {
    await rr?.stop();
  });

  it('gives every worker two pipes for its relay and no socket, and RR_RELAY names them', async () => {
    const workers = await rr.waitForWorkers(2);
    for (const pid of workers) assertOnPipes(rr, pid);
    const seen = await relaysOf(rr, workers);
    for (const [pid, relay] of seen) {
      const m = /^pipes:\/\/fd\/(\d+):fd\/(\d+)$/.exec(relay);
      assert.ok(m, `worker ${pid}'s RR_RELAY is ${relay}`);
      const { pipes } = relayFds(pid);
      assert.ok(pipes.has(Number(m[1])) && pipes.has(Number(m[2])), `fds ${m[1]} and ${m[2]} of worker ${pid} are pipes`);
    }
  });

  it('carries large bodies both ways and streamed answers over the pipes', async () => {
    const body = bigBody(3 * 1024 * 1024 + 7);
    const echoed = await request(`${rr.url}/echo`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(echoed.status, 200);
    assert.equal((JSON.parse(echoed.body.toString()) as { bodySha256: string }).bodySha256, sha256(body));
    const big = await request(`${rr.url}/big?size=${5 * 1024 * 1024}`);
    assert.equal(big.status, 200);
    assert.equal(sha256(big.body), sha256(bigBody(5 * 1024 * 1024)));
    const stream = await request(`${rr.url}/stream?chunks=12`); // the SDK PINGs on pipes every 5th frame
    assert.equal(stream.status, 200);
    assert.ok(stream.body.length > 0);
  });

  it('hands a woken spare its pipes too', async () => {
    await rr.waitFor(() => rr.sparePids().length === 1, 'the master to park its spare (server.fork.spares: 1)');
    const [spare] = rr.sparePids();
    const [victim] = rr.workerPids();
    killQuietly(victim!);
    await rr.waitFor(() => rr.workerPids().includes(spare!) && !rr.workerPids().includes(victim!), `the spare ${spare} to replace worker ${victim}`);
    await rr.waitFor(() => rr.logs().some((l) => l.msg === 'worker is ready' && Number(l.pid) === spare), `worker ${spare} to be ready`);
    assertOnPipes(rr, spare!);
    const seen = await relaysOf(rr, [spare!]);
    assert.match(seen.get(spare!)!, /^pipes:\/\/fd\/\d+:fd\/\d+$/);
    assert.deepEqual(relayWarnings(rr), []);
  });
});

describe('fork workers with RRTS_RELAY_PIPES=0 stay on the unix socket', { timeout: 60_000 }, () => {
  let rr: RrtsInstance;
  before(async () => {
    rr = await startRrts({ mode: 'fork', workers: 2, config: { server: { env: { RRTS_RELAY_PIPES: '0' } } } });
  });
  after(async () => {
    await rr?.stop();
  });

  it('answers requests over the socket its SDK connected', async () => {
    const workers = await rr.waitForWorkers(2);
    for (const pid of workers) {
      const { sockets } = relayFds(pid);
      assert.equal(sockets.size, 1, `worker ${pid} holds its relay socket`);
    }
    const seen = await relaysOf(rr, workers);
    for (const [pid, relay] of seen) assert.match(relay, /^unix:\/\/.*workers\.sock$/, `worker ${pid}'s RR_RELAY`);
    const body = bigBody(1024 * 1024);
    const echoed = await request(`${rr.url}/echo`, { method: 'POST', body });
    assert.equal((JSON.parse(echoed.body.toString()) as { bodySha256: string }).bodySha256, sha256(body));
    assert.deepEqual(relayWarnings(rr), []);
  });
});
