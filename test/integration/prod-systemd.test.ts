// systemd's notify protocol with a real `rrts serve`: READY=1 (with MAINPID) once serving, RELOADING=1 + READY=1
// around a SIGHUP reset, WATCHDOG=1 pings from endure.watchdog_sec, STOPPING=1 on SIGTERM; both pool modes.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FIXTURE, MODES } from './harness.js';
import { serve } from './prod-harness.js';
import { NotifyReceiver } from '../system/notify-receiver.js';

for (const mode of MODES) {
  describe(`systemd notify (${mode} mode)`, { timeout: 60_000 }, () => {
    test('READY=1, RELOADING=1, READY=1, STOPPING=1 in order, and watchdog pings', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-notify-'));
      const socket = path.join(dir, 'notify.sock');
      const receiver = await NotifyReceiver.bind(socket);
      const rrts = await serve({
        config: { server: { command: `php ${FIXTURE}`, fork: { enabled: mode === 'fork' } }, endure: { watchdog_sec: 1 } },
        env: { NOTIFY_SOCKET: socket },
      });
      try {
        const states = (): string[] => receiver.messages.filter((m) => m !== 'WATCHDOG=1');
        await receiver.waitFor(() => states().length === 1, 'READY=1');
        assert.equal(states()[0], `READY=1\nMAINPID=${rrts.proc.pid}`);
        rrts.proc.kill('SIGHUP');
        await receiver.waitFor(() => states().length === 3, 'RELOADING=1 and READY=1');
        assert.match(states()[1]!, /^RELOADING=1\nMONOTONIC_USEC=\d+$/);
        assert.equal(states()[2], 'READY=1');
        await receiver.waitFor((m) => m.includes('WATCHDOG=1'), 'a watchdog ping', 3_000);
        rrts.proc.kill('SIGTERM');
        assert.equal((await rrts.exited).code, 0, rrts.stderr.slice(-2000));
        await receiver.waitFor(() => states().length === 4, 'STOPPING=1');
        assert.equal(states()[3], 'STOPPING=1');
        assert.equal(receiver.messages.at(-1), 'STOPPING=1', 'no ping after STOPPING=1');
      } finally {
        receiver.close();
        await rrts.kill();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
