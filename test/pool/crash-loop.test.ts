// The crash-loop policy (src/pool/crash-loop.ts) and the pool that follows it, with in-memory workers: the back-off
// steps and cap, one error when a loop begins and one line when it ends, /ready 503 meanwhile, and the reset.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import pino from 'pino';
import { backOffDelay, CrashLoop } from '../../src/pool/crash-loop.js';
import { readinessOf } from '../../src/pool/capabilities.js';
import { WorkerPool } from '../../src/pool/pool.js';
import { fakeSpawner, job, sink, until } from './fake-spawner.js';
import { poolConfig } from '../support/pool-config.js';

/** A pino logger whose records the test reads. */
function capture(): { log: pino.Logger; records: Array<{ level: number; msg: string }> } {
  const records: Array<{ level: number; msg: string }> = [];
  const out = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) records.push(JSON.parse(line) as { level: number; msg: string });
      done();
    },
  });
  return { log: pino({ level: 'debug' }, out), records };
}

const ERROR = 50;
const WARN = 40;
const INFO = 30;
const DEBUG = 20;

describe('crash-loop policy', () => {
  test('back-off: none before a failure, then 100 ms doubling, capped at 10 s', () => {
    assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 50].map(backOffDelay), [0, 100, 200, 400, 800, 1_600, 3_200, 6_400, 10_000, 10_000, 10_000]);
  });

  test('two failures are warnings; the third is a crash loop, logged once; then debug; the end is logged once', async () => {
    const { log, records } = capture();
    const loop = new CrashLoop('http: workers', log);
    for (let i = 1; i <= 6; i++) loop.failed(`cannot start a worker: boom ${i}`);
    assert.equal(loop.looping, true);
    loop.succeeded();
    loop.succeeded(); // not in a loop any more: nothing to say
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(
      records.map((r) => r.level),
      [WARN, WARN, ERROR, DEBUG, DEBUG, DEBUG, INFO],
    );
    assert.match(records[0]!.msg, /cannot start a worker: boom 1; next attempt in 100 ms/);
    assert.match(records[2]!.msg, /^http: workers: crash loop, 3 failed starts in a row \(cannot start a worker: boom 3\)/);
    assert.equal(records[6]!.msg, 'http: workers: the crash loop is over after 6 failed starts');
    assert.equal(loop.looping, false);
    assert.equal(loop.delay(), 0);
  });
});

describe('a pool in a crash loop', () => {
  test('is not ready while its workers keep failing to start, although one still serves; ready once a start holds', async () => {
    const fake = fakeSpawner();
    const { log, records } = capture();
    const pool = new WorkerPool('http', poolConfig({ numWorkers: 2 }), fake.spawner, log);
    try {
      await pool.start();
      assert.equal(readinessOf(pool), 200);
      fake.failNextStarts = 4;
      const [first] = pool.list();
      first!.kill();
      await until(() => pool.crashLooping, 'the third failed start');
      assert.equal(readinessOf(pool), 503, 'not ready in a crash loop, though one worker is idle');
      // the worker that was there before the loop serves; that says nothing about starts: still a loop
      const served = pool.exec(job, sink);
      await until(() => fake.workers[1]!.pending === 1, 'the job on the surviving worker');
      fake.workers[1]!.answer();
      await served;
      assert.equal(pool.crashLooping, true);
      assert.equal(records.filter((r) => r.msg.includes('crash loop, 3 failed starts')).length, 1);
      // the fifth start holds: after EARLY_DEATH_MS (2 s) up, the loop is over
      await until(() => fake.alive().length === 2, 'the replacement that started', 15_000);
      await until(() => !pool.crashLooping, 'the end of the crash loop', 5_000);
      assert.equal(readinessOf(pool), 200);
      // the killed worker had served nothing within EARLY_DEATH_MS of its start: it counts too
      assert.equal(records.filter((r) => r.msg.includes('the crash loop is over after 5 failed starts')).length, 1);
      assert.equal(records.filter((r) => r.level === ERROR).length, 1, 'one error for the whole loop');
    } finally {
      await pool.destroy(100);
    }
  });
});
