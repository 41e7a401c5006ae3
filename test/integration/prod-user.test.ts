// server.user: with rrts as root, exec workers, the fork master and its workers, and on_init (server.on_init.user)
// run as that user, and still serve; an unknown user stops the start with a message naming server.user.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { MODES } from './harness.js';
import { get, readableCopyOfRrts, serve, statusField } from './prod-harness.js';

// The fixture from a copy every user can read: the workers run as nobody, and the checkout may be in a 0700 home.
const FIXTURE = (): string => path.join(readableCopyOfRrts(), 'test', 'fixtures', 'php', 'worker.php');

const NOBODY = 65534;
const isRoot = process.geteuid?.() === 0;

for (const mode of MODES) {
  describe(`server.user (${mode} mode)`, { skip: !isRoot && 'needs root', timeout: 60_000 }, () => {
    test('workers (and the fork master) run as nobody and serve', async () => {
      const rrts = await serve({
        dirMode: 0o755,
        readableCopy: true,
        config: {
          server: {
            command: `php ${FIXTURE()}`,
            user: 'nobody',
            fork: { enabled: mode === 'fork' },
            on_init: { command: 'id -u -n', user: 'nobody' },
          },
        },
      });
      try {
        const expected = mode === 'fork' ? 5 : 2; // 2 workers (+ the root, the master and its parked spare)
        await rrts.waitFor(() => rrts.descendants().length === expected, `${expected} processes under rrts`);
        const all = rrts.descendants();
        for (const pid of all) {
          assert.equal(statusField(pid, 'Uid'), `${NOBODY}\t${NOBODY}\t${NOBODY}\t${NOBODY}`, `uid of ${pid}`);
          assert.equal(statusField(pid, 'Gid'), `${NOBODY}\t${NOBODY}\t${NOBODY}\t${NOBODY}`, `gid of ${pid}`);
          assert.equal(statusField(pid, 'Groups'), '', `supplementary groups of ${pid}`);
        }
        for (let i = 0; i < 10; i++) {
          const r = await get(`${rrts.url}/pid`);
          assert.equal(r.kind, 'ok');
          assert.ok(all.includes(Number(r.body)), `answered by ${r.body}`);
        }
        assert.match(rrts.stderr, /nobody/, 'on_init ran as nobody');
        // Upload temp files belong to server.user, as RoadRunner chowns them: the worker can read what it was given.
        const data = Buffer.from('a file the worker must be able to read\n');
        const form = new FormData();
        form.append('doc', new Blob([data]), 'doc.txt');
        const upload = await fetch(`${rrts.url}/echo`, { method: 'POST', body: form });
        assert.equal(upload.status, 200);
        const doc = ((await upload.json()) as { uploads: { doc: { exists: boolean; sha256: string | false } } }).uploads.doc;
        assert.equal(doc.exists, true);
        assert.equal(doc.sha256, createHash('sha256').update(data).digest('hex'), 'the worker (nobody) read the temp file');
        rrts.proc.kill('SIGTERM');
        assert.equal((await rrts.exited).code, 0, rrts.stderr.slice(-2000));
      } finally {
        await rrts.kill();
      }
    });

    if (mode === 'exec') {
      test('a unix socket relay is usable by the workers', async () => {
        const rrts = await serve({
          dirMode: 0o755,
          readableCopy: true,
          config: { server: { command: `php ${FIXTURE()}`, user: 'nobody', relay: 'unix://relay.sock' } },
        });
        try {
          const r = await get(`${rrts.url}/pid`);
          assert.equal(r.kind, 'ok');
          assert.equal(statusField(Number(r.body), 'Uid')?.split('\t')[0], String(NOBODY));
        } finally {
          await rrts.kill();
        }
      });
    }

    test('an unknown user is a config error naming server.user', async () => {
      const rrts = await serve({
        expectFailure: true,
        config: { server: { command: `php ${FIXTURE()}`, user: 'no-such-user-here', fork: { enabled: mode === 'fork' } } },
      });
      try {
        const exit = await rrts.exited;
        assert.equal(exit.code, 1);
        assert.match(rrts.stderr, /key 'server\.user'.*unknown user "no-such-user-here"/);
      } finally {
        await rrts.kill();
      }
    });
  });
}
