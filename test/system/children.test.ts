// The child registry's forced-exit kill: every child Node spawned is SIGKILLed synchronously, with its whole process
// group when it was spawned detached (what it started in the background), and a collected child is never signalled.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isKnownChild, killSpawnedChildren, trackEverySpawn } from '../../src/system/children.js';
import { procStat } from '../../src/system/proc.js';

const alive = (pid: number): boolean => {
  const s = procStat(pid);
  return s !== null && s.state !== 'Z';
};

function exited(child: ChildProcess): Promise<string | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.signalCode);
    else child.once('exit', (_code, signal) => resolve(signal));
  });
}

async function waitFor(predicate: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !predicate(); i++) await new Promise((r) => setTimeout(r, 25));
  assert.ok(predicate(), `timed out waiting for ${what}`);
}

describe('killSpawnedChildren', () => {
  it('SIGKILLs every spawned child, and the process group of a detached one', async () => {
    trackEverySpawn();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-children-'));
    const grandchildFile = path.join(dir, 'grandchild.pid');
    // a detached leader whose background grandchild stays in its group; and a plain child in ours
    const leader = spawn('sh', ['-c', `sleep 300 & echo $! > ${grandchildFile}; wait`], { detached: true, stdio: 'ignore' });
    const plain = spawn('sleep', ['300'], { stdio: 'ignore' });
    let grandchild = 0;
    try {
      await waitFor(() => fs.existsSync(grandchildFile) && fs.readFileSync(grandchildFile, 'utf8').trim() !== '', 'the background grandchild');
      grandchild = Number(fs.readFileSync(grandchildFile, 'utf8').trim());
      assert.ok(alive(grandchild) && isKnownChild(leader.pid!) && isKnownChild(plain.pid!));

      assert.ok(killSpawnedChildren() >= 2);
      assert.deepEqual(await Promise.all([exited(leader), exited(plain)]), ['SIGKILL', 'SIGKILL']);
      await waitFor(() => !alive(grandchild), `the grandchild ${grandchild} to die with its group`);
      assert.ok(!isKnownChild(leader.pid!) && !isKnownChild(plain.pid!), 'collected children leave the registry');
      assert.equal(killSpawnedChildren(), 0, 'nothing left to signal');
    } finally {
      for (const pid of [leader.pid, plain.pid, grandchild]) {
        try {
          if (pid) process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
