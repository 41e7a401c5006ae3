// The `jobs:` section as RoadRunner reads it (docs/jobs.md §1): defaults, the pool with its command, parallelism's
// two defaults, num_pollers ignored, pipelines with missing or unknown drivers (loaded, warned about), consume.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadYaml, loadYamlError } from '../config/tmp.js';

const BASE = "version: '3'\nserver:\n  command: php worker.php\n";

describe('jobs config', () => {
  test('no jobs section: the plugin is off', () => {
    assert.equal(loadYaml(BASE, { cpus: 2 }).jobs, null);
  });

  test("RoadRunner's defaults: timeout 60 s, pipeline_size 1 000 000, parallelism 10, pool of one worker per CPU", () => {
    const jobs = loadYaml(`${BASE}jobs: {}\n`, { cpus: 3 }).jobs!;
    assert.equal(jobs.timeout, 60_000);
    assert.equal(jobs.pipelineSize, 1_000_000);
    assert.equal(jobs.parallelism, 10);
    assert.equal(jobs.pool.numWorkers, 3);
    assert.equal(jobs.pool.command, null);
    assert.deepEqual(jobs.pipelines, []);
    assert.deepEqual(jobs.consume, []);
  });

  test('every key read: pool with its command, options.parallelism (5 when the section has 0), pipelines, consume', () => {
    const config = loadYaml(
      `${BASE}jobs:\n  timeout: 5\n  pipeline_size: 10\n  options: {parallelism: 0}\n  pool: {num_workers: 4, command: php consumer.php, max_jobs: 7}\n` +
        `  pipelines:\n    a: {driver: memory, config: {priority: 3, prefetch: 9}}\n    b: {driver: memory, config: {}}\n  consume: [a]\n`,
      { cpus: 2 },
    );
    const jobs = config.jobs!;
    assert.equal(jobs.timeout, 5000);
    assert.equal(jobs.pipelineSize, 10);
    assert.equal(jobs.parallelism, 5);
    assert.deepEqual([jobs.pool.numWorkers, jobs.pool.command, jobs.pool.maxJobs], [4, ['php', 'consumer.php'], 7]);
    assert.deepEqual(jobs.pipelines, [
      { name: 'a', driver: 'memory', config: { priority: 3, prefetch: 9 } },
      { name: 'b', driver: 'memory', config: {} },
    ]);
    assert.deepEqual(jobs.consume, ['a']);
    assert.deepEqual(config.warnings, []);
  });

  test('num_pollers is ignored with a warning (RoadRunner overwrites it with num_workers + 2)', () => {
    const config = loadYaml(`${BASE}jobs:\n  num_pollers: 10\n`, { cpus: 2 }, 'rr.yaml');
    assert.equal(config.warnings.length, 1);
    assert.match(config.warnings[0]!, /key 'jobs\.num_pollers': RoadRunner ignores it too: the pollers are always pool\.num_workers \+ 2; ignored/);
  });

  test('a pipeline without a driver, or with one rrts lacks, loads with a warning naming it; consume of an unknown name too', () => {
    const config = loadYaml(
      `${BASE}jobs:\n  pipelines:\n    a: {config: {}}\n    b: {driver: ephemeral}\n    c: {driver: sqs, config: {}}\n  consume: [a, zz]\n`,
      { cpus: 2 },
    );
    assert.deepEqual(
      config.jobs!.pipelines.map((p) => [p.name, p.driver, p.config]),
      [
        ['a', '', {}],
        ['b', 'ephemeral', null],
        ['c', 'sqs', {}],
      ],
    );
    assert.deepEqual(config.warnings, [
      "jobs.pipelines.a: no 'driver' key: the pipeline is skipped (RoadRunner logs an error and skips it too)",
      "jobs.pipelines.b.driver: no jobs driver is named 'ephemeral': the pipeline is skipped; it is listed by jobs.List, pushes to it fail",
      "jobs.pipelines.c.driver: rrts has no 'sqs' jobs driver (RoadRunner has): the pipeline is skipped; it is listed by jobs.List, pushes to it fail",
      "jobs.consume: 'zz' is not in jobs.pipelines; ignored (it consumes if declared later)",
    ]);
  });

  test('bad values name the key', () => {
    assert.match(loadYamlError(`${BASE}jobs:\n  timeout: soon\n`).message, /key 'jobs\.timeout': expected a whole number/);
    assert.match(
      loadYamlError(`${BASE}jobs:\n  pipelines:\n    a: {driver: memory, config: [1]}\n`).message,
      /key 'jobs\.pipelines\.a\.config': expected a section/,
    );
    assert.match(loadYamlError(`${BASE}jobs:\n  pool: {num_workers: -1}\n`).message, /key 'jobs\.pool\.num_workers'/);
  });

  test('fork mode checks the jobs pool command like the http one', () => {
    const error = loadYamlError(`version: '3'\nserver:\n  command: php w.php\n  fork: {enabled: true}\njobs:\n  pool: {command: ./consumer}\n`);
    assert.equal(error.key, 'jobs.pool.command');
  });
});
