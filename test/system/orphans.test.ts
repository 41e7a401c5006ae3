// The orphan reaper against children rrts started through spawnChild: their exits belong to libuv, never to the sweep.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { spawnChild } from '../../src/system/children.js';
import { OrphanReaper } from '../../src/system/orphans.js';
import { rssReader } from '../../src/pool/supervisor.js';

describe('orphan reaper', () => {
  const reaper = new OrphanReaper(pino({ level: 'silent' }));
  before(() => reaper.start());
  after(() => reaper.stop());

  it('leaves the children started through spawnChild to Node, even when sweeping all the time', async () => {
    // sweep as often as the event loop allows while 50 short-lived children come and go: a sweep that reaped one
    // would leave its 'exit' unseen
    const sweeper = setInterval(() => reaper.sweep(), 0);
    try {
      const outcomes = await Promise.all(
        Array.from(
          { length: 50 },
          () =>
            new Promise<string>((resolve) => {
              const timer = setTimeout(() => resolve('no exit seen within 10 s'), 10_000);
              const child = spawnChild('sh', ['-c', 'exit 3'], { stdio: 'ignore' });
              child.once('exit', (code, signal) => {
                clearTimeout(timer);
                resolve(`exit ${code ?? signal}`);
              });
            }),
        ),
      );
      assert.deepEqual(new Set(outcomes), new Set(['exit 3']));
      assert.equal(reaper.reaped, 0);
    } finally {
      clearInterval(sweeper);
    }
  });

  it("answers the supervisor's memory check without starting a process the sweep could take", { timeout: 30_000 }, async () => {
    const sweeper = setInterval(() => reaper.sweep(), 0);
    try {
      for (let i = 0; i < 20; i++) {
        const sizes = await rssReader([process.pid]);
        assert.ok((sizes.get(process.pid) ?? 0) > 0, 'this process has a resident set');
      }
      assert.equal(reaper.reaped, 0);
    } finally {
      clearInterval(sweeper);
    }
  });
});
