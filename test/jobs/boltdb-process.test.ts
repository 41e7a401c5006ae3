// The boltdb driver across processes: one owner per file (a second rrts fails at once, naming the file and the
// pid), and a writer killed with SIGKILL at random points never loses a confirmed push or ack, nor leaves a
// corrupt job behind.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { symlinkSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { JournalError } from '../../src/errors.js';
import { xorshift } from '../support/prng.js';
import { openDriver, payloadFor } from './boltdb-helpers.js';
import { tempDir } from './boltdb-tmp.js';
import { withoutTrace } from './trace-headers.js';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'boltdb-child.js');
const started = new Set<ChildProcess>();

after(() => {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

interface Child {
  process: ChildProcess;
  lines: string[];
  /** resolves when the child printed `count` lines starting with `prefix`, or rejects after `timeoutMs` / on exit */
  waitLines(prefix: string, count: number, timeoutMs: number): Promise<void>;
  exited: Promise<void>;
}

/** `fileSizeLimit`: the shell's `ulimit -f` (blocks) for the child, so its writes fail past that size. */
function startChild(args: string[], fileSizeLimit?: number): Child {
  const child =
    fileSizeLimit === undefined
      ? spawn(process.execPath, [CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn('sh', ['-c', `ulimit -f ${fileSizeLimit} && exec "$0" "$@"`, process.execPath, CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  started.add(child);
  const lines: string[] = [];
  let partial = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
    for (const listener of listeners) listener();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  // 'close': every byte the child wrote before it died has been read
  const exited = once(child, 'close').then(() => {
    started.delete(child);
    for (const listener of listeners) listener();
  });
  return {
    process: child,
    lines,
    exited,
    waitLines(prefix, count, timeoutMs) {
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => done(new Error(`child printed ${matching()} '${prefix}' lines of ${count} in ${timeoutMs} ms; stderr: ${stderr}`)),
          timeoutMs,
        );
        const matching = (): number => lines.filter((line) => line.startsWith(prefix)).length;
        const check = (): void => {
          if (matching() >= count) done();
          else if (child.exitCode !== null || child.signalCode !== null)
            done(new Error(`child exited (${child.exitCode ?? child.signalCode}); stderr: ${stderr}`));
        };
        const done = (error?: Error): void => {
          clearTimeout(timer);
          listeners.delete(check);
          if (error) reject(error);
          else resolve();
        };
        listeners.add(check);
        check();
      });
    },
  };
}

async function kill(child: Child): Promise<void> {
  child.process.kill('SIGKILL');
  await child.exited;
}

describe('boltdb: one owner per file', () => {
  test('a second process fails at once with the file and the owner\u2019s pid; after a kill -9 of the owner it opens', async () => {
    const dir = tempDir();
    const owner = startChild(['hold', dir]);
    try {
      await owner.waitLines('ready', 1, 20_000);
      await assert.rejects(openDriver(dir), (error: Error) => {
        assert.ok(error instanceof JournalError && error.reason === 'locked', String(error));
        assert.match(error.message, new RegExp(`rr\\.db is in use by another process \\(pid ${owner.process.pid}\\)`));
        assert.ok(error.message.includes(path.join(dir, 'rr.db')), error.message);
        return true;
      });
    } finally {
      await kill(owner);
    }
    // the kernel dropped the lock with the process
    const { driver } = await openDriver(dir);
    await driver.stop();
  });

  test('two pipelines of one process cannot share a file', async () => {
    const dir = tempDir();
    const first = await openDriver(dir, { name: 'one' });
    await assert.rejects(openDriver(dir, { name: 'two' }), /boltdb pipeline 'two': .*rr\.db is already used by the boltdb pipeline 'one' of this rrts/);
    // the same file through a symlinked folder
    const link = path.join(tempDir(), 'link');
    symlinkSync(dir, link);
    await assert.rejects(openDriver(link, { name: 'three' }), /already used by the boltdb pipeline 'one'/);
    await first.driver.stop();
    const second = await openDriver(dir, { name: 'two' });
    await second.driver.stop();
  });
});

describe('boltdb: kill -9', () => {
  test('a writer killed at random points loses no confirmed push or ack and leaves no corrupt job', async (t) => {
    const dir = tempDir();
    const next = xorshift(0x5eed1234);
    /** pushed and confirmed, not confirmed acked: must be in the file */
    const owed = new Set<string>();
    const acked = new Set<string>();
    const rounds = 8;
    let tornTails = 0;
    for (let round = 0; round < rounds; round++) {
      const child = startChild(['churn', dir, String(round)]);
      try {
        await child.waitLines('ready', 1, 20_000);
        // kill after a random number of confirmed pushes, in the middle of whatever is being written then
        await child.waitLines('pushed', 5 + (next() % 150), 30_000);
      } finally {
        await kill(child);
      }
      for (const line of child.lines) {
        const [what, id] = line.split(' ');
        if (what === 'pushed' && id) owed.add(id);
        // an ack under way at the kill may or may not have reached the disk
        if (what === 'acking' && id) owed.delete(id);
        if (what === 'acked' && id) acked.add(id);
      }

      const { driver, queue, context } = await openDriver(dir);
      await driver.run();
      const state = await driver.state();
      const jobs = await queue.takeN(state.active, 20_000);
      const found = new Set<string>();
      for (const job of jobs) {
        const id = job.item.id;
        assert.ok(!found.has(id), `job ${id} twice in the file`);
        found.add(id);
        assert.ok(/^r\d+-\d+-L\d+$/.test(id), `a job that was never pushed: ${id}`);
        assert.ok(job.item.payload.equals(payloadFor(id)), `job ${id}: payload corrupt`);
        assert.deepEqual(withoutTrace(job.item.headers), { id: [id] });
        assert.ok(!acked.has(id), `job ${id} was acked (confirmed) and came back`);
      }
      for (const id of owed) assert.ok(found.has(id), `round ${round}: job ${id} was confirmed pushed and is lost`);
      // jobs found but not confirmed were pushed or acked when the kill came: at-least-once, not loss
      for (const id of found) owed.add(id);
      assert.ok(!context.records.some((r) => r.level >= 50), JSON.stringify(context.records));
      if (context.records.some((r) => typeof r.bytes === 'number')) tornTails += 1;
      await driver.stop();
    }
    assert.ok(owed.size > 0 && acked.size > 0, `the rounds pushed and acked (${owed.size} left, ${acked.size} acked)`);
    t.diagnostic(`${rounds} kills: ${acked.size} jobs acked, ${owed.size} left in the file, ${tornTails} torn last records cut off`);
  });
});

describe('boltdb: a failed write', () => {
  test('a write past the disk’s limit fails that push and every later one, names the file, and loses nothing confirmed', async () => {
    const dir = tempDir();
    const child = startChild(['fill', dir], 400);
    try {
      await child.waitLines('stopped', 1, 30_000);
    } finally {
      await kill(child);
    }
    const failed = child.lines.find((line) => line.startsWith('failed '));
    assert.ok(failed, child.lines.slice(-5).join('\n'));
    assert.match(failed, new RegExp(`cannot write ${path.join(dir, 'rr.db').replace(/[.]/g, '\\.')}: .*EFBIG`));
    // the journal stops at the first failed write: a later push cannot land after a hole
    assert.match(
      child.lines.find((line) => line.startsWith('after '))!,
      /cannot write .*EFBIG/,
    );
    assert.match(
      child.lines.find((line) => line.startsWith('state '))!,
      /cannot write .*EFBIG/,
    );

    const pushed = child.lines.filter((line) => line.startsWith('pushed ')).map((line) => line.slice('pushed '.length));
    assert.ok(pushed.length > 0);
    const { driver, queue, context } = await openDriver(dir);
    // the failed write had put the first part of its batch in the file: cut off on open
    assert.ok(
      context.records.some((r) => typeof r.bytes === 'number' && r.bytes > 0),
      JSON.stringify(context.records),
    );
    await driver.run();
    const jobs = await queue.takeN((await driver.state()).active);
    assert.deepEqual(
      jobs.map((job) => job.item.id),
      pushed,
    );
    for (const job of jobs) assert.ok(job.item.payload.equals(payloadFor(job.item.id)), `job ${job.item.id}: payload corrupt`);
    await driver.stop();
  });
});
