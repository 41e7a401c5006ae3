// Exec mode: a worker's stderr is logged line by line under its pid, each line whole however the pipe's reads cut it
// (a 64 KiB line is read in several chunks).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, startRrts, type RrtsInstance } from './harness.js';
import { request } from './client.js';

describe('exec mode: worker stderr lines are whole records', () => {
  const LONG_LINE = 65_536;
  const LINES = 8;
  let rr: RrtsInstance;
  let app: string;
  before(async () => {
    app = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-exec-output-'));
    fs.writeFileSync(
      path.join(app, 'worker.php'),
      `<?php
require_once ${JSON.stringify(path.join(ROOT, 'php/lib/rr.php'))};
ini_set('display_errors', 'stderr');
$http = Rrts\\Lite\\HttpWorker::create();
$pid = getmypid();
while ($request = $http->waitRequest()) {
    for ($i = 0; $i < ${LINES}; $i++) {
        fwrite(STDERR, "long $pid $i " . str_repeat('x', ${LONG_LINE}) . "\\n");
    }
    fwrite(STDERR, "é split " . str_repeat('é', 40000) . "\\n");
    $http->respond(200, (string) $pid);
}
`,
    );
    rr = await startRrts({ mode: 'exec', workers: 1, config: { server: { command: `php ${path.join(app, 'worker.php')}` } } });
  });
  after(async () => {
    await rr?.stop();
    fs.rmSync(app, { recursive: true, force: true });
  });

  it('each 64 KiB line is one record under the pid that wrote it, multi-byte characters intact', async () => {
    const pid = Number((await request(`${rr.url}/`)).body.toString());
    const long = (): Array<Record<string, unknown>> => rr.logs().filter((l) => String(l.msg).startsWith('long '));
    await rr.waitFor(() => long().length >= LINES && rr.logs().some((l) => String(l.msg).startsWith('é split')), `${LINES} long lines`, 10_000);
    const records = long();
    assert.equal(records.length, LINES, 'one record per line, none cut');
    for (const [i, record] of records.entries()) {
      assert.equal(record.msg, `long ${pid} ${i} ${'x'.repeat(LONG_LINE)}`);
      assert.equal(record.pid, pid);
    }
    const split = rr.logs().filter((l) => String(l.msg).startsWith('é split'));
    const want = `é split ${'é'.repeat(40000)}`;
    assert.deepEqual(
      split.map((l) => [String(l.msg).length, String(l.msg).indexOf('\ufffd')]),
      [[want.length, -1]],
    );
    assert.equal(split[0]!.msg, want);
  });
});
