// Tests for the goridge frame codec: the golden vectors of docs/protocol.md, a seeded property test over random
// frames split at random points, and the malformed inputs that must poison the decoder.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { crc32, encodeFrame, encodeSplitFrame, FrameDecoder, type Frame } from '../../src/goridge/frame.js';
import { ProtocolError } from '../../src/errors.js';
import { xorshift } from '../support/prng.js';

// Compiled tests run from dist/test/goridge/, so the fixture is three levels up from here.
const VECTORS = JSON.parse(readFileSync(new URL('../../../test/fixtures/protocol-vectors.json', import.meta.url), 'utf8')) as Record<
  string,
  { hex: string; description: string }
>;

function vector(id: string): Buffer {
  const v = VECTORS[id];
  assert.ok(v, `vector ${id} missing from protocol-vectors.json`);
  return Buffer.from(v.hex, 'hex');
}

/** Every whole-frame vector: V1.*, V2.*, V4.1–V4.6 (not the bare -ctx payloads), V5.*, G*. */
const FRAME_IDS = Object.keys(VECTORS).filter((id) => /^(V1\.|V2\.|V4\.[1-6][ab]?$|V5\.|G\d)/.test(id));

function decodeOne(bytes: Buffer): Frame {
  const decoder = new FrameDecoder();
  const frames = decoder.push(bytes);
  assert.equal(frames.length, 1);
  assert.equal(decoder.pending, 0);
  return frames[0]!;
}

/** Integer in [lo, hi]. */
function between(next: () => number, lo: number, hi: number): number {
  return lo + (next() % (hi - lo + 1));
}

function randomBytes(next: () => number, n: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  let i = 0;
  for (; i + 4 <= n; i += 4) out.writeUInt32LE(next(), i);
  for (; i < n; i++) out[i] = next() & 0xff;
  return out;
}

/** A header with a valid CRC but whatever byte0 (version/HL) and length we ask for. */
function rawHeader(byte0: number, flags: number, length: number): Buffer {
  const h = Buffer.alloc(12);
  h[0] = byte0;
  h[1] = flags;
  h.writeUInt32LE(length >>> 0, 2);
  h.writeUInt32LE(crc32(h, 0, 6), 6);
  return h;
}

function assertProtocolError(fn: () => unknown, ...texts: string[]): ProtocolError {
  let caught: unknown;
  assert.throws(fn, (err: unknown) => {
    caught = err;
    return true;
  });
  assert.ok(caught instanceof ProtocolError, `expected ProtocolError, got ${String(caught)}`);
  assert.equal(caught.code, 'ERR_PROTOCOL');
  for (const t of texts) assert.ok(caught.message.includes(t), `message ${JSON.stringify(caught.message)} lacks ${JSON.stringify(t)}`);
  return caught;
}

describe('crc32', () => {
  test('check value of "123456789" is 0xCBF43926', () => {
    assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
  });

  test('header CRCs of docs/protocol.md §1.8', () => {
    assert.equal(crc32(Buffer.from('130000000000', 'hex')), 0x3480d196);
    assert.equal(crc32(Buffer.from('140804000000', 'hex')), 0x96973db8);
  });

  test('start/end select a range', () => {
    const b = Buffer.from('xx123456789yy');
    assert.equal(crc32(b, 2, 11), 0xcbf43926);
  });

  test('empty input', () => {
    assert.equal(crc32(Buffer.alloc(0)), 0);
  });
});

describe('frame vectors', () => {
  test('the vector list covers all expected ids', () => {
    for (const id of ['V1.1', 'V1.3', 'V2.1', 'V2.5b', 'V2.13', 'V4.1', 'V4.3a', 'V4.3b', 'V4.6', 'V5.1', 'V5.6', 'G1', 'G9']) {
      assert.ok(FRAME_IDS.includes(id), id);
    }
    assert.ok(!FRAME_IDS.some((id) => id.endsWith('-ctx') || id.startsWith('ENV')));
    assert.equal(FRAME_IDS.length, 3 + 14 + 7 + 6 + 9);
  });

  for (const id of FRAME_IDS) {
    test(`${id} decodes to one frame and re-encodes byte for byte`, () => {
      const bytes = vector(id);
      const frame = decodeOne(bytes);
      assert.equal(frame.options.length, (bytes[0]! & 0x0f) - 3);
      assert.equal(frame.payload.length, bytes.readUInt32LE(2));
      assert.equal(frame.flags, bytes[1]);
      assert.equal(frame.byte10, bytes[10]);
      const again = encodeFrame({ flags: frame.flags, byte10: frame.byte10, options: frame.options, payload: frame.payload });
      assert.equal(again.toString('hex'), bytes.toString('hex'));
    });
  }

  test('V1.2 fields', () => {
    const f = decodeOne(vector('V1.2'));
    assert.equal(f.flags, 0x08);
    assert.deepEqual(f.options, [2]);
    assert.equal(f.payload.toString(), '{}hi');
  });

  test('V1.3 fields', () => {
    const f = decodeOne(vector('V1.3'));
    assert.equal(f.flags, 0x04);
    assert.deepEqual(f.options, [7, 5]);
    assert.equal(f.payload.toString(), 'Svc.Mx');
  });

  test('all vectors back to back in one chunk, and one byte at a time', () => {
    const all = Buffer.concat(FRAME_IDS.map(vector));
    const whole = new FrameDecoder().push(all);
    assert.equal(whole.length, FRAME_IDS.length);
    const decoder = new FrameDecoder();
    const bytewise: Frame[] = [];
    for (let i = 0; i < all.length; i++) bytewise.push(...decoder.push(all.subarray(i, i + 1)));
    assert.equal(decoder.pending, 0);
    assert.equal(bytewise.length, FRAME_IDS.length);
    bytewise.forEach((f, i) => {
      assert.equal(encodeFrame(f).toString('hex'), VECTORS[FRAME_IDS[i]!]!.hex, FRAME_IDS[i]);
    });
  });
});

describe('encodeFrame', () => {
  test('defaults give the empty frame V1.1', () => {
    assert.equal(encodeFrame().toString('hex'), VECTORS['V1.1']!.hex);
  });

  test('string payload and payload list equal one Buffer', () => {
    const a = encodeFrame({ flags: 0x08, options: [2], payload: '{}hi' });
    const b = encodeFrame({ flags: 0x08, options: [2], payload: [Buffer.from('{}'), Buffer.from('hi')] });
    assert.equal(a.toString('hex'), VECTORS['V1.2']!.hex);
    assert.equal(b.toString('hex'), VECTORS['V1.2']!.hex);
  });

  test('more than 10 options is refused, 10 is fine (HL 13)', () => {
    assert.throws(() => encodeFrame({ options: new Array(11).fill(0) }), RangeError);
    const f = encodeFrame({ options: new Array(10).fill(1) });
    assert.equal(f[0], 0x1d);
    assert.deepEqual(decodeOne(f).options, new Array(10).fill(1));
  });

  test('options are written as uint32', () => {
    const f = decodeOne(encodeFrame({ options: [0xffffffff, 0, 0x80000000] }));
    assert.deepEqual(f.options, [0xffffffff, 0, 0x80000000]);
  });
});

describe('encodeSplitFrame', () => {
  test('V1.2: the same bytes as encodeFrame with one option', () => {
    assert.equal(encodeSplitFrame(0x08, Buffer.from('{}'), Buffer.from('hi')).toString('hex'), VECTORS['V1.2']!.hex);
  });

  test('equals encodeFrame for empty parts and for a payload over 64 KiB', () => {
    const next = xorshift(7);
    const cases: Array<[number, Buffer, Buffer]> = [
      [0x80, Buffer.alloc(0), Buffer.alloc(0)],
      [0x08, Buffer.from('{"a":1}'), Buffer.alloc(0)],
      [0x00, Buffer.alloc(0), Buffer.from('body')],
      [0x08, randomBytes(next, 70_000), randomBytes(next, 3)],
    ];
    for (const [flags, head, tail] of cases) {
      const want = encodeFrame({ flags, options: [head.length], payload: [head, tail] });
      assert.ok(encodeSplitFrame(flags, head, tail).equals(want), `flags ${flags}, ${head.length}+${tail.length} bytes`);
    }
  });
});

describe('property: random frames split at random points', () => {
  const SEED = 0x5eed1234;
  const COUNT = 500;

  interface Spec {
    flags: number;
    byte10: number;
    options: number[];
    payload: Buffer;
  }

  function makeFrames(next: () => number): Spec[] {
    const specs: Spec[] = [];
    for (let i = 0; i < COUNT; i++) {
      const options: number[] = [];
      const nOptions = between(next, 0, 10);
      for (let k = 0; k < nOptions; k++) options.push(next());
      // Half small (many headers, many splits inside them), half anywhere up to 200 KiB.
      const size = next() % 2 === 0 ? between(next, 0, 64) : between(next, 0, 200 * 1024);
      specs.push({ flags: next() & 0xff, byte10: next() & 0xff, options, payload: randomBytes(next, size) });
    }
    return specs;
  }

  /** Cut points: inside most headers, random points anywhere, and one-byte pieces over some stretches. */
  function cutPoints(next: () => number, encoded: Buffer[], total: number): number[] {
    const cuts = new Set<number>();
    let at = 0;
    for (const f of encoded) {
      const headerLength = (f[0]! & 0x0f) * 4;
      const roll = next() % 4;
      if (roll === 0) cuts.add(at + between(next, 1, headerLength - 1));
      else if (roll === 1) for (let k = 1; k < headerLength; k++) cuts.add(at + k);
      else if (roll === 2) cuts.add(at + between(next, 1, f.length));
      at += f.length;
    }
    for (let k = 0; k < 3000; k++) cuts.add(between(next, 1, total - 1));
    for (let k = 0; k < 20; k++) {
      const start = between(next, 0, total - 1);
      for (let j = 0; j < 300 && start + j < total; j++) cuts.add(start + j);
    }
    return [...cuts].filter((c) => c > 0 && c < total).sort((a, b) => a - b);
  }

  function check(seed: number): void {
    const next = xorshift(seed);
    const specs = makeFrames(next);
    const encoded = specs.map((s) => encodeFrame(s));
    const all = Buffer.concat(encoded);
    const cuts = cutPoints(next, encoded, all.length);
    assert.ok(cuts.length > 2000);

    const decoder = new FrameDecoder();
    const got: Frame[] = [];
    let from = 0;
    for (const cut of [...cuts, all.length]) {
      // Hand out copies so no piece aliases its neighbour in the big buffer.
      got.push(...decoder.push(Buffer.from(all.subarray(from, cut))));
      from = cut;
    }
    assert.equal(decoder.pending, 0);
    assert.equal(got.length, specs.length);
    for (let i = 0; i < specs.length; i++) {
      const want = specs[i]!;
      const f = got[i]!;
      assert.equal(f.flags, want.flags, `frame ${i} flags`);
      assert.equal(f.byte10, want.byte10, `frame ${i} byte10`);
      assert.deepEqual(f.options, want.options, `frame ${i} options`);
      assert.ok(f.payload.equals(want.payload), `frame ${i} payload (${want.payload.length} bytes)`);
      assert.ok(encodeFrame(f).equals(encoded[i]!), `frame ${i} re-encodes`);
    }
  }

  test(`${COUNT} frames, seed ${SEED.toString(16)}`, () => check(SEED));
  test(`${COUNT} frames, seed 42`, () => check(42));

  test('the whole stream in one chunk', () => {
    const next = xorshift(7);
    const specs = makeFrames(next).slice(0, 100);
    const frames = new FrameDecoder().push(Buffer.concat(specs.map((s) => encodeFrame(s))));
    assert.equal(frames.length, 100);
    frames.forEach((f, i) => assert.ok(f.payload.equals(specs[i]!.payload)));
  });
});

describe('malformed input', () => {
  test('bad CRC -> ProtocolError showing the bytes', () => {
    const bytes = vector('V2.4');
    bytes[6] = bytes[6]! ^ 0xff;
    assertProtocolError(() => new FrameDecoder().push(bytes), 'CRC', '{"k":"v"}ping');
  });

  test('the bytes shown are at most 256 of the first 512 buffered', () => {
    const garbage = Buffer.alloc(4096, 'p'); // 0x70: header length 0
    const err = assertProtocolError(() => new FrameDecoder().push(garbage), 'header length');
    assert.match(err.message, /… \(512 bytes\)$/);
  });

  test('a CRC error is found as soon as the 12 header bytes are in', () => {
    const bytes = vector('V2.1');
    bytes[9] = bytes[9]! ^ 1;
    const decoder = new FrameDecoder();
    assert.deepEqual(decoder.push(bytes.subarray(0, 11)), []);
    assertProtocolError(() => decoder.push(bytes.subarray(11, 12)), 'CRC');
  });

  test('HL < 3 -> ProtocolError', () => {
    for (const byte0 of [0x10, 0x11, 0x12]) {
      const bytes = Buffer.concat([rawHeader(byte0, 0, 4), Buffer.from('oops, text')]);
      assertProtocolError(() => new FrameDecoder().push(bytes), 'header length', 'oops, text');
    }
  });

  test('HL > 13 -> ProtocolError', () => {
    for (const byte0 of [0x1e, 0x1f]) {
      const bytes = Buffer.concat([rawHeader(byte0, 0, 4), Buffer.from('more text'), Buffer.alloc(60)]);
      assertProtocolError(() => new FrameDecoder().push(bytes), 'header length', 'more text');
    }
  });

  test('HL 3..13 is accepted whatever the version nibble', () => {
    for (let hl = 3; hl <= 13; hl++) {
      const bytes = Buffer.concat([rawHeader(0x20 | hl, 0, 0), Buffer.alloc((hl - 3) * 4)]);
      assert.equal(new FrameDecoder().push(bytes).length, 1);
    }
  });

  test('length over maxPayload -> ProtocolError before the payload arrives', () => {
    const decoder = new FrameDecoder({ maxPayload: 1024 });
    assert.equal(decoder.push(encodeFrame({ payload: Buffer.alloc(1024) })).length, 1);
    const head = Buffer.concat([rawHeader(0x13, 0x08, 1025), Buffer.from('garbage text')]);
    assertProtocolError(() => decoder.push(head), '1025', 'garbage text');
  });

  test('absurd length with the default limit -> ProtocolError, nothing allocated', () => {
    assertProtocolError(() => new FrameDecoder().push(rawHeader(0x13, 0, 0xffffffff)), String(0xffffffff));
  });

  test('truncated input yields no frame and keeps the bytes pending', () => {
    const bytes = vector('V2.4');
    for (const n of [1, 5, 11, 12, 16, bytes.length - 1]) {
      const decoder = new FrameDecoder();
      assert.deepEqual(decoder.push(bytes.subarray(0, n)), []);
      assert.equal(decoder.pending, n);
      const rest = decoder.push(bytes.subarray(n));
      assert.equal(rest.length, 1);
      assert.equal(decoder.pending, 0);
    }
  });

  test('a complete frame followed by a partial one', () => {
    const a = vector('V2.8');
    const b = vector('V2.12');
    const decoder = new FrameDecoder();
    const frames = decoder.push(Buffer.concat([a, b.subarray(0, 7)]));
    assert.equal(frames.length, 1);
    assert.equal(decoder.pending, 7);
  });

  test('an empty chunk is a no-op', () => {
    const decoder = new FrameDecoder();
    assert.deepEqual(decoder.push(Buffer.alloc(0)), []);
    assert.equal(decoder.pending, 0);
  });

  test('frames completed in the chunk before the garbage come with the error, in order', () => {
    const good = [encodeFrame({ payload: 'one', options: [7] }), encodeFrame({ payload: 'two', options: [1, 2] })];
    let caught: unknown;
    try {
      new FrameDecoder().push(Buffer.concat([...good, Buffer.from('Fatal error: oops\n')]));
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof ProtocolError);
    const frames = (caught as ProtocolError & { frames: Frame[] }).frames;
    assert.deepEqual(
      frames.map((f) => [f.payload.toString(), f.options]),
      [
        ['one', [7]],
        ['two', [1, 2]],
      ],
    );
    const none = assertProtocolError(() => new FrameDecoder().push(Buffer.from('Fatal error: oops\n')));
    assert.deepEqual((none as ProtocolError & { frames: Frame[] }).frames, []);
  });

  test('every option count from 0 to 10 decodes to its options, in order', () => {
    for (let count = 0; count <= 10; count++) {
      const options = Array.from({ length: count }, (_, i) => 0xfffffff0 + i);
      const [frame] = new FrameDecoder().push(encodeFrame({ options, payload: `n${count}` }));
      assert.deepEqual(frame!.options, options, `${count} options`);
      assert.equal(frame!.payload.toString(), `n${count}`);
    }
  });

  test('the decoder stays poisoned after an error', () => {
    const decoder = new FrameDecoder();
    const first = assertProtocolError(() => decoder.push(Buffer.from('Warning: something went wrong\n')));
    assert.throws(
      () => decoder.push(vector('V1.1')),
      (err) => err === first,
    );
    assert.throws(
      () => decoder.push(Buffer.alloc(0)),
      (err) => err === first,
    );
  });

  test("PHP's missing-script text is reported with its text", () => {
    const text = 'Could not open input file: x.php\n';
    assertProtocolError(() => new FrameDecoder().push(Buffer.from(text)), 'Could not open input file: x.php');
  });

  test('the missing-script text arriving in pieces is still reported', () => {
    const decoder = new FrameDecoder();
    assert.deepEqual(decoder.push(Buffer.from('Could not')), []);
    assertProtocolError(() => decoder.push(Buffer.from(' open input file: x.php\n')), 'Could not open input file: x.php');
  });

  test('control bytes in garbage are escaped, not written raw', () => {
    const err = assertProtocolError(() => new FrameDecoder().push(Buffer.from('\x1b[31mred\x00 text here')));
    assert.ok(!err.message.includes('\x1b'));
    assert.ok(!err.message.includes('\x00'));
    assert.ok(err.message.includes('\\x1b[31mred\\x00 text here'));
  });
});

describe('incoming: the frame being received', () => {
  test('null until header and options are in, then its announced size, flags and options; null again once taken', () => {
    const frame = encodeFrame({ flags: 0x08, options: [7, 3], payload: Buffer.alloc(1000, 1) });
    const decoder = new FrameDecoder();
    assert.equal(decoder.incoming, null);
    decoder.push(frame.subarray(0, 5));
    assert.equal(decoder.incoming, null, 'header incomplete');
    decoder.push(frame.subarray(5, 16));
    assert.equal(decoder.incoming, null, 'options incomplete');
    decoder.push(frame.subarray(16, 30));
    assert.deepEqual(decoder.incoming, { size: frame.length, flags: 0x08, options: [7, 3] });
    assert.equal(decoder.push(frame.subarray(30)).length, 1);
    assert.equal(decoder.incoming, null);
  });

  test('null after a failure', () => {
    const decoder = new FrameDecoder({ maxPayload: 10 });
    assert.throws(() => decoder.push(encodeFrame({ payload: Buffer.alloc(11) })), ProtocolError);
    assert.equal(decoder.incoming, null);
  });
});
