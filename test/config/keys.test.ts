// Keys rrts does not read: one warning each with file:line (or the -o flag) and a did-you-mean, "not implemented"
// for RoadRunner features rrts lacks, strict mode, and a check that the key table and the section readers agree.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, type Config, type LoadOptions } from '../../src/config/index.js';
import { isPlainMap, type PlainMap } from '../../src/config/coerce.js';
import { parseConfigText } from '../../src/config/document.js';
import { CONFIG_KEYS, closestKey, editDistance, type KeyTable } from '../../src/config/keys.js';
import { SectionReader } from '../../src/config/reader.js';
import type { SectionContext } from '../../src/config/sections/context.js';
import { readHttp } from '../../src/config/sections/http.js';
import { readAmqp } from '../../src/config/sections/amqp.js';
import { readBeanstalk } from '../../src/config/sections/beanstalk.js';
import { readNats } from '../../src/config/sections/nats.js';
import { readJobs } from '../../src/config/sections/jobs.js';
import { readLogs } from '../../src/config/sections/logs.js';
import { readServer } from '../../src/config/sections/server.js';
import { readEndure, readMetrics, readRpc, readStatus } from '../../src/config/sections/services.js';
import { ConfigError } from '../../src/errors.js';
import { FULL_CONFIG_TEXT, writeFullConfig } from './full-config.js';
import { loadYaml, loadYamlError, writeConfig } from './tmp.js';

const load = (yaml: string, opts: Partial<LoadOptions> = {}): Config => loadYaml(yaml, { cpus: 2, ...opts }, 'rr.yaml');
const loadError = (yaml: string, opts: Partial<LoadOptions> = {}): ConfigError => loadYamlError(yaml, { cpus: 2, ...opts }, 'rr.yaml');

/** The warnings with the config's absolute path (as the test passes it) written as its name. */
function tails(config: Config): string[] {
  return config.warnings.map((warning) => warning.replaceAll(config.file, 'rr.yaml'));
}

const TYPOS = `version: '3'
server:
  command: php worker.php
  forks:
    enabled: true
http:
  address: 127.0.0.1:8080
  pool:
    num_worker: 4
    supervisor:
      max_worker_memroy: 100
logs:
  channels:
    http:
      levle: info
metrics:
  collect:
    hits:
      type: counter
      lables: [route]
htpp:
  address: 127.0.0.1:8081
`;

describe('keys rrts does not read', () => {
  test('each gets one warning with the file, the line, the key and the nearest known key', () => {
    assert.deepEqual(tails(load(TYPOS)), [
      "rr.yaml:4, key 'server.forks': unknown key (did you mean 'fork'?); ignored",
      "rr.yaml:9, key 'http.pool.num_worker': unknown key (did you mean 'num_workers'?); ignored",
      "rr.yaml:11, key 'http.pool.supervisor.max_worker_memroy': unknown key (did you mean 'max_worker_memory'?); ignored",
      "rr.yaml:15, key 'logs.channels.http.levle': unknown key (did you mean 'level'?); ignored",
      "rr.yaml:20, key 'metrics.collect.hits.lables': unknown key (did you mean 'labels'?); ignored",
      "rr.yaml:21, key 'htpp': unknown section (neither rrts nor RoadRunner has a plugin of that name) (did you mean 'http'?); ignored",
    ]);
  });

  test('a key far from every known one gets no suggestion', () => {
    const config = load(`version: '3'\nserver:\n  command: php w.php\n  colour: blue\n`);
    assert.deepEqual(tails(config), ["rr.yaml:4, key 'server.colour': unknown key; ignored"]);
  });

  test('a key set by -o names the flag', () => {
    const config = load(`version: '3'\nserver:\n  command: php w.php\nhttp:\n  address: 127.0.0.1:8080\n`, {
      overrides: ['http.pool.num_wrkers=3'],
    });
    assert.equal(config.warnings.length, 1);
    assert.match(
      config.warnings[0]!,
      /rr\.yaml, key 'http\.pool\.num_wrkers': unknown key \(did you mean 'num_workers'\?\) \(set by -o http\.pool\.num_wrkers=3\); ignored$/,
    );
  });

  test('RoadRunner features rrts does not have say so, once, and nothing below them is checked', () => {
    const config = load(`version: '3'
server:
  command: php worker.php
http:
  address: 127.0.0.1:8080
  fcgi:
    address: tcp://0.0.0.0:7921
  http3:
    address: 127.0.0.1:8443
  cache:
    api: {basepath: /souin-api}
  pool:
    dynamic_allocater:
      max_workers: 25
logs:
  file_logger_options:
    max_size: 10
jobs:
  pool:
    num_wrkers: 2
kv:
  local: {driver: memory}
reload:
  interval: 1s
`);
    assert.deepEqual(tails(config), [
      "rr.yaml:6, key 'http.fcgi': rrts does not implement RoadRunner's FastCGI server; ignored",
      "rr.yaml:8, key 'http.http3': rrts does not implement RoadRunner's HTTP/3 server; ignored",
      "rr.yaml:10, key 'http.cache': rrts does not implement RoadRunner's RFC 7234 cache middleware (Souin); ignored",
      "rr.yaml:13, key 'http.pool.dynamic_allocater': unknown key (did you mean 'dynamic_allocator'?); ignored",
      "rr.yaml:16, key 'logs.file_logger_options': rrts does not implement RoadRunner's rotating log files (logs go to `output`); ignored",
      "rr.yaml:20, key 'jobs.pool.num_wrkers': unknown key (did you mean 'num_workers'?); ignored",
      "rr.yaml:21, key 'kv': rrts does not implement RoadRunner's kv (key-value storage) plugin; ignored",
      "rr.yaml:23, key 'reload': RoadRunner removed the reload plugin in v2023.1.0 and rrts does not have it; ignored",
    ]);
  });

  test('a key of an included file points at that file', () => {
    const { file, dir } = writeConfig(`version: '3'\ninclude: [more.yaml]\nserver:\n  command: php w.php\n`, 'rr.yaml');
    writeFileSync(join(dir, 'more.yaml'), `version: '3'\nstatus:\n  address: 127.0.0.1:2114\n  check_timout: 5\n`);
    const config = loadConfig({ configPath: file, env: {} });
    assert.deepEqual(config.warnings, ["more.yaml:4, key 'status.check_timout': unknown key (did you mean 'check_timeout'?); ignored"]);
  });

  test('a file with only known keys has no warnings', () => {
    assert.deepEqual(loadConfig({ configPath: writeFullConfig().file, env: {} }).warnings, []);
  });
});

describe('strict mode', () => {
  const typo = `version: '3'\nserver:\n  command: php w.php\nhttp:\n  address: 127.0.0.1:8080\n  pool:\n    num_worker: 4\n`;

  test('strict: the first unread key is a config error with its file and line', () => {
    const error = loadError(typo, { strict: true });
    assert.equal(error.key, 'http.pool.num_worker');
    assert.equal(error.line, 7);
    assert.match(
      error.message,
      /rr\.yaml:7, key 'http\.pool\.num_worker': unknown key \(did you mean 'num_workers'\?\); refused by --strict or RRTS_STRICT=1$/,
    );
  });

  test('RRTS_STRICT=1 in the environment does the same; strict: false wins over it', () => {
    assert.equal(loadError(typo, { env: { RRTS_STRICT: '1' } }).key, 'http.pool.num_worker');
    assert.equal(load(typo, { env: { RRTS_STRICT: '1' }, strict: false }).warnings.length, 1);
    assert.equal(load(typo, { env: { RRTS_STRICT: '0' } }).warnings.length, 1);
  });

  test('a feature rrts does not implement is refused too', () => {
    const error = loadError(`version: '3'\nserver:\n  command: php w.php\ngrpc:\n  listen: tcp://127.0.0.1:9001\n`, { strict: true });
    assert.equal(error.key, 'grpc');
    assert.match(error.message, /rr\.yaml:4, key 'grpc': rrts does not implement RoadRunner's grpc plugin; refused by --strict/);
  });

  test('a clean file loads in strict mode', () => {
    assert.deepEqual(loadConfig({ configPath: writeFullConfig().file, env: {}, strict: true }).warnings, []);
  });
});

describe('RoadRunner-sample shapes', () => {
  // The shapes of RoadRunner's own sample .rr.yaml that used to stop rrts: a quantile of 1, ACME next to an address.
  const SAMPLE_LIKE = `version: '3'
server:
  command: php worker.php
http:
  address: 127.0.0.1:8080
  pool:
    num_workers: 1
    dynamic_allocator:
      max_workers: 25
  ssl:
    address: 127.0.0.1:443
    acme:
      email: you@example.com
      domains: [example.com]
    redirect: true
  fcgi:
    address: tcp://0.0.0.0:7921
metrics:
  collect:
    app_metric_summary:
      type: summary
      labels: [type]
      objectives:
        0.1: 2.3
        1.0: 1.4
temporal:
  address: 127.0.0.1:7233
service:
  meh:
    command: php meh.php
`;

  test('it loads, with one warning per section or key rrts does not implement', () => {
    const config = load(SAMPLE_LIKE);
    assert.equal(config.http?.ssl, null, 'ACME is not implemented: no https without a certificate');
    assert.deepEqual(
      config.warnings.map((warning) => warning.match(/key '([^']+)'/)?.[1]),
      ['http.ssl.acme', 'http.fcgi', 'temporal', 'service'],
    );
    assert.ok(config.warnings.every((warning) => warning.includes('rrts does not implement')));
    assert.deepEqual(config.http?.pool.dynamicAllocator, { maxWorkers: 25, spawnRate: 5, idleTimeout: 60_000, scaleOnWait: null });
  });

  test('a quantile of 0 or 1 is valid; above 1 it is an error naming the line', () => {
    const ok = load(SAMPLE_LIKE.replace('0.1: 2.3', '0: 2.3'));
    assert.deepEqual(Object.keys((ok.metrics?.collect['app_metric_summary'] as PlainMap)['objectives'] as PlainMap).sort(), ['0', '1']);
    const error = loadError(SAMPLE_LIKE.replace('1.0: 1.4', '1.5: 1.4'));
    assert.equal(error.key, 'metrics.collect.app_metric_summary.objectives');
    assert.equal(error.line, 23);
    assert.match(error.message, /quantiles must be from 0 to 1, got 1\.5/);
  });

  test('objectives of a collector other than a summary are not checked (RoadRunner 2023 and 2024 samples)', () => {
    const config = load(SAMPLE_LIKE.replace('type: summary', 'type: histogram').replace('1.0: 1.4', '2.0: 1.4'));
    assert.ok(config.metrics?.collect['app_metric_summary']);
  });

  test('a metric or label name Prometheus refuses names its line', () => {
    const badName = loadError(SAMPLE_LIKE.replace('app_metric_summary:', 'app-metric:'));
    assert.equal(badName.key, 'metrics.collect.app-metric');
    assert.equal(badName.line, 20);
    assert.match(badName.message, /Invalid metric name/);
    const badLabel = loadError(SAMPLE_LIKE.replace('labels: [type]', 'labels: [a-b]'));
    assert.equal(badLabel.key, 'metrics.collect.app_metric_summary');
    assert.match(badLabel.message, /rr\.yaml:20, key 'metrics\.collect\.app_metric_summary': Invalid label name/);
  });

  test('a bad collector type names its line', () => {
    const error = loadError(SAMPLE_LIKE.replace('type: summary', 'type: summry'));
    assert.equal(error.key, 'metrics.collect.app_metric_summary.type');
    assert.equal(error.line, 21);
  });

  test('ACME with no address and no certificate is still an error: there would be nothing to serve', () => {
    const error = loadError(SAMPLE_LIKE.replace('  address: 127.0.0.1:8080\n', ''));
    assert.equal(error.key, 'http.ssl.acme');
    assert.match(error.message, /ACME is not supported by rrts/);
  });
});

describe('did you mean', () => {
  test('edit distance counts a swap of neighbours as one edit', () => {
    assert.equal(editDistance('memroy', 'memory'), 1);
    assert.equal(editDistance('num_worker', 'num_workers'), 1);
    assert.equal(editDistance('abc', 'abc'), 0);
    assert.equal(editDistance('', 'abc'), 3);
    assert.equal(editDistance('kitten', 'sitting'), 3);
  });

  test('short keys need a closer match than long ones', () => {
    assert.equal(closestKey('h2', ['h2c', 'ssl']), 'h2c');
    assert.equal(closestKey('tls', ['ssl', 'ttl']), null);
    assert.equal(closestKey('ttls', ['ssl', 'ttl']), 'ttl');
    assert.equal(closestKey('xy', ['ssl']), null);
    assert.equal(closestKey('max_worker_mem', ['max_worker_memory']), null);
  });
});

describe('the key table and the section readers', () => {
  /** Table paths of the keys rrts reads, with `*` for user-chosen names (log channels, metric names). */
  function tablePaths(table: KeyTable, prefix: string, into: Set<string>): Set<string> {
    for (const [name, spec] of Object.entries(table)) {
      const path = prefix === '' ? name : `${prefix}.${name}`;
      if (spec.kind === 'ignored') continue;
      into.add(path);
      if (spec.kind === 'section') tablePaths(spec.keys, path, into);
      if (spec.kind === 'named') tablePaths(spec.each, `${path}.*`, into.add(`${path}.*`));
    }
    return into;
  }

  /** Wraps every map of `data` so that each key a reader looks up is recorded (as a table path). */
  function recording(data: PlainMap, path: string, read: Set<string>): PlainMap {
    const star = (child: string): string => child.replace(/^(logs\.channels|metrics\.collect|jobs\.pipelines)\.[^.]+/, '$1.*');
    const wrapped: PlainMap = {};
    for (const [key, value] of Object.entries(data)) {
      const child = path === '' ? key : `${path}.${key}`;
      wrapped[key] =
        isPlainMap(value) && !/\.(env|request|response|objectives)$|^jobs\.pipelines\.[^.]+\.config$/.test(child) ? recording(value, child, read) : value;
    }
    return new Proxy(wrapped, {
      get(target, key, receiver) {
        // absent keys count too: a reader that looks a key up reads it
        if (typeof key === 'string' && key !== 'toJSON') read.add(star(path === '' ? key : `${path}.${key}`));
        return Reflect.get(target, key, receiver) as unknown;
      },
    });
  }

  test('the readers read every key of the table, and no other', () => {
    const { dir } = writeFullConfig();
    const source = parseConfigText(FULL_CONFIG_TEXT, 'rr.yaml');
    const read = new Set<string>();
    const root = new SectionReader('', recording(source.data, '', read), source.origins);
    const ctx: SectionContext = { workDir: dir, cpus: 2, warnings: [] };
    const readers: ((root: SectionReader, ctx: SectionContext) => unknown)[] = [
      (section, context) => readServer(section, context, true),
      readHttp,
      readRpc,
      readLogs,
      readStatus,
      readMetrics,
      readEndure,
      readJobs,
      readAmqp,
      readBeanstalk,
      readNats,
    ];
    for (const read of readers) read(root, ctx);
    assert.deepEqual(ctx.warnings, []);
    // load.ts reads these two itself; informer, resetter and lock have no keys and no reader.
    for (const path of ['version', 'include', 'informer', 'resetter', 'lock']) read.add(path);
    const declared = tablePaths(CONFIG_KEYS, '', new Set());
    // ssl.acme is looked at (to turn https off) though rrts does not implement it
    const undeclared = [...read].filter((path) => !declared.has(path) && path !== 'http.ssl.acme');
    assert.deepEqual(undeclared, [], 'keys a reader reads that the table lacks');
    assert.deepEqual(
      [...declared].filter((path) => !read.has(path)),
      [],
      'keys in the table no reader reads (or FULL_CONFIG_TEXT lacks)',
    );
  });
});
