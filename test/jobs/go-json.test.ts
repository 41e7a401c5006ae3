// The hand-written Go JSON of job contexts against goJson (the replacer it replaces on the per-job path) and Go's
// byte order of map keys.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compareUtf8, goHeadersJson, goString } from '../../src/jobs/go-json.js';
import { contextJson } from '../../src/jobs/context.js';
import { goJson } from '../../src/rpc/codec.js';

const STRINGS = [
  '',
  'plain',
  '<b>&amp;</b>',
  'quote " back \\ slash',
  'line\u2028para\u2029',
  'tab\tnl\n\u0001',
  'caf\u00e9',
  '\u{1F600}',
  '\uE000',
  'lone \uD800 high',
];

describe('go-json', () => {
  it('goString writes each string as goJson does', () => {
    for (const text of STRINGS) assert.equal(goString(text), goJson(text), JSON.stringify(text));
  });

  it('goString writes every ASCII character as goJson does, alone and among plain ones', () => {
    for (let code = 0; code < 0x80; code++) {
      const c = String.fromCharCode(code);
      for (const text of [c, `a${c}`, `${c}z`, `00-${c}-01`]) assert.equal(goString(text), goJson(text), JSON.stringify(text));
    }
  });

  it('compareUtf8 orders as the UTF-8 bytes do', () => {
    const keys = ['b', 'a', '10', '9', '\uE000', '\u{1F600}', '\uFFFF', 'ab', 'a\u0000', 'Z'];
    const bytewise = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    assert.deepEqual([...keys].sort(compareUtf8), bytewise);
  });

  it('goHeadersJson: keys in byte order, nil lists and maps as null', () => {
    assert.equal(goHeadersJson(null), 'null');
    assert.equal(goHeadersJson({}), '{}');
    const headers = { b: ['2', '<'], '10': ['ten'], a: null as unknown as string[], '\u{1F600}': [], '\uE000': ['x'] };
    assert.equal(goHeadersJson(headers), '{"10":["ten"],"a":null,"b":["2","\\u003c"],"\uE000":["x"],"\u{1F600}":[]}');
  });

  it("contextJson writes the memory driver's context as before, omitting undefined fields", () => {
    const context = contextJson([
      ['id', 'id-1'],
      ['job', 'a<b'],
      ['driver', 'memory'],
      ['skipped', undefined],
      ['headers', { 'x-b': ['1'], 'x-a': ['&'] }],
      ['pipeline', 'p'],
      ['none', null],
    ]);
    assert.equal(context, '{"id":"id-1","job":"a\\u003cb","driver":"memory","headers":{"x-a":["\\u0026"],"x-b":["1"]},"pipeline":"p","none":null}');
  });
});
