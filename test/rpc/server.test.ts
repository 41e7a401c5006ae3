// The RPC plugin over a real socket: protocol vectors V5.1–V5.6 byte for byte, pipelining answered by seq (out of
// order), codecs (JSON, msgpack, raw; gob and protobuf refused clearly), net/rpc error texts, and robustness: bad
// frames close only their connection, 1,000 random byte strings leave the server answering.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Packr } from 'msgpackr';
import pino from 'pino';
import { AddressError, UnknownPluginError } from '../../src/errors.js';
import { Flag } from '../../src/goridge/flags.js';
import { crc32, encodeFrame } from '../../src/goridge/frame.js';
import { decodeRpc, encodeRpc } from '../../src/goridge/messages.js';
import { RpcPlugin } from '../../src/rpc/server.js';
import { registerCoreServices } from '../../src/rpc/services.js';
import { fakeHost, RawConnection, silent, startPlugin, vector } from './rpc-helpers.js';
import { xorshift } from '../support/prng.js';
import { sleep } from '../support/sleep.js';

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

function jsonCall(seq: number, method: string, arg?: unknown, flags: number = Flag.CODEC_JSON): Buffer {
  return encodeRpc({ seq, method, flags, body: Buffer.from(arg === undefined ? '' : JSON.stringify(arg)) });
}

describe('rpc plugin: protocol vectors', () => {
  const plugins: RpcPlugin[] = [];
  after(async () => {
    for (const p of plugins) await p.stop();
  });

  it('V5.1 -> V5.2: informer.Workers answer, byte for byte', async () => {
    const state = { pid: 4242, status: 1, numExecs: 3, created: 1700000000000000000, memoryUsage: 20971520, CPUPercent: 0, command: '', statusStr: 'ready' };
    const rpc = await startPlugin({ informer: { Workers: (name) => (name === 'http' ? { workers: [state] } : { workers: [] }) } });
    plugins.push(rpc);
    const c = await RawConnection.open(rpc.address);
    c.send(vector('V5.1'));
    await c.waitFrames(1);
    assert.equal(c.received().toString('hex'), vector('V5.2').toString('hex'));
    c.close();
  });

  it('V5.3 -> V5.4 and V5.5 -> V5.6 with the real core services', async () => {
    const rpc = new RpcPlugin('tcp://127.0.0.1:0', silent, process.cwd());
    registerCoreServices(rpc, fakeHost());
    await rpc.serve();
    plugins.push(rpc);
    const c = await RawConnection.open(rpc.address);
    c.send(vector('V5.3'));
    await c.waitFrames(1);
    assert.equal(c.received().toString('hex'), vector('V5.4').toString('hex'));
    c.raw.length = 0;
    c.send(vector('V5.5'));
    await c.waitFrames(2);
    assert.equal(c.received().toString('hex'), vector('V5.6').toString('hex'));
    assert.equal(c.closed, false, 'an error answer keeps the connection');
    c.close();
  });

  it('gob (G1, the Go rr CLI) gets a clear error frame with flags 0x60, seq and method echoed', async () => {
    const rpc = await startPlugin({ informer: { List: () => ['http'] } });
    plugins.push(rpc);
    const c = await RawConnection.open(rpc.address);
    c.send(vector('G1'));
    const [f] = await c.waitFrames(1);
    const msg = decodeRpc(f!);
    assert.equal(msg.flags, Flag.CODEC_GOB | Flag.ERROR);
    assert.equal(msg.seq, 0);
    assert.equal(msg.method, 'informer.List');
    assert.match(msg.body.toString(), /rrts does not support the gob RPC codec/);
    // no codec bit at all also means gob
    c.send(encodeRpc({ seq: 1, method: 'informer.List', flags: 0, body: Buffer.alloc(0) }));
    const [, g] = await c.waitFrames(2);
    assert.equal(g!.flags, Flag.CODEC_GOB | Flag.ERROR);
    // protobuf wins over JSON by priority, and is refused by name
    c.send(jsonCall(2, 'informer.List', true, Flag.CODEC_PROTO | Flag.CODEC_JSON));
    const [, , p] = await c.waitFrames(3);
    assert.equal(p!.flags, Flag.CODEC_PROTO | Flag.ERROR);
    assert.match(decodeRpc(p!).body.toString(), /protobuf/);
    assert.equal(c.closed, false);
    c.close();
  });
});

describe('rpc plugin: calls', () => {
  let rpc: RpcPlugin;
  const order: string[] = [];
  after(async () => rpc?.stop());

  it('starts on port 0 and reports the bound address', async () => {
    rpc = await startPlugin({
      test: {
        Echo: (arg) => arg,
        Slow: async (arg) => {
          await sleep(300);
          order.push('slow');
          return arg;
        },
        Fast: (arg) => {
          order.push('fast');
          return arg;
        },
        Reverse: (arg) => Buffer.from([...(arg as Buffer)].reverse()),
        Bytes: () => Buffer.from('{"a":1}'),
        Throws: () => {
          throw new Error('it broke:\n\tbadly');
        },
        ThrowsString: () => Promise.reject('plain text'), // eslint-disable-line @typescript-eslint/prefer-promise-reject-errors -- a non-Error rejection is the case under test
        Html: () => '<a&b>',
      },
    });
    assert.match(rpc.address, /^tcp:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(rpc.address, 'tcp://127.0.0.1:0');
  });

  it('pipelined requests on one connection are answered by seq, a fast one before a slow one', async () => {
    const c = await RawConnection.open(rpc.address);
    c.send(Buffer.concat([jsonCall(7, 'test.Slow', 'slow'), jsonCall(8, 'test.Fast', 'fast'), jsonCall(9, 'test.Echo', { x: [1, 2] })]));
    const frames = (await c.waitFrames(3)).map(decodeRpc);
    assert.deepEqual(
      frames.map((m) => m.seq),
      [8, 9, 7],
    );
    assert.deepEqual(order, ['fast', 'slow']);
    for (const m of frames) assert.equal(m.flags, Flag.CODEC_JSON);
    assert.deepEqual(JSON.parse(frames[1]!.body.toString()), { x: [1, 2] });
    assert.equal(frames[2]!.body.toString(), '"slow"');
    c.close();
  });

  it('JSON: the response carries only the chosen codec bit; empty argument is undefined; Go-style escaping and []byte', async () => {
    const c = await RawConnection.open(rpc.address);
    c.send(jsonCall(1, 'test.Echo', 'x', Flag.CODEC_JSON | Flag.CODEC_RAW));
    c.send(jsonCall(2, 'test.Echo'));
    c.send(jsonCall(3, 'test.Html'));
    c.send(jsonCall(4, 'test.Bytes'));
    const frames = (await c.waitFrames(4)).map(decodeRpc).sort((a, b) => a.seq - b.seq);
    assert.equal(frames[0]!.flags, Flag.CODEC_JSON);
    assert.equal(frames[0]!.body.toString(), '"x"');
    assert.equal(frames[1]!.body.toString(), 'null');
    assert.equal(frames[2]!.body.toString(), '"\\u003ca\\u0026b\\u003e"');
    assert.equal(JSON.parse(frames[3]!.body.toString()), Buffer.from('{"a":1}').toString('base64'));
    c.close();
  });

  it('msgpack: argument and result in msgpack, flags 0x10', async () => {
    const c = await RawConnection.open(rpc.address);
    c.send(encodeRpc({ seq: 3, method: 'test.Echo', flags: Flag.CODEC_MSGPACK, body: packr.pack({ name: 'http', n: [1, 2, 3] }) }));
    c.send(encodeRpc({ seq: 4, method: 'test.Bytes', flags: Flag.CODEC_MSGPACK, body: Buffer.alloc(0) }));
    const frames = (await c.waitFrames(2)).map(decodeRpc).sort((a, b) => a.seq - b.seq);
    assert.equal(frames[0]!.flags, Flag.CODEC_MSGPACK);
    assert.deepEqual(packr.unpack(frames[0]!.body), { name: 'http', n: [1, 2, 3] });
    assert.deepEqual(Buffer.from(packr.unpack(frames[1]!.body) as Uint8Array).toString(), '{"a":1}');
    c.close();
  });

  it('raw: the argument is the bytes and the result goes back as bytes; a non-bytes result is an error', async () => {
    const c = await RawConnection.open(rpc.address);
    c.send(encodeRpc({ seq: 1, method: 'test.Reverse', flags: Flag.CODEC_RAW, body: Buffer.from([1, 2, 3, 0xff]) }));
    c.send(encodeRpc({ seq: 2, method: 'test.Echo', flags: Flag.CODEC_RAW, body: Buffer.from('as is') }));
    c.send(encodeRpc({ seq: 3, method: 'test.Fast', flags: Flag.CODEC_RAW, body: Buffer.alloc(0) }));
    const frames = (await c.waitFrames(3)).map(decodeRpc).sort((a, b) => a.seq - b.seq);
    assert.equal(frames[0]!.flags, Flag.CODEC_RAW);
    assert.deepEqual([...frames[0]!.body], [0xff, 3, 2, 1]);
    assert.equal(frames[1]!.body.toString(), 'as is');
    // test.Fast echoes the argument: an empty Buffer is bytes, so this one succeeds too
    assert.equal(frames[2]!.flags, Flag.CODEC_RAW);
    c.send(encodeRpc({ seq: 4, method: 'rpc.Nope', flags: Flag.CODEC_RAW, body: Buffer.alloc(0) }));
    const [, , , e] = await c.waitFrames(4);
    assert.equal(e!.flags, Flag.CODEC_RAW | Flag.ERROR);
    c.close();
  });

  it('net/rpc error texts; the connection stays usable after each', async () => {
    const c = await RawConnection.open(rpc.address);
    const cases: Array<[string, string]> = [
      ['nodot', 'rpc: service/method request ill-formed: nodot'],
      ['nosuch.Method', "rpc: can't find service nosuch.Method"],
      ['test.Nope', "rpc: can't find method test.Nope"],
      ['test.constructor', "rpc: can't find method test.constructor"],
      ['test.__proto__', "rpc: can't find method test.__proto__"],
      ['test.Throws', 'it broke:\n\tbadly'],
      ['test.ThrowsString', 'plain text'],
    ];
    cases.forEach(([method], i) => c.send(jsonCall(100 + i, method, 'x')));
    c.send(encodeRpc({ seq: 200, method: 'test.Echo', flags: Flag.CODEC_JSON, body: Buffer.from('{not json') }));
    const frames = (await c.waitFrames(cases.length + 1)).map(decodeRpc).sort((a, b) => a.seq - b.seq);
    cases.forEach(([method, text], i) => {
      const m = frames[i]!;
      assert.equal(m.seq, 100 + i);
      assert.equal(m.method, method);
      assert.equal(m.flags, Flag.CODEC_JSON | Flag.ERROR);
      assert.equal(m.body.toString(), text);
    });
    const bad = frames[cases.length]!;
    assert.equal(bad.flags, Flag.CODEC_JSON | Flag.ERROR);
    assert.match(bad.body.toString(), /^json: /);
    c.send(jsonCall(300, 'test.Echo', 'still here'));
    const last = decodeRpc((await c.waitFrames(cases.length + 2))[cases.length + 1]!);
    assert.equal(last.body.toString(), '"still here"');
    assert.equal(c.closed, false);
    c.close();
  });

  it('a frame with 1 option closes only that connection, with no answer', async () => {
    const good = await RawConnection.open(rpc.address);
    const bad = await RawConnection.open(rpc.address);
    bad.send(encodeFrame({ flags: Flag.CODEC_JSON, options: [1], payload: 'test.Echo"x"' }));
    assert.equal(await bad.waitClosed(), true);
    assert.equal(bad.frames.length, 0);
    good.send(jsonCall(1, 'test.Echo', 'ok'));
    const [f] = await good.waitFrames(1);
    assert.equal(decodeRpc(f!).body.toString(), '"ok"');
    good.close();
  });

  it('a method length past the payload, a CRC error, an absurd length: each closes its connection only', async () => {
    const broken: Buffer[] = [];
    broken.push(encodeFrame({ flags: Flag.CODEC_JSON, options: [1, 999], payload: 'test.Echo' }));
    const crc = jsonCall(1, 'test.Echo', 'x');
    crc[7]! ^= 0xff;
    broken.push(crc);
    const huge = Buffer.alloc(20);
    huge[0] = 0x15;
    huge[1] = Flag.CODEC_JSON;
    huge.writeUInt32LE(0xffffffff, 2);
    huge.writeUInt32LE(crc32(huge, 0, 6), 6);
    broken.push(huge);
    broken.push(encodeFrame({ flags: Flag.CODEC_JSON, options: [1, 2, 3], payload: 'test.Echo' }));
    const good = await RawConnection.open(rpc.address);
    for (const bytes of broken) {
      const c = await RawConnection.open(rpc.address);
      c.send(bytes);
      assert.equal(await c.waitClosed(), true, `closed after ${bytes.toString('hex').slice(0, 40)}`);
      assert.equal(c.frames.length, 0);
    }
    good.send(jsonCall(1, 'test.Echo', 'ok'));
    assert.equal(decodeRpc((await good.waitFrames(1))[0]!).body.toString(), '"ok"');
    good.close();
  });

  it('garbage after a valid frame in the same chunk closes the connection', async () => {
    const c = await RawConnection.open(rpc.address);
    c.send(Buffer.concat([jsonCall(1, 'test.Echo', 'first'), Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')]));
    assert.equal(await c.waitClosed(), true);
  });

  it('a half frame waits for the rest (sent byte by byte)', async () => {
    const c = await RawConnection.open(rpc.address);
    const bytes = jsonCall(5, 'test.Echo', 'slowly');
    for (const b of bytes) {
      c.send(Buffer.from([b]));
      await sleep(1);
    }
    const [f] = await c.waitFrames(1);
    assert.equal(decodeRpc(f!).body.toString(), '"slowly"');
    c.close();
  });

  it('1,000 random byte strings on separate connections leave the server answering', async () => {
    const next = xorshift(0x5eed1234);
    const garbage = (): Buffer => {
      const kind = next() % 4;
      const n = 1 + (next() % 300);
      const out = Buffer.alloc(n);
      for (let i = 0; i < n; i++) out[i] = next() & 0xff;
      if (kind === 1 && n >= 12) {
        // a plausible header: version 1, random HL and flags, valid CRC, random length
        out[0] = 0x10 | (next() % 16);
        out.writeUInt32LE(crc32(out, 0, 6), 6);
      } else if (kind === 2 && n >= 20) {
        // a valid RPC header whose payload never fully arrives
        out[0] = 0x15;
        out.writeUInt32LE(n + (next() % 1000), 2);
        out.writeUInt32LE(crc32(out, 0, 6), 6);
      }
      return out;
    };
    const BATCH = 100;
    let closedByServer = 0;
    for (let i = 0; i < 1000; i += BATCH) {
      await Promise.all(
        Array.from({ length: BATCH }, async () => {
          const c = await RawConnection.open(rpc.address);
          c.send(garbage());
          // Give the server a moment to refuse it; then hang up (half frames wait for more bytes).
          if (await c.waitClosed(250)) closedByServer++;
          else c.socket.end();
          await c.waitClosed(2000);
          c.close();
        }),
      );
    }
    assert.ok(closedByServer > 500, `most garbage is refused at once (${closedByServer})`);
    const c = await RawConnection.open(rpc.address);
    c.send(jsonCall(42, 'test.Echo', 'alive'));
    const [f] = await c.waitFrames(1);
    assert.equal(decodeRpc(f!).seq, 42);
    assert.equal(decodeRpc(f!).body.toString(), '"alive"');
    c.close();
  });

  it('stop() closes open connections', async () => {
    const c = await RawConnection.open(rpc.address);
    await rpc.stop();
    assert.equal(await c.waitClosed(), true);
    await assert.rejects(RawConnection.open(rpc.address));
  });
});

describe('rpc plugin: error replies', () => {
  let rpc: RpcPlugin | null = null;
  after(async () => rpc?.stop());

  it("send the error's text; only an error that is not one of rrts's own (a bug) is logged, with its stack", async () => {
    const records: Array<Record<string, unknown>> = [];
    const log = pino({ level: 'debug' }, { write: (line: string) => records.push(JSON.parse(line) as Record<string, unknown>) });
    rpc = new RpcPlugin('tcp://127.0.0.1:0', log, process.cwd());
    rpc.register('test', {
      Bug: (arg) => (arg as { missing: { field: string } }).missing.field,
      Refused: () => {
        throw new UnknownPluginError('plugin grpc does not support workers management');
      },
    });
    await rpc.serve();
    const c = await RawConnection.open(rpc.address);
    c.send(jsonCall(1, 'test.Bug', {}));
    c.send(jsonCall(2, 'test.Refused'));
    c.send(jsonCall(3, 'test.Nope'));
    const frames = (await c.waitFrames(3)).map(decodeRpc).sort((a, b) => a.seq - b.seq);
    c.close();
    assert.deepEqual(
      frames.map((m) => [m.flags, m.body.toString()]),
      [
        [Flag.CODEC_JSON | Flag.ERROR, "Cannot read properties of undefined (reading 'field')"],
        [Flag.CODEC_JSON | Flag.ERROR, 'plugin grpc does not support workers management'],
        [Flag.CODEC_JSON | Flag.ERROR, "rpc: can't find method test.Nope"],
      ],
    );
    const errors = records.filter((r) => r['level'] === 50);
    assert.equal(errors.length, 1, JSON.stringify(records));
    assert.equal(errors[0]!['method'], 'test.Bug');
    assert.equal(errors[0]!['msg'], 'rpc: test.Bug failed unexpectedly');
    assert.match(String(errors[0]!['err']), /^TypeError: Cannot read properties of undefined \(reading 'field'\)\n {4}at /);
  });
});

describe('rpc plugin: listening', () => {
  it('warns once when tcp listens beyond loopback (no authentication), not on 127.0.0.1', async () => {
    const lines: string[] = [];
    const log = pino({ level: 'debug' }, { write: (l: string) => lines.push(l) });
    const open = new RpcPlugin('tcp://0.0.0.0:0', log, process.cwd());
    await open.serve();
    await open.stop();
    const local = new RpcPlugin('tcp://127.0.0.1:0', log, process.cwd());
    await local.serve();
    await local.stop();
    const warnings = lines.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((r) => r.level === 40);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!.msg, /no authentication/);
  });

  it('a bad DSN is refused when the plugin is made', () => {
    assert.throws(
      () => new RpcPlugin('127.0.0.1:6001', silent, process.cwd()),
      (e) => e instanceof AddressError && /invalid socket DSN/.test(e.message),
    );
    assert.throws(
      () => new RpcPlugin('tcp://nohost', silent, process.cwd()),
      (e) => e instanceof AddressError && /expected tcp:\/\/host:port/.test(e.message),
    );
  });
});

describe('rpc plugin: unix socket', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-rpc-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('listens on a relative path (mode 0600), replaces a stale socket, refuses a live one, removes its file on stop', async () => {
    const file = path.join(dir, 'rpc.sock');
    // a stale socket file: a process that died without unlinking it
    const killed = spawnSync(process.execPath, [
      '-e',
      "require('net').createServer().listen(process.argv[1], () => process.kill(process.pid, 'SIGKILL'))",
      file,
    ]);
    assert.equal(killed.signal, 'SIGKILL');
    assert.ok(fs.lstatSync(file).isSocket());

    const rpc = await startPlugin({ test: { Echo: (a) => a } }, 'unix://rpc.sock', dir);
    assert.equal(rpc.address, `unix://${file}`);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const c = await RawConnection.open(rpc.address);
    c.send(jsonCall(1, 'test.Echo', 'over unix'));
    assert.equal(decodeRpc((await c.waitFrames(1))[0]!).body.toString(), '"over unix"');

    const second = new RpcPlugin('unix://rpc.sock', silent, dir);
    await assert.rejects(second.serve(), (e) => e instanceof AddressError && /another process is listening/.test(e.message));

    await rpc.stop();
    assert.equal(await c.waitClosed(), true);
    assert.equal(fs.existsSync(file), false);
  });

  it('refuses a regular file at the socket path', async () => {
    const file = path.join(dir, 'plain');
    fs.writeFileSync(file, 'x');
    await assert.rejects(new RpcPlugin(`unix://${file}`, silent, dir).serve(), (e) => e instanceof AddressError && /not a socket/.test(e.message));
  });
});
