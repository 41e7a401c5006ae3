// http.pool.dynamic_allocator read as RoadRunner 2024.3's InitDefaults reads it (defaults, caps, the under-1-s rule),
// plus rrts's scale_on_wait: absent (the mode decides), a duration, or 0 (RoadRunner's rule).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadYaml, loadYamlError } from './tmp.js';

const withAllocator = (section: string): string =>
  `version: '3'\nserver:\n  command: php worker.php\nhttp:\n  address: 127.0.0.1:8080\n  pool:\n    num_workers: 4\n    dynamic_allocator:${section}\n`;

describe('pool.dynamic_allocator', () => {
  test('absent: no dynamic allocation', () => {
    const config = loadYaml(`version: '3'\nserver:\n  command: php worker.php\nhttp:\n  address: 127.0.0.1:8080\n`);
    assert.equal(config.http?.pool.dynamicAllocator, null);
  });

  test("an empty section gets RoadRunner's defaults: 10 extra workers, 5 at a time, 1m idle", () => {
    const config = loadYaml(withAllocator(' {}'));
    assert.deepEqual(config.http?.pool.dynamicAllocator, { maxWorkers: 10, spawnRate: 5, idleTimeout: 60_000, scaleOnWait: null });
    assert.deepEqual(config.warnings, []);
  });

  test('written values are kept; scale_on_wait is a duration and 0 stays 0 (RoadRunner rule)', () => {
    const config = loadYaml(withAllocator('\n      max_workers: 28\n      spawn_rate: 7\n      idle_timeout: 2s\n      scale_on_wait: 5ms'));
    assert.deepEqual(config.http?.pool.dynamicAllocator, { maxWorkers: 28, spawnRate: 7, idleTimeout: 2_000, scaleOnWait: 5 });
    assert.equal(loadYaml(withAllocator('\n      scale_on_wait: 0')).http?.pool.dynamicAllocator?.scaleOnWait, 0);
  });

  test('max_workers and spawn_rate over 100 are lowered to 100, an idle_timeout under 1s means 1m, each with a warning', () => {
    const config = loadYaml(withAllocator('\n      max_workers: 250\n      spawn_rate: 101\n      idle_timeout: 500ms'));
    assert.deepEqual(config.http?.pool.dynamicAllocator, { maxWorkers: 100, spawnRate: 100, idleTimeout: 60_000, scaleOnWait: null });
    assert.deepEqual(config.warnings, [
      "http.pool.dynamic_allocator.max_workers: 250 is over RoadRunner's limit, using 100",
      "http.pool.dynamic_allocator.spawn_rate: 101 is over RoadRunner's limit, using 100",
      'http.pool.dynamic_allocator.idle_timeout: 500 ms is under 1s, using 1m as RoadRunner does',
    ]);
  });

  test('a bad value names the key', () => {
    const error = loadYamlError(withAllocator('\n      spawn_rate: lots'));
    assert.equal(error.key, 'http.pool.dynamic_allocator.spawn_rate');
    assert.match(error.message, /expected a whole number, got "lots"/);
  });
});
