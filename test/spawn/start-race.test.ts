// waitForStart, the race of a start step against the process's exit and a deadline, with node:test's mock timers
// (the deadline is moved by hand, so nothing here depends on how fast the machine is).
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { waitForStart, type StartRace } from '../../src/spawn/start-race.js';

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (err: Error) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A race whose exit the test settles, and counts of the errors it was asked to build. */
function race(exitError: (exit: string) => Error | Promise<Error> = (exit) => new Error(`exited: ${exit}`)) {
  const exited = deferred<string>();
  const calls = { exit: 0, timeout: 0 };
  const options: StartRace<string> = {
    exited: exited.promise,
    timeoutMs: 1_000,
    exitError: (exit) => {
      calls.exit++;
      return exitError(exit);
    },
    timeoutError: () => {
      calls.timeout++;
      return new Error('too late');
    },
  };
  return { exited, calls, options };
}

/** Lets the promise callbacks queued so far run. */
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('waitForStart', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout'] }));
  afterEach(() => mock.timers.reset());

  it("resolves with the step's value, and the deadline is then gone", async () => {
    const r = race();
    const step = deferred<number>();
    const started = waitForStart(step.promise, r.options);
    step.resolve(42);
    assert.equal(await started, 42);
    mock.timers.tick(5_000);
    r.exited.resolve('later');
    await turn();
    assert.deepEqual(r.calls, { exit: 0, timeout: 0 }, 'neither the deadline nor a later exit makes an error');
  });

  it("rejects with the step's own error", async () => {
    const r = race();
    const step = deferred<number>();
    const started = waitForStart(step.promise, r.options);
    step.reject(new Error('bad handshake'));
    await assert.rejects(started, /bad handshake/);
  });

  it('rejects with the exit error when the process exits first', async () => {
    const r = race();
    const started = waitForStart(deferred<number>().promise, r.options);
    r.exited.resolve('code 255');
    await assert.rejects(started, /exited: code 255/);
    assert.deepEqual(r.calls, { exit: 1, timeout: 0 });
  });

  it('rejects with the timeout error when the deadline passes first, and a later exit builds no error', async () => {
    const r = race();
    const started = waitForStart(deferred<number>().promise, r.options);
    mock.timers.tick(999);
    await turn();
    assert.equal(r.calls.timeout, 0, 'not before the deadline');
    mock.timers.tick(1);
    await assert.rejects(started, /too late/);
    r.exited.resolve('killed');
    await turn();
    assert.deepEqual(r.calls, { exit: 0, timeout: 1 });
  });

  it('once the process exited, a slow exit error is not overtaken by the deadline', async () => {
    const lastOutput = deferred<void>();
    const r = race(async (exit) => {
      await lastOutput.promise;
      return new Error(`exited: ${exit}`);
    });
    const started = waitForStart(deferred<number>().promise, r.options);
    r.exited.resolve('SIGSEGV');
    await turn();
    mock.timers.tick(10_000);
    lastOutput.resolve();
    await assert.rejects(started, /exited: SIGSEGV/);
    assert.equal(r.calls.timeout, 0);
  });

  it('a step that settles while the exit error is being built still wins, as the first answer', async () => {
    const lastOutput = deferred<void>();
    const r = race(async (exit) => {
      await lastOutput.promise;
      return new Error(`exited: ${exit}`);
    });
    const step = deferred<string>();
    const started = waitForStart(step.promise, r.options);
    r.exited.resolve('code 0');
    await turn();
    step.resolve('ready');
    lastOutput.resolve();
    assert.equal(await started, 'ready');
  });

  it('an exit error that throws still answers, with what it threw', async () => {
    const r = race(() => {
      throw new Error('cannot read its output');
    });
    const started = waitForStart(deferred<number>().promise, r.options);
    r.exited.resolve('code 1');
    await assert.rejects(started, /cannot read its output/);
  });
});
