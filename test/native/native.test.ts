// Tests for the native addon against real processes: pidfd open/signal/watch, SO_PEERCRED over a real unix
// socket, and the child-subreaper flag (set in a child node process so this one stays unchanged).
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadNative, nativeAddonPath, nativeUnavailableReason, socketFd, type PidfdWatch } from '../../src/native/index.js';
import { sleep } from '../support/sleep.js';

const native = loadNative();
assert.ok(native, `the native addon must load here: ${nativeUnavailableReason()}`);

// Everything a test starts, so that `after` can clean up whatever a failing test left behind.
const livePids = new Set<number>();
const openFds = new Set<number>();
const watches: PidfdWatch[] = [];
const tempDirs: string[] = [];

after(() => {
  for (const watch of watches) watch.close();
  for (const fd of openFds) native.closeFd(fd);
  for (const pid of livePids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** Starts a child and tracks its pid until it has exited and been reaped by Node. */
function track(child: ChildProcess): ChildProcess {
  assert.ok(child.pid, 'child did not start');
  const pid = child.pid;
  livePids.add(pid);
  child.once('exit', () => livePids.delete(pid));
  return child;
}

function startSleep(): { child: ChildProcess; exited: Promise<unknown> } {
  const child = track(spawn('sleep', ['30'], { stdio: 'ignore' }));
  return { child, exited: once(child, 'exit') };
}

function openPidfd(pid: number): number {
  const fd = native!.pidfdOpen(pid);
  openFds.add(fd);
  return fd;
}

function closePidfd(fd: number): void {
  openFds.delete(fd);
  native!.closeFd(fd);
}

function watch(fd: number, callback: () => void): PidfdWatch {
  const handle = native!.watchPidfd(fd, callback);
  watches.push(handle);
  return handle;
}

async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function ppidOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // "pid (comm) state ppid …": comm may contain spaces and parentheses, so read after the last ')'.
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

describe('pidfd', () => {
  test('a watch fires within 2 s of killing the process with pidfdSendSignal', async () => {
    const { child, exited } = startSleep();
    const fd = openPidfd(child.pid!);
    assert.ok(Number.isInteger(fd) && fd > 2);

    let calls = 0;
    let handle: PidfdWatch | undefined;
    const fired = new Promise<void>((resolve) => {
      handle = watch(fd, () => {
        calls++;
        resolve();
      });
    });
    native.pidfdSendSignal(fd, 9);
    await within(fired, 2000, 'watch callback');
    await exited;
    assert.equal(calls, 1);

    handle!.close();
    handle!.close(); // idempotent
    assert.throws(() => native.pidfdSendSignal(fd, 0), { code: 'ESRCH', syscall: 'pidfd_send_signal' });
    closePidfd(fd);
  });

  test('pidfdOpen of a pid that does not exist throws ESRCH', () => {
    const pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
    let pid = pidMax - 1;
    while (existsSync(`/proc/${pid}`)) pid--;
    assert.throws(
      () => native.pidfdOpen(pid),
      (error: NodeJS.ErrnoException) => {
        assert.ok(error instanceof Error);
        assert.equal(error.code, 'ESRCH');
        assert.equal(error.syscall, 'pidfd_open');
        assert.match(error.message, new RegExp(`pidfd_open\\(${pid}\\) failed`));
        return true;
      },
    );
  });

  test('bad arguments are a TypeError or RangeError, not a crash', () => {
    assert.throws(() => native.pidfdOpen('1' as unknown as number), TypeError);
    assert.throws(() => native.pidfdOpen(0), RangeError);
    assert.throws(() => native.pidfdOpen(1.5), RangeError);
    assert.throws(() => native.watchPidfd(0, undefined as unknown as () => void), TypeError);
    assert.throws(() => native.closeFd(-1), RangeError);
  });

  test('watching a process that has already exited fires at once', async () => {
    const { child, exited } = startSleep();
    const fd = openPidfd(child.pid!);
    process.kill(child.pid!, 'SIGKILL');
    await exited; // Node has reaped it: the pidfd still refers to the dead process
    const started = Date.now();
    await within(new Promise<void>((resolve) => watch(fd, resolve)), 500, 'watch of an exited process');
    assert.ok(Date.now() - started < 500);
    watches.at(-1)!.close(); // after the callback ran: a no-op
    closePidfd(fd);
  });

  test('a watch closed before the process exits never calls back', async () => {
    const { child, exited } = startSleep();
    const fd = openPidfd(child.pid!);
    let called = false;
    const handle = watch(fd, () => {
      called = true;
    });
    handle.close();
    native.pidfdSendSignal(fd, 9);
    await exited;
    await sleep(300);
    assert.equal(called, false);
    closePidfd(fd);
  });

  test('an unref()ed watch does not keep the process alive', async () => {
    // The child watches this test process (alive throughout), unrefs the watch and must still exit at once.
    const script = `
      import { createRequire } from 'node:module';
      const native = createRequire(${JSON.stringify(nativeAddonPath())})(${JSON.stringify(nativeAddonPath())});
      const fd = native.pidfdOpen(process.ppid);
      native.watchPidfd(fd, () => process.exit(3)).unref();
    `;
    const child = track(spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'inherit'] }));
    const [code] = (await within(once(child, 'exit'), 5000, 'child exit')) as [number | null];
    assert.equal(code, 0);
  });

  test('a throw in the callback is an uncaught exception', async () => {
    const script = `
      import { createRequire } from 'node:module';
      import { spawn } from 'node:child_process';
      const native = createRequire(${JSON.stringify(nativeAddonPath())})(${JSON.stringify(nativeAddonPath())});
      process.on('uncaughtException', (error) => { console.log(error.message); process.exit(0); });
      const child = spawn('sleep', ['30'], { stdio: 'ignore' });
      const fd = native.pidfdOpen(child.pid);
      native.watchPidfd(fd, () => { throw new Error('thrown from the watch'); });
      native.pidfdSendSignal(fd, 9);
    `;
    const child = track(spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] }));
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const [code] = (await within(once(child, 'exit'), 5000, 'child exit')) as [number | null];
    assert.equal(code, 0);
    assert.equal(out.trim(), 'thrown from the watch');
  });
  test('a worker thread that ends while watching does not take the process down', async () => {
    // The poll's close callback is addon code: teardown must wait for it before it unloads the addon.
    // CommonJS, like the eval'd worker (which would inherit --input-type=module).
    const script = `
      const { Worker } = require('node:worker_threads');
      const worker = new Worker(
        'const a = require(' + ${JSON.stringify(JSON.stringify(nativeAddonPath()))} + ');' +
        'a.watchPidfd(a.pidfdOpen(process.pid), () => {});' +
        'require("node:worker_threads").parentPort.postMessage("watching");',
        { eval: true },
      );
      worker.once('message', () => worker.terminate().then(() => console.log('terminated')));
    `;
    const child = track(spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] }));
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const [code, signal] = (await within(once(child, 'exit'), 5000, 'child exit')) as [number | null, string | null];
    assert.deepEqual({ code, signal, out: out.trim() }, { code: 0, signal: null, out: 'terminated' });
  });
});

describe('peerCred', () => {
  test('both ends of a unix socket connection report this process', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rrts-native-test-'));
    tempDirs.push(dir);
    const path = join(dir, 'peer.sock');
    const server = net.createServer();
    const accepted = once(server, 'connection') as Promise<[net.Socket]>;
    server.listen(path);
    await once(server, 'listening');
    const client = net.connect(path);
    try {
      await once(client, 'connect');
      const [serverSide] = await accepted;
      const expected = { pid: process.pid, uid: process.getuid!(), gid: process.getgid!() };

      const clientFd = socketFd(client);
      const serverFd = socketFd(serverSide);
      assert.ok(clientFd !== null && serverFd !== null, 'sockets must expose their fd');
      assert.deepEqual({ ...native.peerCred(clientFd) }, expected);
      assert.deepEqual({ ...native.peerCred(serverFd) }, expected);
      serverSide.destroy();
    } finally {
      client.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('a socket without a handle has no fd; a non-socket fd throws ENOTSOCK', () => {
    assert.equal(socketFd(new net.Socket()), null);
    const fd = openPidfd(process.pid);
    assert.throws(() => native.peerCred(fd), { code: 'ENOTSOCK' });
    closePidfd(fd);
  });
});

describe('child subreaper', () => {
  test('is off by default in the test process', () => {
    assert.equal(native.isChildSubreaper(), false);
  });

  test('a child that sets it adopts its orphaned grandchild', async () => {
    // The shell exits at once, leaving `sleep 5` orphaned: it must be re-parented to the child node, not init.
    // When told to, the child kills and reaps it (posix-node's waitpid, as rrts does), so no zombie is left.
    const script = `
      import { createRequire } from 'node:module';
      import { execFileSync } from 'node:child_process';
      import { readFileSync } from 'node:fs';
      const require = createRequire(${JSON.stringify(nativeAddonPath())});
      const native = require(${JSON.stringify(nativeAddonPath())});
      const posix = require('posix-node').default;
      const before = native.isChildSubreaper();
      native.setChildSubreaper();
      const orphan = Number(execFileSync('sh', ['-c', 'sleep 5 </dev/null >/dev/null 2>&1 & echo $!'], { encoding: 'utf8' }).trim());
      const stat = readFileSync('/proc/' + orphan + '/stat', 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      console.log(JSON.stringify({ before, after: native.isChildSubreaper(), orphan, ppid }));
      process.stdin.once('data', () => {
        process.kill(orphan, 'SIGKILL');
        const { ret, wstatus } = posix.waitpid(orphan, 0);
        console.log(JSON.stringify({ reaped: ret, wstatus }));
        process.exit(0);
      });
    `;
    const child = track(spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] }));
    const exited = once(child, 'exit') as Promise<[number | null, string | null]>;
    const lines: string[] = [];
    let waiting: (() => void) | undefined;
    let buffered = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      for (let end = buffered.indexOf('\n'); end >= 0; end = buffered.indexOf('\n')) {
        lines.push(buffered.slice(0, end));
        buffered = buffered.slice(end + 1);
      }
      waiting?.();
    });
    const nextLine = async (what: string): Promise<string> => {
      const failed = exited.then(([code]) => {
        throw new Error(`child exited (${code}) before ${what}`);
      });
      while (lines.length === 0) {
        await within(Promise.race([new Promise<void>((resolve) => (waiting = resolve)), failed]), 5000, what);
      }
      return lines.shift()!;
    };

    const report = JSON.parse(await nextLine('its report')) as { before: boolean; after: boolean; orphan: number; ppid: number };
    livePids.add(report.orphan);
    assert.equal(report.before, false);
    assert.equal(report.after, true);
    assert.equal(report.ppid, child.pid);
    assert.equal(ppidOf(report.orphan), child.pid, 'seen from outside too');

    child.stdin!.end('reap\n');
    const reaped = JSON.parse(await nextLine('the reap')) as { reaped: number; wstatus: number };
    assert.equal(reaped.reaped, report.orphan);
    assert.equal(reaped.wstatus & 0x7f, 9, 'killed by SIGKILL');
    livePids.delete(report.orphan);
    const [code] = await within(exited, 5000, 'child exit');
    assert.equal(code, 0);
  });
});
