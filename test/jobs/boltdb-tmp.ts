// Temp folders for the boltdb tests: each call gets a fresh folder under os.tmpdir(), all removed when the test
// file ends.
import { after } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const made: string[] = [];

after(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'rrts-boltdb-test-'));
  made.push(dir);
  return dir;
}
