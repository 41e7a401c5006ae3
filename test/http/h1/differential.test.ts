// Differential test of src/http/h1/parser.ts against llhttp, node:http's parser, as the reference oracle: each
// request of the corpus goes raw over a loopback socket to a real node:http server and, in memory, to H1Parser.
// Both must accept or refuse it alike and, when they accept, see the same requests (method, target, version,
// header lines, body, trailers, keep-alive). A case marked `go` is where rrts follows Go instead: the test checks
// that rrts does what Go does AND that llhttp really differs, so the list of differences stays true.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CORPUS, SPLIT_SAMPLE, type Case } from './corpus.js';
import { LlhttpOracle, parseWithRrts, type Outcome } from './recorders.js';

/** After a request that closes the connection node may still parse what follows; rrts stops there. */
function untilClose(outcome: Outcome): Outcome {
  const close = outcome.requests.findIndex((r) => !r.keepAlive);
  if (close === -1) return outcome;
  return { requests: outcome.requests.slice(0, close + 1), error: '', status: 0 };
}

function describeOutcome(o: Outcome): string {
  return o.error === '' ? `accepted ${o.requests.length} request(s)` : `refused (${o.error}) after ${o.requests.length} request(s)`;
}

describe('H1Parser against llhttp (node:http on loopback)', () => {
  const oracle = new LlhttpOracle();
  before(() => oracle.start());
  after(() => oracle.stop());

  it('has a corpus of at least 100 requests, each named once', () => {
    assert.ok(CORPUS.length >= 100, `${CORPUS.length} cases`);
    assert.equal(new Set(CORPUS.map((c) => c.name)).size, CORPUS.length);
  });

  for (const testCase of CORPUS) {
    it(testCase.name, async () => {
      const bytes = Buffer.from(testCase.bytes, 'latin1');
      const theirs = untilClose(await oracle.parse(bytes));
      const ours = parseWithRrts([bytes]);
      const detail = `rrts ${describeOutcome(ours)} ${ours.error}; llhttp ${describeOutcome(theirs)}`;
      if (testCase.go !== undefined) {
        assert.equal(ours.error === '', testCase.go.accept, `rrts must follow Go (${testCase.go.rule}): ${detail}`);
        assert.notEqual(theirs.error === '', testCase.go.accept, `llhttp agrees with Go here, so this is no difference: ${detail}`);
        return;
      }
      assert.equal(ours.error === '', theirs.error === '', detail);
      assert.deepEqual(ours.requests, theirs.requests, detail);
      if (ours.error !== '' && theirs.status === 431) assert.equal(ours.status, 431, detail);
    });
  }
});

describe('H1Parser over partial reads', () => {
  const byName = new Map<string, Case>(CORPUS.map((c) => [c.name, c]));
  for (const name of SPLIT_SAMPLE) {
    it(`${name}: split at every byte parses the same`, () => {
      const bytes = Buffer.from(byName.get(name)!.bytes, 'latin1');
      const whole = parseWithRrts([bytes]);
      assert.equal(whole.error, '', `${name} is a valid request`);
      for (let at = 1; at < bytes.length; at++) {
        assert.deepEqual(parseWithRrts([bytes.subarray(0, at), bytes.subarray(at)]), whole, `split at ${at}`);
      }
      const single = Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1));
      assert.deepEqual(parseWithRrts(single), whole, 'one byte per read');
    });
  }
});

describe('H1Parser over partial reads, every case of the corpus', () => {
  it('gives the same requests and the same refusal when any case up to 4 KiB is cut in two anywhere', () => {
    let checked = 0;
    for (const testCase of CORPUS) {
      const bytes = Buffer.from(testCase.bytes, 'latin1');
      if (bytes.length > 4096) continue;
      const whole = parseWithRrts([bytes]);
      for (let at = 1; at < bytes.length; at++) {
        assert.deepEqual(parseWithRrts([bytes.subarray(0, at), bytes.subarray(at)]), whole, `${testCase.name}: split at ${at}`);
      }
      checked++;
    }
    assert.ok(checked >= 150, `${checked} cases checked`);
  });
});
