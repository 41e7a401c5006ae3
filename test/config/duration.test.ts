// Go durations to milliseconds, including the bare-integer-is-nanoseconds rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDuration } from '../../src/config/index.js';

test('units ns us µs μs ms s m h', () => {
  assert.equal(parseDuration('500ns'), 0.0005);
  assert.equal(parseDuration('10us'), 0.01);
  assert.equal(parseDuration('10µs'), 0.01);
  assert.equal(parseDuration('10μs'), 0.01);
  assert.equal(parseDuration('300ms'), 300);
  assert.equal(parseDuration('60s'), 60_000);
  assert.equal(parseDuration('2m'), 120_000);
  assert.equal(parseDuration('1h'), 3_600_000);
});

test('compound and fractional durations', () => {
  assert.equal(parseDuration('1m30s'), 90_000);
  assert.equal(parseDuration('2h45m'), 9_900_000);
  assert.equal(parseDuration('1.5h'), 5_400_000);
  assert.equal(parseDuration('.5s'), 500);
  assert.equal(parseDuration('1h0m0.5s'), 3_600_500);
  assert.equal(parseDuration(' 60s '), 60_000);
});

test('a bare integer is nanoseconds, as a YAML number or a digit-only string', () => {
  assert.equal(parseDuration(60), 0.00006);
  assert.equal(parseDuration('60'), 0.00006);
  assert.equal(parseDuration(1_000_000), 1);
  assert.equal(parseDuration(0), 0);
  assert.equal(parseDuration('0'), 0);
});

test('an empty string (an unset ${VAR}) is 0, meaning "use the default"', () => {
  assert.equal(parseDuration(''), 0);
});

test('invalid durations say what was expected', () => {
  for (const bad of ['1d', 'abc', '60 s', '1h30', '-1s', 's', '.s', '1.5', 1.5, -5, true, [], {}]) {
    assert.throws(() => parseDuration(bad), /expected a duration like "60s" or "500ms"/, `for ${JSON.stringify(bad)}`);
  }
});
