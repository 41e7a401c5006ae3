// Exec mode's `pipes` relay runs over real pipes (as RoadRunner's workers get from Go's os/exec), not libuv's
// socketpairs: the worker's stdin and stdout are pipes, its stderr a separate channel, big frames go both ways, and a
// graceful stop still ends every worker.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { alive, FIXTURE, sleep, startRrts, type RrtsInstance } from './harness.js';
import { bigBody, request, sha256 } from './client.js';

describe('exec mode: the pipes relay is real pipes', () => {
  let rr: RrtsInstance;
  before(async () => {
    rr = await startRrts({ mode: 'exec', relay: 'pipes', workers: 2 });
  });
  after(async () => {
    await rr?.stop();
  });

  it("each worker's stdin and stdout are pipes and its stderr is not one of them", async () => {
    const pids = await rr.waitForWorkers(2);
    for (const pid of pids) {
      // stat follows /proc's link to the open file itself, unlinked or not
      const [stdin, stdout, stderr] = [0, 1, 2].map((fd) => fs.statSync(`/proc/${pid}/fd/${fd}`));
      assert.ok(stdin!.isFIFO(), `worker ${pid} stdin is a pipe`);
      assert.ok(stdout!.isFIFO(), `worker ${pid} stdout is a pipe`);
      assert.notEqual(stdin!.ino, stdout!.ino, 'two pipes: jobs in, answers out');
      assert.ok(stderr!.ino !== stdin!.ino && stderr!.ino !== stdout!.ino, `worker ${pid} stderr is its own channel`);
    }
  });

  it('a 2 MiB request body and a 2 MiB answer cross the pipes whole', async () => {
    const body = bigBody(2 * 1024 * 1024);
    const echo = await request(`${rr.url}/echo`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(echo.status, 200);
    assert.equal((JSON.parse(echo.body.toString()) as { bodySha256: string }).bodySha256, sha256(body));
    const big = await request(`${rr.url}/big?size=${2 * 1024 * 1024}`);
    assert.equal(big.status, 200);
    assert.equal(sha256(big.body), sha256(bigBody(2 * 1024 * 1024)));
  });

  it('a graceful stop ends every worker and rrts exits 0', async () => {
    const pids = rr.workerPids();
    assert.equal(pids.length, 2);
    const exit = await rr.stop();
    assert.equal(exit.code, 0);
    for (const pid of pids) assert.equal(alive(pid), false, `worker ${pid} is gone`);
  });
});

// On a socketpair, PHP's fread(STDIN) gives up after default_socket_timeout (60 s by default), so every idle worker
// died once a minute; a pipe has no such timeout. The timeout is 1 s here so that the test waits 2.5 s, not minutes.
describe('exec mode: an idle worker outlives default_socket_timeout', () => {
  let rr: RrtsInstance;
  before(async () => {
    rr = await startRrts({ mode: 'exec', relay: 'pipes', workers: 1, config: { server: { command: `php -d default_socket_timeout=1 ${FIXTURE}` } } });
  });
  after(async () => {
    await rr?.stop();
  });

  it('the worker that was idle past the timeout serves the next request', async () => {
    const [pid] = await rr.waitForWorkers(1);
    await sleep(2_500);
    const res = await request(`${rr.url}/pid`);
    assert.equal(res.status, 200);
    assert.equal(res.body.toString().trim(), String(pid), 'the same worker answers');
    assert.doesNotMatch(rr.stderr, /closed its relay|Incorrect header size/);
  });
});
