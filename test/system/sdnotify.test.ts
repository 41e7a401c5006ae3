// The native sendUnixDatagram (path and abstract sockets, errors) and SdNotifier's messages, against a real unix
// datagram socket bound by python3.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { loadNative, nativeUnavailableReason } from '../../src/native/index.js';
import { monotonicUsec, SdNotifier } from '../../src/system/sdnotify.js';
import { NotifyReceiver } from './notify-receiver.js';
import { sleep } from '../support/sleep.js';

const native = loadNative();
assert.ok(native, `the native addon must load here: ${nativeUnavailableReason()}`);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-sdnotify-'));
const receivers: NotifyReceiver[] = [];
after(() => {
  for (const r of receivers) r.close();
  fs.rmSync(dir, { recursive: true, force: true });
});
const silent = pino({ level: 'silent' });

describe('sendUnixDatagram', () => {
  test('sends one datagram to a socket path', async () => {
    const socket = path.join(dir, 'notify.sock');
    const r = await NotifyReceiver.bind(socket);
    receivers.push(r);
    native.sendUnixDatagram(socket, Buffer.from('READY=1\nSTATUS=hi'));
    native.sendUnixDatagram(socket, Buffer.from(''));
    await r.waitFor((m) => m.length === 2, 'two datagrams');
    assert.deepEqual(r.messages, ['READY=1\nSTATUS=hi', '']);
  });

  test("an '@' path is an abstract socket", async () => {
    const name = `@rrts-test-${process.pid}`;
    const r = await NotifyReceiver.bind(name);
    receivers.push(r);
    native.sendUnixDatagram(name, Buffer.from('WATCHDOG=1'));
    await r.waitFor((m) => m.length === 1, 'one datagram');
    assert.deepEqual(r.messages, ['WATCHDOG=1']);
  });

  test('errors carry the errno name', () => {
    assert.throws(() => native.sendUnixDatagram(path.join(dir, 'nobody-here.sock'), Buffer.from('x')), { code: 'ENOENT', syscall: 'sendto' });
    assert.throws(() => native.sendUnixDatagram('x'.repeat(200), Buffer.from('x')), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => native.sendUnixDatagram(path.join(dir, 'a'), 'text' as unknown as Buffer), { code: 'ERR_INVALID_ARG_TYPE' });
  });
});

describe('SdNotifier', () => {
  test('does nothing without NOTIFY_SOCKET', () => {
    const sent: string[] = [];
    const n = new SdNotifier(silent, { env: {}, send: (_p, d) => sent.push(d.toString()) });
    n.ready();
    n.stopping();
    assert.equal(n.enabled, false);
    assert.deepEqual(sent, []);
  });

  test('READY with MAINPID, RELOADING with MONOTONIC_USEC, READY, STOPPING to a real socket', async () => {
    const socket = path.join(dir, 'seq.sock');
    const r = await NotifyReceiver.bind(socket);
    receivers.push(r);
    const n = new SdNotifier(silent, { env: { NOTIFY_SOCKET: socket } });
    const before = monotonicUsec();
    n.ready();
    n.reloading();
    n.reloaded();
    n.stopping();
    await r.waitFor((m) => m.length === 4, 'four datagrams');
    assert.equal(r.messages[0], `READY=1\nMAINPID=${process.pid}`);
    const usec = BigInt(/^RELOADING=1\nMONOTONIC_USEC=(\d+)$/.exec(r.messages[1]!)![1]!);
    assert.ok(usec >= before && usec <= monotonicUsec());
    assert.deepEqual(r.messages.slice(2), ['READY=1', 'STOPPING=1']);
  });

  test('WATCHDOG=1 every WATCHDOG_USEC/2 after READY, until STOPPING', async () => {
    const sent: string[] = [];
    const n = new SdNotifier(silent, { env: { NOTIFY_SOCKET: '/x', WATCHDOG_USEC: '100000' }, send: (_p, d) => sent.push(d.toString()) });
    n.ready();
    await sleep(280);
    n.stopping();
    const pings = sent.filter((s) => s === 'WATCHDOG=1').length;
    assert.ok(pings >= 2 && pings <= 6, `${pings} pings (every 50 ms for 280 ms)`);
    const count = sent.length;
    await sleep(150);
    assert.equal(sent.length, count, 'no pings after STOPPING');
    assert.equal(sent.at(-1), 'STOPPING=1');
  });

  test('endure.watchdog_sec is used when systemd did not set WATCHDOG_USEC; a WATCHDOG_PID for another process turns it off', () => {
    const sent: string[] = [];
    const other = new SdNotifier(silent, { env: { NOTIFY_SOCKET: '/x', WATCHDOG_USEC: '1000', WATCHDOG_PID: '1' }, send: (_p, d) => sent.push(d.toString()) });
    other.ready();
    other.stopping();
    const own = new SdNotifier(silent, { env: { NOTIFY_SOCKET: '/x' }, watchdogSec: 1, send: (_p, d) => sent.push(d.toString()) });
    own.ready();
    own.stopWatchdog();
    assert.deepEqual(sent, [`READY=1\nMAINPID=${process.pid}`, 'STOPPING=1', `READY=1\nMAINPID=${process.pid}`]);
  });

  test('a failing send warns once and never throws', () => {
    const warnings: string[] = [];
    const log = { warn: (m: string) => warnings.push(m) } as unknown as typeof silent;
    const n = new SdNotifier(log, { env: { NOTIFY_SOCKET: path.join(dir, 'gone.sock') } });
    n.ready();
    n.stopping();
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /cannot notify systemd/);
    const none = new SdNotifier(log, { env: { NOTIFY_SOCKET: '/x' }, send: null });
    none.ready();
    none.ready();
    assert.equal(warnings.length, 2);
  });
});
