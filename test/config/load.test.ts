// loadConfig end to end: real files under os.tmpdir(), RoadRunner's defaults, weak typing, -o, dotenv,
// includes, and error messages that name the file, the line and the key.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { loadConfig, type Config, type LoadOptions } from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';
import { loadYaml, loadYamlError, writeConfig, writeFiles } from './tmp.js';
import { poolConfig } from '../support/pool-config.js';
import { poolForkSpares } from '../../src/config/sections/server.js';

const MB = 1024 * 1024;

const load = (yaml: string, opts: Partial<LoadOptions> = {}): Config => loadYaml(yaml, opts);
const loadError = (yaml: string, opts: Partial<LoadOptions> = {}): ConfigError => loadYamlError(yaml, opts);

/** A minimal valid file with an http section; `extra` is appended verbatim. */
function withHttp(extra = ''): string {
  return `version: '3'\nserver:\n  command: php worker.php\nhttp:\n  address: 127.0.0.1:8080\n${extra}`;
}

describe('defaults', () => {
  test('a minimal file gets RoadRunner defaults everywhere', () => {
    const { file, dir } = writeConfig(withHttp());
    const config = loadConfig({ configPath: file, env: {}, cpus: 3 });
    assert.equal(config.version, '3');
    assert.equal(config.file, file);
    assert.equal(config.workDir, dir);
    assert.deepEqual(config.server, {
      command: ['php', 'worker.php'],
      user: '',
      group: '',
      env: {},
      relay: 'pipes',
      onInit: null,
      fork: { enabled: false, preload: null, spares: 1 },
    });
    assert.deepEqual(config.http, {
      address: '127.0.0.1:8080',
      internalErrorCode: 500,
      accessLogs: false,
      maxRequestSize: 1000 * MB,
      rawBody: false,
      middleware: [],
      trustedSubnets: [],
      uploads: { dir: tmpdir(), forbid: [], allow: [] },
      pool: poolConfig({ numWorkers: 3, destroyTimeout: 60_000 }),
      ssl: null,
      http2: { h2c: false, maxConcurrentStreams: 128 },
      noFreeWorkersCode: 500,
      overloadRetryAfter: 0,
      execTtlCode: 500,
      readHeaderTimeout: 300_000,
      readTimeout: 300_000,
      headers: { request: {}, response: {}, cors: null },
      static: null,
      front: { processes: 1 },
    });
    assert.equal(config.rpc, null);
    assert.equal(config.status, null);
    assert.equal(config.metrics, null);
    assert.deepEqual(config.logs, {
      mode: 'development',
      level: 'debug',
      encoding: 'console',
      lineEnding: '\n',
      output: ['stderr'],
      errOutput: ['stderr'],
      channels: {},
    });
    assert.deepEqual(config.endure, { gracePeriod: 30_000, printGraph: false, logLevel: 'error', watchdogSec: 0 });
    assert.deepEqual(config.warnings, []);
  });

  test('no http section: http is null; no server section either: an empty command, no error', () => {
    assert.equal(load(`version: '3'\nserver:\n  command: php w.php\n`).http, null);
    const clientOnly = load(`version: '3'\nrpc:\n  listen: tcp://127.0.0.1:6001\n`);
    assert.deepEqual(clientOnly.server.command, []);
  });

  test('http without a server section is an error', () => {
    const error = loadError(`version: '3'\nhttp:\n  address: :8080\n`);
    assert.equal(error.key, 'server');
  });

  test('rpc, status, metrics defaults when their sections exist', () => {
    const config = load(withHttp() + 'rpc: {}\nstatus:\n  address: 127.0.0.1:2114\nmetrics: {}\n');
    assert.deepEqual(config.rpc, { listen: 'tcp://127.0.0.1:6001' });
    assert.deepEqual(config.status, { address: '127.0.0.1:2114', unavailableStatusCode: 503, checkTimeout: 60 });
    assert.deepEqual(config.metrics, { address: '127.0.0.1:2112', collect: {} });
  });

  test('endure settings', () => {
    const config = load(withHttp() + 'endure:\n  grace_period: 10s\n  print_graph: true\n  log_level: warning\n  watchdog_sec: 5\n');
    assert.deepEqual(config.endure, { gracePeriod: 10_000, printGraph: true, logLevel: 'warn', watchdogSec: 5 });
  });

  test('a section written as null (`rpc:` with nothing after it) counts as absent', () => {
    assert.equal(load(withHttp() + 'rpc:\n').rpc, null);
  });
});

describe('work directory and config path', () => {
  test('without -w the work dir is the config file folder, and -c resolves against the current directory', () => {
    const { file, dir } = writeConfig(withHttp());
    const config = loadConfig({ configPath: relative(process.cwd(), file), env: {} });
    assert.equal(config.file, file);
    assert.equal(config.workDir, dir);
  });

  test('with -w the config path resolves against it and it is the work dir', () => {
    const dir = writeFiles({ 'conf/rr.yaml': withHttp() });
    const config = loadConfig({ configPath: 'conf/rr.yaml', workDir: dir, env: {} });
    assert.equal(config.file, join(dir, 'conf', 'rr.yaml'));
    assert.equal(config.workDir, dir);
  });

  test('a missing config file or work dir is a ConfigError', () => {
    assert.throws(() => loadConfig({ configPath: '/nonexistent/rrts/.rr.yaml', env: {} }), ConfigError);
    assert.throws(() => loadConfig({ configPath: '.rr.yaml', workDir: '/nonexistent/rrts', env: {} }), ConfigError);
  });

  test('server.fork: paths stay as written, preload is made absolute against the work dir', () => {
    const yaml = withHttp().replace('  command: php worker.php\n', '  command: php worker.php\n  fork:\n    enabled: "true"\n    preload: app/preload.php\n');
    const { file, dir } = writeConfig(yaml);
    const config = loadConfig({ configPath: file, env: {} });
    assert.deepEqual(config.server.fork, { enabled: true, preload: join(dir, 'app/preload.php'), spares: 1 });
    assert.deepEqual(config.server.command, ['php', 'worker.php']);
  });

  test('server.fork.spares: 1 by default, 0 to 16 allowed, anything else a ConfigError naming the key', () => {
    const withSpares = (value: string): string =>
      withHttp().replace('  command: php worker.php\n', `  command: php worker.php\n  fork:\n    enabled: true\n    spares: ${value}\n`);
    assert.equal(load(withSpares('0')).server.fork.spares, 0);
    assert.equal(load(withSpares('"16"')).server.fork.spares, 16);
    for (const bad of ['17', '-1', 'many']) {
      const error = loadError(withSpares(bad));
      assert.match(error.message, /server\.fork\.spares/, `${bad}: ${error.message}`);
    }
  });

  test('a pool with a dynamic_allocator parks one spare per extra worker, at most 16, unless server.fork.spares is written', () => {
    const fork = (spares: string | null): string =>
      withHttp().replace(
        '  command: php worker.php\n',
        `  command: php worker.php\n  fork:\n    enabled: true\n${spares === null ? '' : `    spares: ${spares}\n`}`,
      );
    const dynamic = (maxWorkers: number) => poolConfig({ dynamicAllocator: { maxWorkers, spawnRate: 5, idleTimeout: 60_000, scaleOnWait: 5 } });
    const unwritten = load(fork(null)).server.fork;
    assert.equal(poolForkSpares(unwritten, poolConfig()), 1);
    assert.equal(poolForkSpares(unwritten, dynamic(10)), 10);
    assert.equal(poolForkSpares(unwritten, dynamic(28)), 16);
    assert.equal(poolForkSpares(load(fork('0')).server.fork, dynamic(28)), 0);
    assert.equal(poolForkSpares(load(fork('1')).server.fork, dynamic(28)), 1);
  });
});

describe('${VAR} substitution', () => {
  const yaml = withHttp().replace('127.0.0.1:8080', '${HOST:-127.0.0.1}:${PORT:-8080}') + '  middleware: ["${MW:-gzip}"]\n';

  test('unset variables take the default', () => {
    const config = load(yaml, { env: {} });
    assert.equal(config.http?.address, '127.0.0.1:8080');
    assert.deepEqual(config.http?.middleware, ['gzip']);
  });

  test('empty variables take the default too', () => {
    assert.equal(load(yaml, { env: { HOST: '', PORT: '' } }).http?.address, '127.0.0.1:8080');
  });

  test('set variables win', () => {
    const config = load(yaml, { env: { HOST: '0.0.0.0', PORT: '9000', MW: 'headers' } });
    assert.equal(config.http?.address, '0.0.0.0:9000');
    assert.deepEqual(config.http?.middleware, ['headers']);
  });

  test('a substituted number is weakly typed; an unset one means the default', () => {
    const yamlWithPool = withHttp('  pool:\n    num_workers: ${WORKERS}\n');
    assert.equal(load(yamlWithPool, { env: { WORKERS: '7' } }).http?.pool.numWorkers, 7);
    assert.equal(load(yamlWithPool, { env: {} }).http?.pool.numWorkers, 4);
  });

  test('raw holds the substituted document', () => {
    const config = load(yaml, { env: { PORT: '1' } });
    assert.equal((config.raw.http as Record<string, unknown>).address, '127.0.0.1:1');
  });
});

describe('-o overrides', () => {
  test('-o http.pool.num_workers=4 replaces a value and is typed weakly', () => {
    const config = load(withHttp('  pool:\n    num_workers: 2\n'), { overrides: ['http.pool.num_workers=4'] });
    assert.equal(config.http?.pool.numWorkers, 4);
  });

  test('-o creates a path that the file does not have', () => {
    const config = load(withHttp(), { overrides: ['rpc.listen=tcp://127.0.0.1:7000', 'http.pool.supervisor.exec_ttl=30s'] });
    assert.deepEqual(config.rpc, { listen: 'tcp://127.0.0.1:7000' });
    assert.equal(config.http?.pool.supervisor?.execTtl, 30_000);
  });

  test('-o values: quotes stripped, spaces trimmed, env substituted, comma lists, later flags win', () => {
    const config = load(withHttp(), {
      env: { ADDR: '0.0.0.0:9999' },
      overrides: [' "http.address = ${ADDR}', `http.middleware='headers,gzip'`, 'http.access_logs=true', 'http.access_logs=false'],
    });
    assert.equal(config.http?.address, '0.0.0.0:9999');
    assert.deepEqual(config.http?.middleware, ['headers', 'gzip']);
    assert.equal(config.http?.accessLogs, false);
  });

  test('-o keys are case-insensitive like file keys', () => {
    assert.equal(load(withHttp(), { overrides: ['HTTP.Address=127.0.0.1:1'] }).http?.address, '127.0.0.1:1');
  });

  test('-o version=3 can supply the version', () => {
    assert.equal(load('server:\n  command: php w.php\n', { overrides: ['version=3'] }).version, '3');
  });

  test('malformed -o flags are usage errors', () => {
    for (const flag of ['http.address', '=x', 'http.address=', 'http.address=  ']) {
      assert.throws(() => load(withHttp(), { overrides: [flag] }), /usage: -o key=value/, flag);
    }
  });

  test('a bad -o value names the key and the flag', () => {
    const error = loadError(withHttp(), { overrides: ['http.pool.num_workers=four'] });
    assert.equal(error.key, 'http.pool.num_workers');
    assert.match(error.message, /expected a whole number, got "four" \(set by -o http\.pool\.num_workers=four\)/);
  });
});

describe('dotenv', () => {
  const yaml = withHttp().replace('  command: php worker.php\n', '  command: php worker.php\n  env:\n    PORT: ${APP_PORT}\n    WHO: ${WHO}\n');

  test('--dotenv (relative to the work dir) feeds ${VAR} and never overwrites the environment', () => {
    const dir = writeFiles({ '.rr.yaml': yaml, '.env': 'APP_PORT=9000\nWHO=file\n' });
    const env: NodeJS.ProcessEnv = { WHO: 'env' };
    const config = loadConfig({ configPath: join(dir, '.rr.yaml'), dotenv: '.env', env });
    assert.deepEqual(config.server.env, { PORT: '9000', WHO: 'env' });
    assert.equal(env.APP_PORT, '9000');
    assert.equal(env.WHO, 'env');
  });

  test('DOTENV_PATH in the environment wins over --dotenv', () => {
    const dir = writeFiles({ '.rr.yaml': yaml, 'a.env': 'APP_PORT=1\nWHO=a\n', 'b.env': 'APP_PORT=2\nWHO=b\n' });
    const env: NodeJS.ProcessEnv = { DOTENV_PATH: join(dir, 'b.env') };
    const config = loadConfig({ configPath: join(dir, '.rr.yaml'), dotenv: 'a.env', env });
    assert.deepEqual(config.server.env, { PORT: '2', WHO: 'b' });
  });

  test('a missing dotenv file is an error', () => {
    assert.throws(() => load(yaml, { dotenv: 'missing.env' }), ConfigError);
  });
});

describe('durations and sizes', () => {
  test('pool durations: Go strings, bare integers as nanoseconds, 0 as the default', () => {
    const pool = load(
      withHttp(
        '  pool:\n    allocate_timeout: 60\n    reset_timeout: 1m30s\n    stream_timeout: "500ms"\n    destroy_timeout: 0\n' +
          '    supervisor:\n      exec_ttl: 1.5h\n      idle_ttl: 10s\n',
      ),
    ).http!.pool;
    assert.equal(pool.allocateTimeout, 0.00006);
    assert.equal(pool.resetTimeout, 90_000);
    assert.equal(pool.streamTimeout, 500);
    assert.equal(pool.destroyTimeout, 60_000);
    assert.deepEqual(pool.supervisor, { watchTick: 5_000, ttl: 0, idleTtl: 10_000, maxWorkerMemory: 0, execTtl: 5_400_000 });
  });

  test('a bad duration names the key and the expected form', () => {
    const error = loadError(withHttp('  pool:\n    supervisor:\n      ttl: 10 minutes\n'));
    assert.equal(error.key, 'http.pool.supervisor.ttl');
    assert.equal(error.line, 8);
    assert.match(error.message, /expected a duration like "60s" or "500ms", got "10 minutes"/);
  });

  test('sizes are megabytes: max_request_size (0 means 1000 MB) and max_worker_memory', () => {
    const http = load(withHttp('  max_request_size: 10\n  pool:\n    supervisor:\n      max_worker_memory: "256"\n')).http!;
    assert.equal(http.maxRequestSize, 10 * MB);
    assert.equal(http.pool.supervisor?.maxWorkerMemory, 256 * MB);
    assert.equal(load(withHttp('  max_request_size: 0\n')).http?.maxRequestSize, 1000 * MB);
    assert.match(loadError(withHttp('  max_request_size: 10MB\n')).message, /expected a whole number of megabytes, got "10MB"/);
  });

  test('status.check_timeout is whole seconds (a "30s" duration is accepted too)', () => {
    assert.equal(load(withHttp() + 'status:\n  address: :2114\n  check_timeout: 5\n').status?.checkTimeout, 5);
    assert.equal(load(withHttp() + 'status:\n  address: :2114\n  check_timeout: 30s\n').status?.checkTimeout, 30);
  });
});

describe('weak typing', () => {
  test('comma-separated strings become lists', () => {
    const http = load(withHttp('  middleware: "headers,gzip"\n  trusted_subnets: "10.0.0.0/8, 127.0.0.0/8"\n')).http!;
    assert.deepEqual(http.middleware, ['headers', 'gzip']);
    assert.deepEqual(http.trustedSubnets, ['10.0.0.0/8', '127.0.0.0/8']);
  });

  test('upload extensions are lower-cased and get a leading dot', () => {
    const uploads = load(withHttp('  uploads:\n    dir: tmp/uploads\n    forbid: "PHP,.Exe"\n    allow: [jpg, .PNG]\n')).http!.uploads;
    assert.deepEqual(uploads, { dir: 'tmp/uploads', forbid: ['.php', '.exe'], allow: ['.jpg', '.png'] });
  });

  test('server.env: a list of one-key maps is merged, keys upper-cased, booleans become 1/0', () => {
    const yaml = withHttp().replace(
      '  command: php worker.php\n',
      '  command: php worker.php\n  env:\n    - App_Env: prod\n    - {Debug: true}\n    - {EMPTY: }\n    - {N: 2}\n',
    );
    assert.deepEqual(load(yaml).server.env, { APP_ENV: 'prod', DEBUG: '1', EMPTY: '', N: '2' });
  });

  test('server.env as a map, values substituted', () => {
    const yaml = withHttp().replace('  command: php worker.php\n', '  command: php worker.php\n  env:\n    dsn: mysql://$DB_HOST/app\n');
    assert.deepEqual(load(yaml, { env: { DB_HOST: 'db' } }).server.env, { DSN: 'mysql://db/app' });
  });

  test('strings for ints and bools', () => {
    const http = load(withHttp('  access_logs: "true"\n  raw_body: "1"\n  pool:\n    max_jobs: "100"\n    debug: "false"\n')).http!;
    assert.equal(http.accessLogs, true);
    assert.equal(http.rawBody, true);
    assert.equal(http.pool.maxJobs, 100);
    assert.equal(http.pool.debug, false);
  });

  test('keys are case-insensitive', () => {
    const config = load(`Version: '3'\nSERVER:\n  Command: php w.php\nHttp:\n  ADDRESS: 127.0.0.1:80\n  Pool:\n    Num_Workers: 2\n`);
    assert.equal(config.http?.address, '127.0.0.1:80');
    assert.equal(config.http?.pool.numWorkers, 2);
  });

  test('a negative count or a non-bool word is an error', () => {
    assert.match(loadError(withHttp('  pool:\n    max_jobs: -1\n')).message, /expected a whole number \(0 or more\), got -1/);
    assert.match(loadError(withHttp('  access_logs: yes please\n')).message, /expected true or false, got "yes please"/);
  });
});

describe('commands', () => {
  function serverWith(command: string): string {
    return withHttp().replace('  command: php worker.php\n', `  command: ${command}\n`);
  }

  test('a string is split on runs of spaces, with no shell quoting', () => {
    assert.deepEqual(load(serverWith('"php  -d memory_limit=1G   worker.php"')).server.command, ['php', '-d', 'memory_limit=1G', 'worker.php']);
    assert.deepEqual(load(serverWith(`"php 'my worker.php'"`)).server.command, ['php', "'my", "worker.php'"]);
  });

  test('a list is argv as written (a list of one string is split like a string, as rr does)', () => {
    assert.deepEqual(load(serverWith('[php, "my worker.php"]')).server.command, ['php', 'my worker.php']);
    assert.deepEqual(load(serverWith('["php worker.php"]')).server.command, ['php', 'worker.php']);
  });

  test('an empty or missing command is an error', () => {
    for (const yaml of [serverWith('""'), serverWith('[]'), withHttp().replace('  command: php worker.php\n', '  user: www\n')]) {
      const error = loadError(yaml);
      assert.equal(error.key, 'server.command');
      assert.match(error.message, /command should not be empty/);
    }
  });

  test('http.pool.command overrides per pool; on_init needs its own command', () => {
    assert.deepEqual(load(withHttp('  pool:\n    command: php other.php\n')).http?.pool.command, ['php', 'other.php']);
    const onInit = load(withHttp().replace('  command: php worker.php\n', '  command: php worker.php\n  on_init:\n    command: php init.php\n')).server.onInit;
    assert.deepEqual(onInit, { command: ['php', 'init.php'], execTimeout: 60_000, env: {}, user: '', exitOnError: false });
    const error = loadError(withHttp().replace('  command: php worker.php\n', '  command: php worker.php\n  on_init:\n    exec_timeout: 5s\n'));
    assert.match(error.message, /on_init command should not be empty/);
  });
});

describe('relay', () => {
  function withRelay(relay: string): string {
    return withHttp().replace('  command: php worker.php\n', `  command: php worker.php\n  relay: "${relay}"\n  relay_timeout: 60s\n`);
  }

  test('pipes, tcp://host:port and unix://path are accepted as written (relay_timeout is ignored)', () => {
    for (const relay of ['pipes', 'tcp://127.0.0.1:7000', 'unix:///tmp/rr.sock', 'unix://rr.sock']) {
      assert.equal(load(withRelay(relay)).server.relay, relay);
    }
  });

  test('tcp:// without a host is rejected with a hint', () => {
    const error = loadError(withRelay('tcp://:7000'));
    assert.equal(error.key, 'server.relay');
    assert.match(error.message, /tcp:\/\/127\.0\.0\.1:7000/);
  });

  test('anything else is rejected', () => {
    for (const relay of ['socket', 'tcp://localhost', 'tcp://localhost:99999', 'tcp://127.0.0.1:0', 'unix://', 'http://x:1']) {
      assert.equal(loadError(withRelay(relay)).key, 'server.relay', relay);
    }
  });
});

describe('checks of http, rpc, status and the pool', () => {
  test('http.address is required and must be host:port', () => {
    const missing = loadError(`version: '3'\nserver:\n  command: php w.php\nhttp:\n  pool:\n    num_workers: 1\n`);
    assert.equal(missing.key, 'http.address');
    assert.match(missing.message, /unable to run http service, no method has been specified/);
    assert.match(loadError(withHttp().replace('127.0.0.1:8080', '8080')).message, /expected host:port/);
  });

  test('rpc.listen must be a DSN', () => {
    assert.match(loadError(withHttp() + 'rpc:\n  listen: 127.0.0.1:6001\n').message, /invalid socket DSN \(tcp:\/\/:6001, unix:\/\/file\.sock\)/);
  });

  test('status needs an address', () => {
    assert.equal(loadError(withHttp() + 'status:\n  unavailable_status_code: 500\n').key, 'status.address');
  });

  test('num_workers over 500 is an error; 0 means the CPU count', () => {
    assert.match(loadError(withHttp('  pool:\n    num_workers: 501\n')).message, /number of workers can't be more than 500/);
    assert.equal(load(withHttp('  pool:\n    num_workers: 0\n'), { cpus: 6 }).http?.pool.numWorkers, 6);
    assert.equal(load(withHttp('  pool:\n    num_workers: 500\n')).http?.pool.numWorkers, 500);
  });

  test('the supervisor exists only when its section does', () => {
    assert.equal(load(withHttp('  pool:\n    debug: true\n')).http?.pool.supervisor, null);
    assert.equal(load(withHttp('  pool:\n    supervisor: {}\n')).http?.pool.supervisor?.watchTick, 5_000);
    assert.equal(load(withHttp('  pool:\n    debug: true\n')).http?.pool.debug, true);
  });
});

describe('logs', () => {
  test('mode sets the encoding; channels inherit the keys they do not set', () => {
    const logs = load(
      withHttp() + 'logs:\n  mode: production\n  output: stdout\n  channels:\n    http:\n      level: info\n    server:\n      mode: development\n',
    ).logs;
    assert.equal(logs.encoding, 'json');
    assert.deepEqual(logs.output, ['stdout']);
    assert.deepEqual(logs.channels.http, { mode: 'production', level: 'info', encoding: 'json', lineEnding: '\n', output: ['stdout'], errOutput: ['stderr'] });
    assert.equal(logs.channels.server?.encoding, 'console');
    assert.deepEqual(logs.channels.server?.output, ['stdout']);
  });

  test('an invalid level is ignored with a warning (the mode level is used)', () => {
    const config = load(withHttp() + 'logs:\n  mode: production\n  level: loud\n');
    assert.equal(config.logs.level, 'info');
    assert.ok(config.warnings.some((warning) => warning.includes('loud')));
  });
});

describe('version', () => {
  test('a number is an error that asks for a string', () => {
    const error = loadError(`version: 3\nserver:\n  command: php w.php\n`);
    assert.equal(error.key, 'version');
    assert.equal(error.line, 1);
    assert.match(error.message, /version: '3'/);
  });

  test('a missing version is an error', () => {
    assert.match(loadError(`server:\n  command: php w.php\n`).message, /should contain a version/);
  });

  test("'2.7' loads with a warning", () => {
    const config = load(`version: '2.7'\nserver:\n  command: php w.php\n`);
    assert.equal(config.version, '2.7');
    assert.ok(config.warnings.some((warning) => warning.includes("version: '3'")));
  });
});

describe('other plugins', () => {
  test('sections of plugins rrts does not have give one warning each, not an error', () => {
    const config = load(
      withHttp() + 'temporal:\n  address: 127.0.0.1:7233\nkv:\n  local: {driver: memory}\ngrpc:\n  listen: tcp://:9001\nreload:\n  enabled: true\n',
    );
    assert.equal(config.warnings.length, 4);
    for (const name of ['temporal', 'kv', 'grpc', 'reload']) {
      assert.equal(config.warnings.filter((warning) => warning.includes(`'${name}'`)).length, 1, name);
    }
  });
});

describe('error messages', () => {
  test('a type error names the file, the line and the dotted key, with the bad value and what was expected', () => {
    const yaml = withHttp('  pool:\n    max_jobs: 10\n    num_workers: four\n');
    const { file } = writeConfig(yaml);
    const error = (() => {
      try {
        loadConfig({ configPath: file, env: {} });
      } catch (caught) {
        return caught as ConfigError;
      }
      return assert.fail('expected an error');
    })();
    assert.ok(error instanceof ConfigError);
    assert.equal(error.code, 'ERR_CONFIG');
    assert.equal(error.file, file);
    assert.equal(error.line, 8);
    assert.equal(error.key, 'http.pool.num_workers');
    assert.equal(error.message, `${file}:8, key 'http.pool.num_workers': expected a whole number, got "four"`);
  });

  test('a missing key points at its section', () => {
    const error = loadError(`version: '3'\nserver:\n  command: php w.php\n\nhttp:\n  access_logs: true\n`);
    assert.equal(error.key, 'http.address');
    assert.equal(error.line, 5);
  });

  test('invalid YAML names the line', () => {
    const error = loadError(`version: '3'\nserver:\n  command: [php\nhttp: x\n`);
    assert.match(error.message, /invalid YAML/);
    assert.equal(typeof error.line, 'number');
  });

  test('a section that is not a map is an error', () => {
    assert.match(loadError(withHttp('  pool: 4\n')).message, /expected a section/);
  });
});

describe('include', () => {
  test('included sections replace the root ones (later files win), paths relative to the config folder', () => {
    const dir = writeFiles({
      '.rr.yaml': `version: '3'\ninclude: [conf/http.yaml, conf/rpc.yaml]\nserver:\n  command: php w.php\nhttp:\n  address: 127.0.0.1:1\n  access_logs: true\n`,
      'conf/http.yaml': `version: '3'\nhttp:\n  address: \${HTTP_ADDR:-127.0.0.1:2}\nrpc:\n  listen: tcp://127.0.0.1:1\n`,
      'conf/rpc.yaml': `version: '3'\nrpc:\n  listen: tcp://127.0.0.1:2\n`,
    });
    const config = loadConfig({ configPath: join(dir, '.rr.yaml'), env: {} });
    assert.equal(config.http?.address, '127.0.0.1:2');
    assert.equal(config.http?.accessLogs, false);
    assert.equal(config.rpc?.listen, 'tcp://127.0.0.1:2');
  });

  test('a whitespace-separated string lists includes; errors in an include name that file and line', () => {
    const dir = writeFiles({
      '.rr.yaml': `version: '3'\ninclude: "a.yaml  b.yaml"\nserver:\n  command: php w.php\n`,
      'a.yaml': `version: '3'\nstatus:\n  address: :1\n`,
      'b.yaml': `version: '3'\n\nhttp:\n  address: :8080\n  pool:\n    max_jobs: many\n`,
    });
    const error = (() => {
      try {
        loadConfig({ configPath: join(dir, '.rr.yaml'), env: {} });
      } catch (caught) {
        return caught as ConfigError;
      }
      return assert.fail('expected an error');
    })();
    assert.equal(error.file, 'b.yaml');
    assert.equal(error.line, 6);
    assert.equal(error.key, 'http.pool.max_jobs');
  });

  test('an include must carry the same version', () => {
    const dir = writeFiles({
      '.rr.yaml': `version: '3'\ninclude: [a.yaml]\nserver:\n  command: php w.php\n`,
      'a.yaml': `version: '2.7'\nrpc: {}\n`,
    });
    assert.throws(() => loadConfig({ configPath: join(dir, '.rr.yaml'), env: {} }), /version in an included file must be the same/);
  });
});

describe('result', () => {
  test('the Config is deeply frozen, raw included', () => {
    const config = load(withHttp('  middleware: [gzip]\n'));
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.http?.pool));
    assert.ok(Object.isFrozen(config.http?.middleware));
    assert.ok(Object.isFrozen(config.server.command));
    assert.ok(Object.isFrozen(config.raw));
    assert.ok(Object.isFrozen((config.raw.http as Record<string, unknown>).middleware));
    assert.throws(() => {
      (config.http!.pool as { numWorkers: number }).numWorkers = 99;
    }, TypeError);
  });

  test('a JSON config file works too', () => {
    const { file } = writeConfig(JSON.stringify({ version: '3', server: { command: ['php', 'w.php'] }, http: { address: ':8080' } }), 'rr.json');
    assert.equal(loadConfig({ configPath: file, env: {} }).http?.address, ':8080');
  });
});
