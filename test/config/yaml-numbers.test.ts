// Numbers in the config file as RoadRunner's YAML reader (Go's yaml.v3) resolves them: `0755` is octal, underscores
// drop out, 0x/0o/0b prefixes and signs work, and whatever is no int is a float or stays a string.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from '../../src/config/document.js';
import { loadConfig } from '../../src/config/index.js';
import { writeConfig } from './tmp.js';

function value(scalar: string): unknown {
  return parseConfigText(`v: ${scalar}\n`, 'numbers.yaml').data.v;
}

describe('YAML numbers as yaml.v3 resolves them', () => {
  test('a leading 0 is octal, as strconv.ParseInt(s, 0, 64) reads it', () => {
    assert.equal(value('0755'), 0o755);
    assert.equal(value('0644'), 0o644);
    assert.equal(value('-0755'), -0o755);
    assert.equal(value('+0755'), 0o755);
    assert.equal(value('00'), 0);
    assert.equal(value('0'), 0);
  });

  test('0o, 0x and 0b prefixes in either case, with a sign', () => {
    assert.equal(value('0o755'), 0o755);
    assert.equal(value('0O17'), 0o17);
    assert.equal(value('0x1F'), 31);
    assert.equal(value('0X1f'), 31);
    assert.equal(value('0b101'), 5);
    assert.equal(value('-0b101'), -5);
    assert.equal(value('-0x10'), -16);
  });

  test('underscores drop out before the number is read', () => {
    assert.equal(value('1_000_000'), 1_000_000);
    assert.equal(value('0_755'), 0o755);
    assert.equal(value('0x_ff'), 255);
    assert.equal(value('1_000.5'), 1000.5);
  });

  test('no int: a float where yaml.v3 reads one (09 is not octal), else the text', () => {
    assert.equal(value('09'), 9);
    assert.equal(value('1e3'), 1000);
    assert.equal(value('1.5'), 1.5);
    assert.equal(value('.inf'), Infinity);
    assert.equal(value('-.inf'), -Infinity);
    assert.equal(value('2001-12-14'), '2001-12-14');
    assert.equal(value('127.0.0.1'), '127.0.0.1');
    assert.equal(value('10s'), '10s');
    // past uint64 a hex int fails both of Go's parses and is no float: a string
    assert.equal(value('0x1FFFFFFFFFFFFFFFF'), '0x1FFFFFFFFFFFFFFFF');
  });

  test('decimals, quoted scalars and JSON are as before', () => {
    assert.equal(value('755'), 755);
    assert.equal(value('-12'), -12);
    assert.equal(value("'0755'"), '0755');
    assert.equal(value('"0755"'), '0755');
    assert.deepEqual(parseConfigText('{"a": 10, "b": "0755"}', 'x.json').data, { a: 10, b: '0755' });
  });

  test('a boltdb pipeline written as RoadRunner documents it gets permissions 0755 (493)', () => {
    const { file } = writeConfig(
      [
        'version: "3"',
        'server:',
        '  command: php consumer.php',
        'jobs:',
        '  pipelines:',
        '    disk:',
        '      driver: boltdb',
        '      config: { file: rr.db, permissions: 0755 }',
        '',
      ].join('\n'),
    );
    const config = loadConfig({ configPath: file, env: {}, cpus: 1 });
    assert.equal(config.jobs?.pipelines[0]?.config?.permissions, 0o755);
  });
});
