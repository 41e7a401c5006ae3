// /proc/<pid>/stat parsing against real processes: a name with spaces and ')', CPU times, and the informer's CPU %
// that is computed from them.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { procStat } from '../../src/system/proc.js';
import { lifetimeCpuPercent } from '../../src/pool/info.js';
import { delay } from '../../src/time.js';

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

describe('procStat', () => {
  it('reads state, parent and CPU times of a process whose name holds spaces and a parenthesis', async () => {
    // The kernel's name of a process is its executable's file name: a copy of sleep named like this
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-proc-'));
    const program = path.join(dir, 'x) y (z');
    fs.copyFileSync('/usr/bin/sleep', program);
    fs.chmodSync(program, 0o755);
    const child = spawn(program, ['30'], { stdio: 'ignore' });
    try {
      assert.ok(child.pid, 'the copy of sleep started');
      const stat = procStat(child.pid);
      assert.ok(stat, `/proc/${child.pid}/stat is there`);
      assert.equal(stat.ppid, process.pid);
      assert.match(stat.state, /^[RSD]$/);
      for (const field of ['utime', 'stime', 'startTime'] as const) {
        assert.ok(Number.isInteger(stat[field]) && stat[field] >= 0, `${field} is a tick count, got ${stat[field]}`);
      }
      assert.ok(stat.startTime >= procStat(process.pid)!.startTime, 'it started after this test process');
    } finally {
      child.kill('SIGKILL');
      await exited(child);
      fs.rmSync(dir, { recursive: true, force: true });
    }
    assert.equal(procStat(child.pid!), null, 'gone once reaped');
  });

  it('gives the informer a CPU % above 0 for a busy process and 0 for a gone one', async () => {
    const child = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
    const pid = child.pid!;
    try {
      // wait (bounded) until the kernel has counted some of its CPU time
      for (let i = 0; i < 500; i++) {
        const stat = procStat(pid);
        if (stat && stat.utime + stat.stime >= 5) break;
        await delay(20);
      }
      const stat = procStat(pid)!;
      assert.ok(stat.utime + stat.stime >= 5, `the busy loop used CPU time (${stat.utime} + ${stat.stime} ticks)`);
      assert.ok(lifetimeCpuPercent(pid) > 0, `CPU % of a busy loop, got ${lifetimeCpuPercent(pid)}`);
    } finally {
      child.kill('SIGKILL');
      await exited(child);
    }
    assert.equal(lifetimeCpuPercent(pid), 0);
  });
});
