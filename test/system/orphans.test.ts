// The orphan reaper against children Node spawned itself: their exits belong to libuv, never to the sweep.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import pino from 'pino';
import { OrphanReaper } from '../../src/system/orphans.js';

describe('orphan reaper', () => {
  const reaper = new OrphanReaper(pino({ level: 'silent' }));
  after(() => reaper.stop());

  it('leaves the children a library spawns with child_process to Node, even when sweeping all the time', async () => {
    reaper.start();
    // sweep as often as the event loop allows while 50 short-lived children come and go (pidusage's first call
    // runs `getconf` this way): a sweep that reaped one would leave its callback uncalled
    const sweeper = setInterval(() => reaper.sweep(), 0);
    try {
      const outcomes = await Promise.all(
        Array.from(
          { length: 50 },
          () =>
            new Promise<string>((resolve) => {
              const timer = setTimeout(() => resolve('no exit seen within 10 s'), 10_000);
              execFile('sh', ['-c', 'exit 3'], (err) => {
                clearTimeout(timer);
                resolve(err && 'code' in err ? `exit ${String(err.code)}` : `unexpected: ${String(err)}`);
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
});
