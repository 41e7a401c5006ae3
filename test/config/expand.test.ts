// ${VAR}, $VAR and ${VAR:-default} over strings and whole documents.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expandString, expandTree } from '../../src/config/index.js';

const env: Record<string, string> = { HOST: 'example.org', PORT: '8080', EMPTY: '' };
const lookup = (name: string): string | undefined => env[name];

test('${VAR} and $VAR', () => {
  assert.equal(expandString('${HOST}:$PORT', lookup), 'example.org:8080');
  assert.equal(expandString('http://$HOST/x', lookup), 'http://example.org/x');
});

test('${VAR:-default} uses the default when the variable is unset or empty, not when set', () => {
  assert.equal(expandString('${MISSING:-fallback}', lookup), 'fallback');
  assert.equal(expandString('${EMPTY:-fallback}', lookup), 'fallback');
  assert.equal(expandString('${PORT:-9999}', lookup), '8080');
  assert.equal(expandString('${MISSING:-}', lookup), '');
});

test('an unset variable without a default is empty', () => {
  assert.equal(expandString('a${MISSING}b$MISSING', lookup), 'ab');
});

test('each reference is expanded on its own (no rr quirk when forms are mixed)', () => {
  assert.equal(expandString('${HOST}:${MISSING:-7000}', lookup), 'example.org:7000');
  assert.equal(expandString('tcp://127.0.0.1:${RPC_PORT:-6001}', lookup), 'tcp://127.0.0.1:6001');
});

test('Go os.Expand edge cases: lone $, $$, ${}, unterminated ${', () => {
  assert.equal(expandString('costs 5$', lookup), 'costs 5$');
  assert.equal(expandString('a $ b', lookup), 'a $ b');
  assert.equal(expandString('a$$b', lookup), 'ab');
  assert.equal(expandString('a${}b', lookup), 'ab');
  assert.equal(expandString('a${HOST', lookup), 'aHOST');
  assert.equal(expandString('no dollars', lookup), 'no dollars');
});

test('expandTree reaches strings in maps and lists at any depth, never keys or non-strings', () => {
  const tree = {
    $HOST: '$HOST',
    nested: { list: ['${PORT}', 3, { deep: '${MISSING:-d}' }], number: 7, flag: true, none: null },
  };
  assert.deepEqual(expandTree(tree, lookup), {
    $HOST: 'example.org',
    nested: { list: ['8080', 3, { deep: 'd' }], number: 7, flag: true, none: null },
  });
});
