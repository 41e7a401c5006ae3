// Tests for the worker-protocol and RPC messages against the golden vectors of docs/protocol.md §2.12 and §5.6.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { FrameDecoder, encodeFrame, type Frame } from '../../src/goridge/frame.js';
import { Flag, Stream } from '../../src/goridge/flags.js';
import { pidRequest, STOP_CONTROL, PONG, STREAM_STOP, jobFrame, parsePidReply, parseJobReply, encodeRpc, decodeRpc } from '../../src/goridge/messages.js';
import { ProtocolError } from '../../src/errors.js';

// Compiled tests run from dist/test/goridge/, so the fixture is three levels up from here.
const VECTORS = JSON.parse(readFileSync(new URL('../../../test/fixtures/protocol-vectors.json', import.meta.url), 'utf8')) as Record<string, { hex: string }>;

function hex(id: string): string {
  const v = VECTORS[id];
  assert.ok(v, `vector ${id} missing`);
  return v.hex;
}

function frame(id: string): Frame {
  const frames = new FrameDecoder().push(Buffer.from(hex(id), 'hex'));
  assert.equal(frames.length, 1);
  return frames[0]!;
}

function isProtocolError(text: string) {
  return (err: unknown) => err instanceof ProtocolError && err.code === 'ERR_PROTOCOL' && err.message.includes(text);
}

describe('server -> worker messages', () => {
  test('pidRequest(12345) = V2.1', () => {
    assert.equal(pidRequest(12345).toString('hex'), hex('V2.1'));
  });

  test('STOP_CONTROL = V2.3', () => {
    assert.equal(STOP_CONTROL.toString('hex'), hex('V2.3'));
  });

  test('PONG = V2.10', () => {
    assert.equal(PONG.toString('hex'), hex('V2.10'));
  });

  test('STREAM_STOP = V2.11', () => {
    assert.equal(STREAM_STOP.toString('hex'), hex('V2.11'));
  });

  test('jobFrame(JSON, ctx, body) = V2.4', () => {
    const f = jobFrame(Flag.CODEC_JSON, Buffer.from('{"k":"v"}'), Buffer.from('ping'));
    assert.equal(f.toString('hex'), hex('V2.4'));
  });

  test('jobFrame with empty context and body', () => {
    const f = new FrameDecoder().push(jobFrame(Flag.CODEC_PROTO, Buffer.alloc(0), Buffer.alloc(0)))[0]!;
    assert.equal(f.flags, Flag.CODEC_PROTO);
    assert.deepEqual(f.options, [0]);
    assert.equal(f.payload.length, 0);
  });
});

describe('parsePidReply', () => {
  test('V2.2 -> 4242 (flags 0x01, no JSON bit)', () => {
    assert.equal(parsePidReply(frame('V2.2')), 4242);
  });

  test('the server-side pid request parses too (CONTROL|JSON)', () => {
    assert.equal(parsePidReply(frame('V2.1')), 12345);
  });

  test('no CONTROL flag -> ProtocolError', () => {
    assert.throws(() => parsePidReply(frame('V2.5')), isProtocolError('CONTROL'));
  });

  test('not JSON, no pid, pid 0, negative or fractional -> ProtocolError', () => {
    const control = (payload: string): Frame => ({ flags: Flag.CONTROL, byte10: 0, options: [], payload: Buffer.from(payload) });
    assert.throws(() => parsePidReply(control('PHP Warning: x')), isProtocolError('PHP Warning: x'));
    for (const bad of ['{}', 'null', '{"pid":0}', '{"pid":-1}', '{"pid":1.5}', '{"pid":"42"}', '{"stop":true}']) {
      assert.throws(() => parsePidReply(control(bad)), ProtocolError, bad);
    }
  });
});

describe('parseJobReply', () => {
  test('V2.5: data, context and body, no codec flag', () => {
    const r = parseJobReply(frame('V2.5'));
    assert.equal(r.kind, 'data');
    if (r.kind !== 'data') return;
    assert.equal(r.flags, 0);
    assert.equal(r.context.toString(), '{"a":1}');
    assert.equal(r.body.toString(), 'hello');
    assert.equal(r.more, false);
    assert.equal(r.ping, false);
  });

  test('V2.5b: the same with the JSON codec flag', () => {
    const r = parseJobReply(frame('V2.5b'));
    assert.ok(r.kind === 'data');
    assert.equal(r.flags, Flag.CODEC_JSON);
    assert.equal(r.context.toString(), '{"a":1}');
    assert.equal(r.body.toString(), 'hello');
  });

  test('V2.6: error', () => {
    assert.deepEqual(parseJobReply(frame('V2.6')), { kind: 'error', message: 'boom' });
  });

  test('V2.7: stop request', () => {
    assert.deepEqual(parseJobReply(frame('V2.7')), { kind: 'stop-request' });
  });

  test('{"stop":true} context with a body is data, not a stop request', () => {
    const f = new FrameDecoder().push(jobFrame(0, Buffer.from('{"stop":true}'), Buffer.from('x')))[0]!;
    assert.equal(parseJobReply(f).kind, 'data');
  });

  test('V2.8: stream chunk, more follows, no ping', () => {
    const r = parseJobReply(frame('V2.8'));
    assert.ok(r.kind === 'data');
    assert.equal(r.context.length, 0);
    assert.equal(r.body.toString(), 'chunk1');
    assert.equal(r.more, true);
    assert.equal(r.ping, false);
  });

  test('V2.9: stream chunk with PING', () => {
    const r = parseJobReply(frame('V2.9'));
    assert.ok(r.kind === 'data');
    assert.equal(r.body.toString(), 'chunk6');
    assert.equal(r.more, true);
    assert.equal(r.ping, true);
  });

  test('V2.12: last chunk', () => {
    const r = parseJobReply(frame('V2.12'));
    assert.ok(r.kind === 'data');
    assert.equal(r.body.toString(), 'end');
    assert.equal(r.more, false);
    assert.equal(r.ping, false);
  });

  test('V2.13: empty final frame', () => {
    const r = parseJobReply(frame('V2.13'));
    assert.ok(r.kind === 'data');
    assert.equal(r.context.length, 0);
    assert.equal(r.body.length, 0);
    assert.equal(r.more, false);
  });

  test('wrong option count or offset past the end -> ProtocolError', () => {
    assert.throws(() => parseJobReply(frame('V2.2')), isProtocolError('options length'));
    assert.throws(() => parseJobReply(frame('V1.3')), isProtocolError('options length'));
    const past = new FrameDecoder().push(encodeFrame({ options: [10], payload: 'short' }))[0]!;
    assert.throws(() => parseJobReply(past), isProtocolError('past the payload end'));
  });

  test('a decoded frame and the same frame as a literal give the same parts, wherever the frame lies in its chunk', () => {
    const parts: Array<[string, string]> = [
      ['{"status":200}', 'hello'],
      ['', 'body only'],
      ['{"status":204}', ''],
      ['', ''],
      ['{"h":"\u00e9"}', '\u00ff\u0000'],
    ];
    // Back to back in one chunk: the decoder hands out each frame as a part of the chunk, at its own offset.
    const frames = new FrameDecoder().push(Buffer.concat(parts.map(([c, b]) => jobFrame(Flag.CODEC_JSON, Buffer.from(c), Buffer.from(b)))));
    assert.equal(frames.length, parts.length);
    frames.forEach((frame, i) => {
      const literal: Frame = { flags: frame.flags, byte10: frame.byte10, options: frame.options, payload: Buffer.from(frame.payload) };
      const decoded = parseJobReply(frame);
      const expected = parseJobReply(literal);
      assert.ok(decoded.kind === 'data' && expected.kind === 'data');
      assert.equal(decoded.context.toString(), parts[i]![0]);
      assert.equal(decoded.body.toString(), parts[i]![1]);
      assert.deepEqual([decoded.context, decoded.body], [expected.context, expected.body]);
      assert.equal(frame.payload.toString(), parts[i]![0] + parts[i]![1], 'the payload, asked for after the parts');
    });
  });

  test('stream bit constants match byte10 of the vectors', () => {
    assert.equal(frame('V2.9').byte10, Stream.STREAM | Stream.PING);
    assert.equal(frame('V2.10').byte10, Stream.PONG);
    assert.equal(frame('V2.11').byte10, Stream.STOP);
  });
});

describe('RPC', () => {
  test('decodeRpc(V5.1)', () => {
    const m = decodeRpc(frame('V5.1'));
    assert.equal(m.seq, 1);
    assert.equal(m.method, 'informer.Workers');
    assert.equal(m.flags, Flag.CODEC_JSON);
    assert.equal(m.body.toString(), '"http"');
  });

  test('encodeRpc gives V5.1 back', () => {
    const m = { seq: 1, method: 'informer.Workers', flags: Flag.CODEC_JSON, body: Buffer.from('"http"') };
    assert.equal(encodeRpc(m).toString('hex'), hex('V5.1'));
  });

  for (const id of ['V5.1', 'V5.2', 'V5.3', 'V5.4', 'V5.5', 'V5.6', 'G1', 'G2', 'G3', 'G4', 'G5', 'G6', 'G7', 'G8', 'G9']) {
    test(`${id}: decodeRpc then encodeRpc round trips`, () => {
      assert.equal(encodeRpc(decodeRpc(frame(id))).toString('hex'), hex(id));
    });
  }

  test('V5.4 result', () => {
    const m = decodeRpc(frame('V5.4'));
    assert.equal(m.seq, 2);
    assert.equal(m.method, 'informer.List');
    assert.deepEqual(JSON.parse(m.body.toString()), ['http']);
  });

  test('V5.6: error flags (JSON|ERROR), message in the body', () => {
    const m = decodeRpc(frame('V5.6'));
    assert.equal(m.flags, 0x48);
    assert.ok(m.flags & Flag.ERROR);
    assert.equal(m.flags & ~Flag.ERROR, Flag.CODEC_JSON);
    assert.equal(m.seq, 3);
    assert.equal(m.method, 'resetter.Reset');
    assert.equal(m.body.toString(), 'resetter_rpc_reset:\n\tresetter_plugin_reset_by_name: no such plugin: foo');
  });

  test('G9: gob error flags (GOB|ERROR)', () => {
    const m = decodeRpc(frame('G9'));
    assert.equal(m.flags, Flag.CODEC_GOB | Flag.ERROR);
    assert.equal(m.seq, 1);
    assert.equal(m.body.toString(), "rpc: can't find method informer.Workerz");
  });

  test('G1: seq 0', () => {
    const m = decodeRpc(frame('G1'));
    assert.equal(m.seq, 0);
    assert.equal(m.method, 'informer.List');
    assert.equal(m.flags, Flag.CODEC_GOB);
  });

  test('wrong option count or method length past the end -> ProtocolError', () => {
    assert.throws(() => decodeRpc(frame('V2.4')), isProtocolError('exactly 2 options'));
    const past = new FrameDecoder().push(encodeFrame({ options: [1, 50], payload: 'x.Y' }))[0]!;
    assert.throws(() => decodeRpc(past), isProtocolError('past the payload end'));
  });
});
