// http.front.processes: the values it takes (a whole number, auto), its default, the cap at num_workers, and the
// config errors for bad values (naming the file and the key); and how http.pool is split between the fronts.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadYaml, loadYamlError } from '../config/tmp.js';
import { frontConfig, poolShare, shareOf } from '../../src/front/share.js';

function yaml(processes: string | null, numWorkers = 8): string {
  const front = processes === null ? '' : `\n  front:\n    processes: ${processes}`;
  return `version: '3'\nserver:\n  command: php worker.php\nhttp:\n  address: 127.0.0.1:8080\n  pool:\n    num_workers: ${numWorkers}${front}\n`;
}

describe('http.front.processes', () => {
  it('is 1 when absent', () => {
    assert.equal(loadYaml(yaml(null)).http!.front.processes, 1);
  });

  it('takes a whole number, written as a number or a string', () => {
    assert.equal(loadYaml(yaml('3')).http!.front.processes, 3);
    assert.equal(loadYaml(yaml('"2"')).http!.front.processes, 2);
  });

  it('takes auto: one per logical CPU', () => {
    const config = loadYaml(yaml('auto'), { cpus: 6 });
    assert.equal(config.http!.front.processes, 6);
    assert.equal(config.http!.front.auto, true);
  });

  it('runs no more processes than workers: auto quietly, a written number with a warning', () => {
    assert.equal(loadYaml(yaml('auto', 2), { cpus: 6 }).http!.front.processes, 2);
    const config = loadYaml(yaml('4', 3));
    assert.equal(config.http!.front.processes, 3);
    assert.ok(
      config.warnings.some((w) => w.startsWith('http.front.processes: 4 processes for 3 workers')),
      config.warnings.join('\n'),
    );
  });

  for (const bad of ['0', '-1', '1.5', 'many', 'true', '1000']) {
    it(`refuses ${bad}, naming the file and the key`, () => {
      const err = loadYamlError(yaml(bad));
      assert.equal(err.key, 'http.front.processes');
      assert.match(err.message, /\.rr\.yaml/);
      assert.match(err.message, /http\.front\.processes/);
      assert.match(err.message, /expected a whole number from 1 to 256 or auto/);
    });
  }
});

describe('the split of http.pool', () => {
  it('gives every front its share of the workers, the remainder to the first ones', () => {
    assert.deepEqual(
      [0, 1, 2].map((i) => shareOf(8, 3, i)),
      [3, 3, 2],
    );
    assert.deepEqual(
      [0, 1].map((i) => shareOf(5, 2, i)),
      [3, 2],
    );
    assert.equal(
      [0, 1, 2, 3].map((i) => shareOf(17, 4, i)).reduce((a, b) => a + b),
      17,
    );
  });

  it('splits max_queue_size the same way (0 stays unlimited, a share is at least 1), and keeps max_jobs', () => {
    const pool = loadYaml(yaml('2', 5)).http!.pool;
    const limited = { ...pool, maxQueueSize: 3, maxJobs: 7 };
    assert.deepEqual(
      [0, 1].map((i) => poolShare(limited, 2, i).maxQueueSize),
      [2, 1],
    );
    assert.deepEqual(
      [0, 1].map((i) => poolShare(limited, 2, i).maxJobs),
      [7, 7],
    );
    assert.equal(poolShare({ ...pool, maxQueueSize: 0 }, 2, 1).maxQueueSize, 0);
    assert.equal(poolShare({ ...limited, maxQueueSize: 1 }, 2, 1).maxQueueSize, 1);
  });

  it("splits dynamic_allocator's max_workers and spawn_rate (a spawn rate is at least 1), and keeps idle_timeout", () => {
    const pool = loadYaml(yaml('2', 5)).http!.pool;
    const dynamicAllocator = { maxWorkers: 5, spawnRate: 1, idleTimeout: 30_000, scaleOnWait: null };
    const shares = [0, 1].map((i) => poolShare({ ...pool, dynamicAllocator }, 2, i).dynamicAllocator!);
    assert.deepEqual(
      shares.map((d) => [d.maxWorkers, d.spawnRate, d.idleTimeout]),
      [
        [3, 1, 30_000],
        [2, 1, 30_000],
      ],
    );
    assert.equal(poolShare({ ...pool, dynamicAllocator: null }, 2, 0).dynamicAllocator, null);
  });

  it('leaves on_init and status to the primary, and the warnings (it logs them once)', () => {
    const config = loadYaml(yaml('2', 5));
    const front = frontConfig({ ...config, warnings: ['x'] }, 2, 1);
    assert.equal(front.http!.pool.numWorkers, 2);
    assert.equal(front.server.onInit, null);
    assert.equal(front.status, null);
    assert.deepEqual(front.warnings, []);
  });
});
