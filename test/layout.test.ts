// The tests' layout: only whole-server tests (test/integration, test/soak) use the integration harnesses, which
// start a real rrts; a unit test takes what it needs from test/support.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './support/paths.js';

const WHOLE_SERVER = ['integration', 'soak'];

function testSources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return testSources(full);
    return e.name.endsWith('.ts') ? [full] : [];
  });
}

describe('test layout', () => {
  it('no test outside test/integration and test/soak imports the integration harnesses', () => {
    const testDir = path.join(ROOT, 'test');
    const offenders = testSources(testDir)
      .filter((file) => !WHOLE_SERVER.includes(path.relative(testDir, file).split(path.sep)[0]!))
      .filter((file) => /from\s+'[^']*integration\/(prod-)?harness\.js'/.test(fs.readFileSync(file, 'utf8')))
      .map((file) => path.relative(ROOT, file));
    assert.deepEqual(offenders, []);
  });
});
