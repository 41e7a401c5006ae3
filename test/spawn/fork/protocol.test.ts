// The fork control protocol's decoders (src/spawn/fork/protocol.ts): each message of docs/protocol.md §6 as the PHP
// side sends it, and what a message that does not match becomes.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Packr } from 'msgpackr';
import { ProtocolError } from '../../../src/errors.js';
import { decodeHello, decodeMasterMessage, decodeRootMessage, answerKey } from '../../../src/spawn/fork/protocol.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

function protocolError(pattern: RegExp): (err: unknown) => boolean {
  return (err) => err instanceof ProtocolError && pattern.test(err.message);
}

describe('fork control protocol: messages from a root', () => {
  it('decodes every message a root sends', () => {
    const ready = { op: 'ready', pid: 10, php: '8.2.7', opcache: true, preload: null, resources: 0, root: true, warm: true };
    assert.deepEqual(decodeRootMessage(ready), ready);
    assert.deepEqual(decodeRootMessage({ op: 'generation', id: 1, pid: 11 }), { op: 'generation', id: 1, pid: 11 });
    assert.deepEqual(decodeRootMessage({ op: 'generation_failed', id: 2, error: 'the opcache is full' }), {
      op: 'generation_failed',
      id: 2,
      error: 'the opcache is full',
    });
    assert.deepEqual(decodeRootMessage({ op: 'pong', id: 3, masters: 2 }), { op: 'pong', id: 3, masters: 2 });
    assert.deepEqual(decodeRootMessage({ op: 'exited', pid: 11, code: null, signal: 9 }), { op: 'exited', pid: 11, code: null, signal: 9 });
    assert.deepEqual(decodeRootMessage({ op: 'error', error: 'unknown op x' }), { op: 'error', error: 'unknown op x' });
  });

  it('names the op and the field of a message that does not match', () => {
    assert.throws(() => decodeRootMessage({ op: 'generation', id: 1 }), protocolError(/'generation' message: field 'pid' must be an integer, got nothing/));
    assert.throws(
      () => decodeRootMessage({ op: 'exited', pid: 3, code: 'x', signal: null }),
      protocolError(/'exited' message: field 'code' must be an integer, got the string "x"/),
    );
    assert.throws(
      () => decodeRootMessage({ op: 'ready', pid: 1, php: '8.2', opcache: 1, preload: null, resources: 0 }),
      protocolError(/'ready' message: field 'opcache' must be a boolean, got number 1/),
    );
    assert.throws(() => decodeRootMessage({ op: 'forked', id: 1, pid: 2 }), protocolError(/unknown op 'forked' from a fork root/));
    assert.throws(() => decodeRootMessage([1, 2]), protocolError(/must be a map, got an array/));
    assert.throws(() => decodeRootMessage({ pid: 1 }), protocolError(/needs a string 'op', got nothing/));
  });
});

describe('fork control protocol: messages from a generation master', () => {
  it('decodes every message a master sends', () => {
    const ready = { op: 'ready', pid: 20, php: '8.2.7', opcache: false, preload: 'preload.php', resources: 1, output: 'FFI is not loaded' };
    assert.deepEqual(decodeMasterMessage(ready), ready);
    assert.deepEqual(decodeMasterMessage({ op: 'forked', id: 1, pid: 21 }), { op: 'forked', id: 1, pid: 21 });
    assert.deepEqual(decodeMasterMessage({ op: 'fork_failed', id: 2, error: 'bad environment variable name' }), {
      op: 'fork_failed',
      id: 2,
      error: 'bad environment variable name',
    });
    const reaped = { op: 'reaped', id: 3, pid: 21, done: true, code: 0, signal: null, error: null };
    assert.deepEqual(decodeMasterMessage(reaped), reaped);
    // memory_get_usage() beyond 32 bits comes as a uint64, which msgpackr reads as a BigInt
    assert.deepEqual(decodeMasterMessage({ op: 'pong', id: 4, children: 1, spares: 1, memory: 2n ** 33n }), {
      op: 'pong',
      id: 4,
      children: 1,
      spares: 1,
      memory: 2 ** 33,
    });
    assert.deepEqual(decodeMasterMessage({ op: 'error', id: 5, error: 'unknown op x' }), { op: 'error', id: 5, error: 'unknown op x' });
    assert.deepEqual(decodeMasterMessage({ op: 'spares', id: 6, count: 16 }), { op: 'spares', id: 6, count: 16 });
    assert.deepEqual(decodeHello({ op: 'hello', pid: 20 }), { op: 'hello', pid: 20 });
  });

  it('names the op and the field of a message that does not match', () => {
    assert.throws(
      () => decodeMasterMessage({ op: 'reaped', pid: 21, done: true, code: 0, signal: null, error: 5 }),
      protocolError(/'reaped' message: field 'error' must be a string, got number 5/),
    );
    assert.throws(
      () => decodeMasterMessage({ op: 'ready', pid: 1, php: '8.2', opcache: true, preload: null, resources: 0, output: 1 }),
      protocolError(/'ready' message: field 'output' must be a boolean or a string, got number 1/),
    );
    assert.throws(() => decodeMasterMessage({ op: 'generation', id: 1, pid: 2 }), protocolError(/unknown op 'generation' from a fork master/));
    assert.throws(() => decodeHello({ op: 'ready', pid: 1 }), protocolError(/expected a 'hello' message, got 'ready'/));
    assert.throws(() => decodeHello({ op: 'hello', pid: 1.5 }), protocolError(/'hello' message: field 'pid' must be an integer, got number 1.5/));
  });

  it('matches a reaped answer by pid and every other answer by id', () => {
    assert.equal(answerKey({ op: 'reaped', id: 9, pid: 21 }), 'reap:21');
    assert.equal(answerKey({ op: 'forked', id: 9, pid: 21 }), 'id:9');
    assert.equal(answerKey({ op: 'exited', pid: 21 }), null);
    assert.equal(answerKey({ op: 'error', id: null, error: 'x' }), null);
  });
});

describe('fork control protocol: the PHP side (php/lib/Fork/Protocol.php) and this one agree', () => {
  it('decodes every message PHP builds, as PHP encodes it', () => {
    // a real php encodes each builder's message with the channel's own MsgPack; each line: who, then hex
    const php = `
require ${JSON.stringify(path.join(ROOT, 'php/lib/fork-master.php'))};
use Rrts\\Master\\{MsgPack, Protocol};
$request = ['id' => 7];
$messages = [
    ['hello', Protocol::hello()],
    ['root', Protocol::ready(null, 0, true) + ['root' => true, 'warm' => false]],
    ['root', Protocol::generation(7, 1234)],
    ['root', Protocol::generationFailed(null, 'the opcache is full')],
    ['root', Protocol::withIdOf(Protocol::rootPong(2), $request)],
    ['root', Protocol::exited(1234, 9)],
    ['root', Protocol::exited(1234, 3 << 8)],
    ['root', Protocol::unknownOp(['x'])],
    ['master', Protocol::ready('preload.php', 1, false) + ['output' => 'FFI is not loaded or not allowed (ffi.enable)']],
    ['master', Protocol::ready(null, 0, true) + ['output' => true]],
    ['master', Protocol::withIdOf(Protocol::forked(4321), $request)],
    ['master', Protocol::withIdOf(Protocol::forkFailed("bad environment variable name 'A=B'"), $request)],
    ['master', Protocol::withIdOf(Protocol::reaped(4321), $request)],
    ['master', Protocol::withIdOf(Protocol::reaped(4321, true, 0, null), $request)],
    ['master', Protocol::withIdOf(Protocol::reaped(99, error: 'not my child: 99'), $request)],
    ['master', Protocol::withIdOf(Protocol::masterPong(1, 1, 5 * 1024 ** 3), $request)],
    ['master', Protocol::withIdOf(Protocol::unknownOp('nope'), $request)],
];
foreach ($messages as [$who, $message]) echo $who, ' ', bin2hex(MsgPack::encode($message)), "\n";
`;
    const out = execFileSync('php', ['-r', php], { encoding: 'utf8', timeout: 10_000 });
    const packr = new Packr({ useRecords: false, mapsAsObjects: true });
    const decoded = out
      .trim()
      .split('\n')
      .map((line) => {
        const [who, hex] = line.split(' ') as [string, string];
        const raw: unknown = packr.unpack(Buffer.from(hex, 'hex'));
        return who === 'hello' ? decodeHello(raw) : who === 'root' ? decodeRootMessage(raw) : decodeMasterMessage(raw);
      });
    assert.equal(decoded.length, 17);
    assert.deepEqual(decoded[0], { op: 'hello', pid: (decoded[0] as { pid: number }).pid });
    assert.deepEqual(decoded[2], { op: 'generation', id: 7, pid: 1234 });
    assert.deepEqual(decoded[5], { op: 'exited', pid: 1234, code: null, signal: 9 });
    assert.deepEqual(decoded[6], { op: 'exited', pid: 1234, code: 3, signal: null });
    assert.deepEqual(decoded[7], { op: 'error', error: 'unknown op array' });
    assert.deepEqual(decoded[13], { op: 'reaped', id: 7, pid: 4321, done: true, code: 0, signal: null, error: null });
    assert.deepEqual(decoded[15], { op: 'pong', id: 7, children: 1, spares: 1, memory: 5 * 1024 ** 3 });
  });
});
