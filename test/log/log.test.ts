// Tests for the logger factory: each mode's output, levels, channel overrides, file output and worker stderr lines,
// written to in-memory streams.
import { test, describe, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogs, WorkerOutputLines, type LogRoot } from '../../src/log/index.js';
import { formatConsoleLine } from '../../src/log/pretty.js';
import { ConfigError } from '../../src/errors.js';
import type { LogChannelConfig, LogsConfig } from '../../src/config/types.js';

/** A writable that keeps what it is given; `isTTY` can be set to pose as a terminal. */
class MemoryStream extends Writable {
  readonly chunks: string[] = [];
  isTTY?: boolean;
  constructor() {
    super({ decodeStrings: false });
  }
  override _write(chunk: unknown, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    this.chunks.push(String(chunk));
    done();
  }
  get text(): string {
    return this.chunks.join('');
  }
  get lines(): string[] {
    return this.text.split('\n').filter((l) => l !== '');
  }
}

function channelCfg(over: Partial<LogChannelConfig> = {}): LogChannelConfig {
  return { mode: 'development', level: 'debug', encoding: 'console', lineEnding: '\n', output: ['stderr'], errOutput: ['stderr'], ...over };
}

function logsCfg(over: Partial<LogsConfig> = {}): LogsConfig {
  return { ...channelCfg(), channels: {}, ...over };
}

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const ESC = '\x1b';

let roots: LogRoot[] = [];
function make(config: LogsConfig, opts: Parameters<typeof createLogs>[1] = {}): { root: LogRoot; err: MemoryStream; out: MemoryStream } {
  const err = new MemoryStream();
  const out = new MemoryStream();
  const root = createLogs(config, { stderr: err, stdout: out, ...opts });
  roots.push(root);
  return { root, err, out };
}

afterEach(() => {
  for (const r of roots) r.close();
  roots = [];
});

describe('development mode', () => {
  test('one line: ISO time, padded level, logger name, message, compact JSON fields', () => {
    const { root, err, out } = make(logsCfg(), { color: false });
    root.channel('http').debug({ key: 'value', n: 1 }, 'message');
    root.channel('server').info('no fields');
    assert.equal(out.text, '');
    const [first, second] = err.lines;
    const cols = first!.split('  ');
    assert.match(cols[0]!, ISO);
    assert.ok(Math.abs(Date.parse(cols[0]!) - Date.now()) < 60_000);
    assert.deepEqual(cols.slice(1), ['DEBUG', 'http', 'message', '{"key":"value","n":1}']);
    assert.match(second!, /^\S+ {2}INFO {3}server {2}no fields$/);
    assert.ok(!err.text.includes(ESC));
  });

  test('every level is upper-case and padded to five characters', () => {
    const { root, err } = make(logsCfg(), { color: false });
    const log = root.channel('rpc');
    log.debug('d');
    log.info('i');
    log.warn('w');
    log.error('e');
    log.fatal('f');
    assert.deepEqual(
      err.lines.map((l) => l.slice(26, 33)),
      ['DEBUG  ', 'INFO   ', 'WARN   ', 'ERROR  ', 'FATAL  '],
    );
  });

  test('child bindings and errors land in the JSON fields', () => {
    const { root, err } = make(logsCfg(), { color: false });
    root
      .channel('http')
      .child({ pid: 7 })
      .error({ err: new Error('bad') }, 'failed');
    const line = err.lines[0]!;
    const json = JSON.parse(line.slice(line.indexOf('{'))) as { pid: number; err: { message: string; type: string } };
    assert.equal(json.pid, 7);
    assert.equal(json.err.message, 'bad');
    assert.equal(json.err.type, 'Error');
  });

  test('formatConsoleLine is exact for a fixed record', () => {
    const record = { level: 20, time: Date.parse('2025-01-01T10:00:00.000Z'), logger: 'http', msg: 'message', key: 'value' };
    assert.equal(formatConsoleLine(record, false), '2025-01-01T10:00:00.000Z  DEBUG  http  message  {"key":"value"}');
    assert.equal(formatConsoleLine(record, true), `2025-01-01T10:00:00.000Z  ${ESC}[35mDEBUG${ESC}[0m  http  message  {"key":"value"}`);
    assert.equal(formatConsoleLine({ level: 30, time: 0, logger: 'x', msg: 'm' }, false), '1970-01-01T00:00:00.000Z  INFO   x  m');
  });

  test('color: forced on, TTY without NO_COLOR, never with NO_COLOR', () => {
    const saved = process.env['NO_COLOR'];
    try {
      delete process.env['NO_COLOR'];
      const forced = make(logsCfg(), { color: true });
      forced.root.channel('http').warn('x');
      assert.ok(forced.err.text.includes(`${ESC}[33mWARN${ESC}[0m`));

      const notTty = make(logsCfg());
      notTty.root.channel('http').warn('x');
      assert.ok(!notTty.err.text.includes(ESC));

      const tty = new MemoryStream();
      tty.isTTY = true;
      const r1 = createLogs(logsCfg(), { stderr: tty });
      roots.push(r1);
      r1.channel('http').info('x');
      assert.ok(tty.text.includes(`${ESC}[34mINFO${ESC}[0m`));

      process.env['NO_COLOR'] = '1';
      const tty2 = new MemoryStream();
      tty2.isTTY = true;
      const r2 = createLogs(logsCfg(), { stderr: tty2 });
      roots.push(r2);
      r2.channel('http').info('x');
      assert.ok(!tty2.text.includes(ESC));

      const tty3 = new MemoryStream();
      tty3.isTTY = true;
      const r3 = createLogs(logsCfg(), { stderr: tty3, color: true });
      roots.push(r3);
      r3.channel('http').info('x');
      assert.ok(tty3.text.includes(ESC), 'opts.color overrides NO_COLOR');
    } finally {
      if (saved === undefined) delete process.env['NO_COLOR'];
      else process.env['NO_COLOR'] = saved;
    }
  });

  test('encoding json in development mode gives JSON at debug level', () => {
    const { root, err } = make(logsCfg({ encoding: 'json' }));
    root.channel('http').debug('d');
    assert.equal((JSON.parse(err.lines[0]!) as { level: string }).level, 'debug');
  });
});

describe('production mode', () => {
  test('pino JSON: level label, ts epoch nanoseconds, logger, msg, fields', () => {
    const { root, err } = make(logsCfg({ mode: 'production', level: 'info', encoding: 'json' }));
    const before = Date.now();
    root.channel('http').info({ key: 'value' }, 'hello');
    const after = Date.now();
    assert.equal(err.lines.length, 1);
    assert.ok(err.text.endsWith('}\n'));
    const rec = JSON.parse(err.lines[0]!) as Record<string, unknown>;
    assert.equal(rec['level'], 'info');
    assert.equal(rec['logger'], 'http');
    assert.equal(rec['msg'], 'hello');
    assert.equal(rec['key'], 'value');
    assert.equal(typeof rec['ts'], 'number');
    const tsText = /"ts":(\d+)/.exec(err.lines[0]!)![1]!;
    const ms = Number(BigInt(tsText) / 1_000_000n);
    assert.ok(ms >= before && ms <= after, `${tsText} is epoch nanoseconds`);
    assert.deepEqual(Object.keys(rec).sort(), ['key', 'level', 'logger', 'msg', 'ts']);
  });

  test('default level of production is info when the level is unknown', () => {
    const { root, err } = make(logsCfg({ mode: 'production', level: 'verbose' as never, encoding: 'json' }));
    root.channel('http').debug('hidden');
    root.channel('http').info('shown');
    assert.deepEqual(
      err.lines.map((l) => (JSON.parse(l) as { msg: string }).msg),
      ['shown'],
    );
  });

  test('dpanic/panic/fatal map to fatal', () => {
    for (const level of ['dpanic', 'panic', 'fatal'] as const) {
      const { root, err } = make(logsCfg({ mode: 'production', level, encoding: 'json' }));
      root.channel('x').error('no');
      root.channel('x').fatal('yes');
      assert.deepEqual(
        err.lines.map((l) => (JSON.parse(l) as { level: string }).level),
        ['fatal'],
        level,
      );
    }
  });

  test('line_ending is honoured', () => {
    const { root, err } = make(logsCfg({ mode: 'production', level: 'info', encoding: 'json', lineEnding: '\r\n' }));
    root.channel('a').info('one');
    root.channel('a').info('two');
    const parts = err.text.split('\r\n');
    assert.equal(parts.length, 3);
    assert.equal(parts[2], '');
    assert.equal((JSON.parse(parts[1]!) as { msg: string }).msg, 'two');
  });
});

describe('raw and off', () => {
  test('raw writes the message only', () => {
    const { root, err, out } = make(logsCfg({ mode: 'raw', level: 'info', output: ['stdout'] }));
    root.channel('server').info({ pid: 1 }, 'plain text');
    root.channel('server').debug('hidden');
    assert.equal(out.text, 'plain text\n');
    assert.equal(err.text, '');
  });

  test('raw goes to stdout when no output is given, with its line ending', () => {
    const { root, out } = make(logsCfg({ mode: 'raw', level: 'info', output: [], lineEnding: '|' }));
    root.channel('server').info('a');
    root.channel('server').info('b');
    assert.equal(out.text, 'a|b|');
  });

  test('development line ending', () => {
    const { root, err } = make(logsCfg({ lineEnding: '\r\n' }), { color: false });
    root.channel('server').info('a');
    assert.ok(err.text.endsWith('  a\r\n'));
  });

  for (const mode of ['off', 'none']) {
    test(`${mode} writes nothing`, () => {
      const { root, err, out } = make(logsCfg({ mode: mode as 'off' }));
      const log = root.channel('http');
      log.error('nothing');
      log.fatal('nothing');
      assert.equal(err.text + out.text, '');
      assert.equal(log.isLevelEnabled('fatal'), false);
    });
  }
});

describe('levels and channels', () => {
  test('level filtering', () => {
    const { root, err } = make(logsCfg({ level: 'warn' }), { color: false });
    const log = root.channel('http');
    log.debug('d');
    log.info('i');
    log.warn('w');
    log.error('e');
    assert.deepEqual(
      err.lines.map((l) => l.split('  ')[3]),
      ['w', 'e'],
    );
    assert.equal(log.isLevelEnabled('info'), false);
  });

  test('a channel override applies to that channel only', () => {
    const config = logsCfg({
      level: 'info',
      channels: { http: channelCfg({ mode: 'production', level: 'debug', encoding: 'json', output: ['stdout'] }) },
    });
    const { root, err, out } = make(config, { color: false });
    root.channel('http').debug('http debug');
    root.channel('server').debug('server debug');
    root.channel('server').info('server info');
    assert.equal(out.lines.length, 1);
    const rec = JSON.parse(out.lines[0]!) as { level: string; logger: string; msg: string };
    assert.deepEqual([rec.level, rec.logger, rec.msg], ['debug', 'http', 'http debug']);
    assert.equal(err.lines.length, 1);
    assert.ok(err.lines[0]!.endsWith('  INFO   server  server info'));
  });

  test('a channel can be switched off', () => {
    const { root, err } = make(logsCfg({ channels: { rpc: channelCfg({ mode: 'off' }) } }), { color: false });
    root.channel('rpc').error('quiet');
    root.channel('http').error('loud');
    assert.equal(err.lines.length, 1);
  });

  test('channel() returns the same logger for the same name', () => {
    const { root } = make(logsCfg());
    assert.equal(root.channel('http'), root.channel('http'));
    assert.notEqual(root.channel('http'), root.channel('server'));
  });

  test('both stderr and stdout when both are listed', () => {
    const { root, err, out } = make(logsCfg({ output: ['stderr', 'stdout', 'stderr'] }), { color: false });
    root.channel('http').info('twice');
    assert.equal(err.lines.length, 1);
    assert.equal(out.lines.length, 1);
  });
});

describe('file output', () => {
  test('appends to a file, synchronously, without color', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rrts-log-'));
    try {
      const file = join(dir, 'rr.log');
      const first = make(logsCfg({ output: [file] }), { color: true });
      first.root.channel('http').info({ a: 1 }, 'first');
      assert.match(readFileSync(file, 'utf8'), / {2}INFO {3}http {2}first {2}\{"a":1\}\n$/);
      first.root.close();

      const second = make(logsCfg({ mode: 'production', level: 'info', encoding: 'json', output: [file, 'stderr'] }));
      second.root.channel('server').info('second');
      second.root.flush();
      const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
      assert.equal(lines.length, 2);
      assert.ok(!lines[0]!.includes(ESC));
      assert.equal((JSON.parse(lines[1]!) as { msg: string }).msg, 'second');
      assert.equal(second.err.lines.length, 1);
      second.root.close();
      second.root.channel('server').info('after close is dropped');
      assert.equal(readFileSync(file, 'utf8').split('\n').filter(Boolean).length, 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a file that cannot be opened -> a ConfigError naming the path, at createLogs', () => {
    const bad = join(tmpdir(), 'rrts-no-such-dir-' + process.pid, 'sub', 'rr.log');
    assert.throws(
      () => createLogs(logsCfg({ output: [bad] }), { stderr: new MemoryStream() }),
      (err: unknown) => err instanceof ConfigError && err.message.includes(bad) && err.message.includes('logs.output'),
    );
    assert.throws(
      () => createLogs(logsCfg({ channels: { http: channelCfg({ output: [bad] }) } }), { stderr: new MemoryStream() }),
      (err: unknown) => err instanceof ConfigError && err.message.includes(bad) && err.message.includes('logs.channels.http.output'),
    );
  });
});

/** One whole chunk of a worker's output through WorkerOutputLines, as a stream that ends after it. */
function logWorkerOutput(logger: ConstructorParameters<typeof WorkerOutputLines>[0], pid: number, chunk: Buffer | string): void {
  const lines = new WorkerOutputLines(logger, pid);
  lines.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  lines.end();
}

describe('worker output lines', () => {
  test('one info record per non-empty line, with the pid, CR stripped', () => {
    const { root, err } = make(logsCfg({ mode: 'production', level: 'debug', encoding: 'json' }));
    logWorkerOutput(root.channel('server'), 4242, Buffer.from('first line\r\n\nsecond %s line\n\r\n  indented\nno newline'));
    const recs = err.lines.map((l) => JSON.parse(l) as { level: string; pid: number; msg: string; logger: string });
    assert.deepEqual(
      recs.map((r) => r.msg),
      ['first line', 'second %s line', '  indented', 'no newline'],
    );
    for (const r of recs) {
      assert.equal(r.level, 'info');
      assert.equal(r.pid, 4242);
      assert.equal(r.logger, 'server');
    }
  });

  test('strings work too; nothing for blank input; filtered by level', () => {
    const { root, err } = make(logsCfg(), { color: false });
    logWorkerOutput(root.channel('server'), 7, 'PHP Warning: x\n');
    logWorkerOutput(root.channel('server'), 7, '\n\r\n');
    logWorkerOutput(root.channel('server'), 7, '');
    assert.equal(err.lines.length, 1);
    assert.ok(err.lines[0]!.endsWith('  INFO   server  PHP Warning: x  {"pid":7}'));

    const quiet = make(logsCfg({ level: 'warn' }));
    logWorkerOutput(quiet.root.channel('server'), 7, 'dropped\n');
    assert.equal(quiet.err.text, '');
  });
});
