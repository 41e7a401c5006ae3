// http.overload_retry_after (rrts): off by default (RoadRunner's internal_error_code, no header); when set, the
// overload answer is 503 with Retry-After in whole seconds, unless no_free_workers_code names another status.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadYaml, loadYamlError } from './tmp.js';

const withHttp = (extra: string): string => `version: '3'\nserver:\n  command: php worker.php\nhttp:\n  address: 127.0.0.1:8080\n${extra}`;

describe('http.overload_retry_after', () => {
  test('absent: the internal error code and no Retry-After, as RoadRunner answers', () => {
    const config = loadYaml(withHttp('  internal_error_code: 502\n'));
    assert.equal(config.http?.overloadRetryAfter, 0);
    assert.equal(config.http?.noFreeWorkersCode, 502);
  });

  test('set: 503 with whole seconds, rounded up; no_free_workers_code still wins', () => {
    const config = loadYaml(withHttp('  overload_retry_after: 1500ms\n'));
    assert.equal(config.http?.overloadRetryAfter, 2);
    assert.equal(config.http?.noFreeWorkersCode, 503);
    assert.equal(loadYaml(withHttp('  overload_retry_after: 5s\n  no_free_workers_code: 429\n')).http?.noFreeWorkersCode, 429);
  });

  test('a bad value names the key', () => {
    assert.equal(loadYamlError(withHttp('  overload_retry_after: soon\n')).key, 'http.overload_retry_after');
  });
});
