// Unit tests of parseResponseContext (src/http/response.ts): the worker's JSON response context, its headers taken
// as they are when every entry is a list of strings under a token name, converted or left out otherwise, and the
// last context of one value per header shared while the worker repeats its bytes.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseResponseContext } from '../../src/http/response.js';
import { ResponseError } from '../../src/errors.js';

function parse(json: string): { status: number; headers: Record<string, string[]> } {
  return parseResponseContext(Buffer.from(json));
}

describe('parseResponseContext', () => {
  it("keeps the SDK's usual headers, in order", () => {
    const ctx = parse('{"status":201,"headers":{"Content-Type":["text/html"],"Set-Cookie":["a=1","b=2"],"X-A":[""]}}');
    assert.equal(ctx.status, 201);
    assert.deepEqual(Object.entries(ctx.headers), [
      ['Content-Type', ['text/html']],
      ['Set-Cookie', ['a=1', 'b=2']],
      ['X-A', ['']],
    ]);
  });

  it('takes a bare string and numbers, leaves out empty lists, other values, names that are not tokens and __proto__', () => {
    const ctx = parse(
      '{"status":200,"headers":{"X-Str":"one","X-Num":[1,2.5],"X-Mixed":["a",{"b":1},3,null],"X-Empty":[],"X-Obj":{"a":"b"},' +
        '"Bad Name":["x"],"__proto__":["p"],"X-Null":null,"X-Last":["z"]}}',
    );
    assert.deepEqual(Object.entries(ctx.headers), [
      ['X-Str', ['one']],
      ['X-Num', ['1', '2.5']],
      ['X-Mixed', ['a', '3']],
      ['X-Last', ['z']],
    ]);
  });

  it('leaves out each kind of bad entry even when it is the only one', () => {
    for (const bad of ['"X-Empty":[]', '"Bad Name":["x"]', '"__proto__":["p"]', '"X-Num":[1]', '"X-Null":null', '"":["v"]']) {
      const ctx = parse(`{"status":200,"headers":{"X-Ok":["1"],${bad}}}`);
      const expected: Array<[string, string[]]> =
        bad === '"X-Num":[1]'
          ? [
              ['X-Ok', ['1']],
              ['X-Num', ['1']],
            ]
          : [['X-Ok', ['1']]];
      assert.deepEqual(Object.entries(ctx.headers), expected, bad);
    }
  });

  it('answers {} for missing or non-object headers', () => {
    for (const headers of ['', ',"headers":null', ',"headers":[["a"]]', ',"headers":"x"']) {
      assert.deepEqual(parse(`{"status":204${headers}}`).headers, {}, headers);
    }
  });

  it('answers the same bytes again with one frozen context, when nothing of it reaches a response as an object', () => {
    const json = '{"status":200,"headers":{"Content-Type":["text/html"],"X-A":["1"]}}';
    const first = parse(json);
    const again = parseResponseContext(Buffer.from(` ${json} `).subarray(1, json.length + 1));
    assert.equal(again, first);
    assert.ok(Object.isFrozen(first) && Object.isFrozen(first.headers) && Object.isFrozen(first.headers['X-A']));
    assert.deepEqual(first, { status: 200, headers: { 'Content-Type': ['text/html'], 'X-A': ['1'] } });
    // Another context in between: decoded anew, then shared in its turn.
    const other = parse('{"status":404,"headers":{}}');
    assert.equal(other.status, 404);
    assert.notEqual(parse(json), first);
    assert.deepEqual(parse(json), first);
  });

  it('decodes anew each time a context with a list, a framing header or a 1xx status', () => {
    for (const json of [
      '{"status":200,"headers":{"Set-Cookie":["a=1","b=2"]}}',
      '{"status":200,"headers":{"content-length":["2"]}}',
      '{"status":200,"headers":{"Connection":["close"]}}',
      '{"status":200,"headers":{"Trailer":["X-T"],"X-T":["1"]}}',
      '{"status":200,"headers":{"Upgrade":["h2c"]}}',
      '{"status":103,"headers":{"Link":["</a.css>; rel=preload"]}}',
    ]) {
      const first = parse(json);
      const second = parse(json);
      assert.notEqual(second, first, json);
      assert.deepEqual(second, first, json);
      assert.ok(!Object.isFrozen(first) && !Object.isFrozen(first.headers), json);
      for (const name of Object.keys(first.headers)) first.headers[name]!.push('changed'); // a response may change its own
      assert.deepEqual(parse(json), second, json);
    }
  });

  it('refuses a context that is not JSON, not an object, or has no valid status', () => {
    for (const bad of ['nope', '[1]', 'null', '{"status":99}', '{"status":600}', '{"status":"200"}', '{"status":200.5}', '{}']) {
      assert.throws(() => parse(bad), ResponseError, bad);
    }
  });
});
