// The dotenv reader: syntax, quoting, escapes, and never overwriting a variable that is already set.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadDotenv, parseDotenv } from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';
import { writeFiles } from './tmp.js';

test('KEY=VALUE, export prefix, comments and blank lines', () => {
  const parsed = parseDotenv('# a comment\n\nA=1\nexport B = two \nC=three # trailing comment\nD=x#y\n');
  assert.deepEqual(parsed, { A: '1', B: 'two', C: 'three', D: 'x#y' });
});

test('single quotes are literal, double quotes unescape \\n', () => {
  const parsed = parseDotenv(`S='a $A \\n b'\nD="line1\\nline2 \\"q\\""\nE=""\n`, '.env', { A: 'x' });
  assert.equal(parsed.S, 'a $A \\n b');
  assert.equal(parsed.D, 'line1\nline2 "q"');
  assert.equal(parsed.E, '');
});

test('a double-quoted value may span lines', () => {
  assert.equal(parseDotenv('K="one\ntwo"\nL=3').K, 'one\ntwo');
});

test('${VAR} in a value sees earlier keys first, then the environment', () => {
  const parsed = parseDotenv('HOST=db\nURL=mysql://${HOST}:${PORT}/\nRAW=\\$HOST', '.env', { PORT: '3306', HOST: 'env-host' });
  assert.equal(parsed.URL, 'mysql://db:3306/');
  assert.equal(parsed.RAW, '$HOST');
});

test('a malformed line is a ConfigError naming the file and line', () => {
  assert.throws(
    () => parseDotenv('A=1\nnot a pair\n', 'app.env'),
    (error: unknown) => error instanceof ConfigError && error.line === 2 && /app\.env:2/.test(error.message),
  );
});

test('loadDotenv adds new variables and never overwrites set ones (even when empty)', () => {
  const dir = writeFiles({ '.env': 'NEW=from-file\nSET=from-file\nBLANK=from-file\n' });
  const env: NodeJS.ProcessEnv = { SET: 'from-env', BLANK: '' };
  const added = loadDotenv(join(dir, '.env'), env);
  assert.deepEqual(added, ['NEW']);
  assert.deepEqual(env, { SET: 'from-env', BLANK: '', NEW: 'from-file' });
});

test('a missing dotenv file is a ConfigError', () => {
  assert.throws(() => loadDotenv('/nonexistent/rrts/.env', {}), ConfigError);
});
