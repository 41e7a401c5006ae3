// The child registry: every process rrts starts goes through spawnChild (no other module of src/ imports
// child_process, and the dependencies src/ imports do not spawn where the orphan reaper runs); the forced-exit kill
// SIGKILLs those children synchronously, with the whole process group of a detached one, never a collected one.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isKnownChild, killSpawnedChildren, spawnChild } from '../../src/system/children.js';
import { procStat } from '../../src/system/proc.js';
import { sleep } from '../support/sleep.js';

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
  for (let i = 0; i < 200 && !predicate(); i++) await sleep(25);
  assert.ok(predicate(), `timed out waiting for ${what}`);
}

describe('killSpawnedChildren', () => {
  it('SIGKILLs every spawned child, and the process group of a detached one', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-children-'));
    const grandchildFile = path.join(dir, 'grandchild.pid');
    // a detached leader whose background grandchild stays in its group; and a plain child in ours
    const leader = spawnChild('sh', ['-c', `sleep 300 & echo $! > ${grandchildFile}; wait`], { detached: true, stdio: 'ignore' });
    const plain = spawnChild('sleep', ['300'], { stdio: 'ignore' });
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

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
/** the compiled sources, what runs: type-only imports are gone */
const compiled = path.join(repo, 'dist', 'src');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(full);
    return /\.(ts|js|mjs|cjs)$/.test(e.name) && !e.name.endsWith('.d.ts') ? [full] : [];
  });
}

/** import/require/import() of child_process or cluster (its fork starts a process), with or without the node: prefix */
const CHILD_PROCESS = /(?:from\s+|require\s*\(\s*|import\s*\(\s*)['"](?:node:)?(?:child_process|cluster)['"]/;

describe('spawnChild is the only way rrts starts a process', () => {
  it('no module of src/ but system/children.ts imports child_process or cluster', () => {
    const bypassing = sourceFiles(compiled)
      .filter((file) => CHILD_PROCESS.test(fs.readFileSync(file, 'utf8')))
      .map((file) => path.relative(compiled, file));
    assert.deepEqual(bypassing, [path.join('system', 'children.js')]);
  });

  it('the packages src/ imports do not spawn processes of their own, but for the reviewed ones', () => {
    // why each of these may stay: the orphan reaper could collect a child they start before libuv does
    const reviewed: Record<string, string> = {
      commander: 'spawns only for executable subcommands, which rrts does not declare',
      pidusage: "supervisor.ts calls it only off Linux, where there is no orphan reaper (it runs 'getconf' or 'ps')",
      'prom-client': 'imports cluster for AggregatorRegistry, which messages the front processes and never forks',
    };
    const imported = new Set<string>();
    for (const file of sourceFiles(compiled)) {
      for (const m of fs.readFileSync(file, 'utf8').matchAll(/from\s+['"]([^'"./][^'"]*)['"]/g)) {
        const spec = m[1]!;
        if (spec.startsWith('node:')) continue;
        imported.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
      }
    }
    assert.ok(imported.has('pino'), `the scan found the packages src/ imports: ${[...imported].join(', ')}`);
    const spawning = [...imported].filter((pkg) => {
      const dir = path.join(repo, 'node_modules', pkg);
      // their own tests, benchmarks and examples are not loaded at runtime
      const files = sourceFiles(dir).filter((f) => !/^(test|tests|benchmarks?|examples?|node_modules)$/.test(path.relative(dir, f).split(path.sep)[0]!));
      return files.some((f) => CHILD_PROCESS.test(fs.readFileSync(f, 'utf8')));
    });
    assert.deepEqual(spawning.sort(), Object.keys(reviewed).sort());
  });
});
