// The http section's TLS, HTTP/2, middleware and rrts-extension keys: defaults, relative paths, and ConfigErrors
// that name the key and the file.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadConfig, type Config } from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';
import { writeFiles } from './tmp.js';

const BASE = `version: '3'\nserver:\n  command: php worker.php\nhttp:\n  address: 127.0.0.1:8080\n`;

function load(extra: string, files: Record<string, string> = {}): { config: Config; dir: string } {
  const dir = writeFiles({ '.rr.yaml': BASE + extra, ...files });
  return { config: loadConfig({ configPath: join(dir, '.rr.yaml'), env: {}, cpus: 2 }), dir };
}

function loadError(extra: string, files: Record<string, string> = {}): ConfigError {
  try {
    load(extra, files);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error;
  }
  return assert.fail('expected a ConfigError');
}

describe('http.ssl', () => {
  test('reads cert and key relative to the working directory, with defaults', () => {
    const { config, dir } = load('  ssl:\n    cert: tls/cert.pem\n    key: tls/key.pem\n', { 'tls/cert.pem': 'c', 'tls/key.pem': 'k' });
    assert.deepEqual(config.http!.ssl, {
      address: '127.0.0.1:443',
      redirect: false,
      cert: join(dir, 'tls/cert.pem'),
      key: join(dir, 'tls/key.pem'),
      rootCa: null,
      clientAuthType: 'no_client_cert',
    });
  });

  test('a missing file names the key and the file', () => {
    const error = loadError('  ssl:\n    cert: cert.pem\n    key: missing.pem\n', { 'cert.pem': 'c' });
    assert.equal(error.key, 'http.ssl.key');
    assert.match(error.message, /missing\.pem: no such file/);
  });

  test('a missing root_ca fails too; an unknown client_auth_type falls back to none', () => {
    assert.equal(loadError('  ssl:\n    cert: c.pem\n    key: k.pem\n    root_ca: ca.pem\n', { 'c.pem': 'c', 'k.pem': 'k' }).key, 'http.ssl.root_ca');
    const { config } = load('  ssl:\n    cert: c.pem\n    key: k.pem\n    client_auth_type: whatever\n', { 'c.pem': 'c', 'k.pem': 'k' });
    assert.equal(config.http!.ssl!.clientAuthType, 'no_client_cert');
  });

  test('acme is not implemented: a warning, and no https unless cert and key are set', () => {
    const { config } = load('  ssl:\n    acme:\n      email: a@b.c\n      domains: [x.example]\n');
    assert.equal(config.http!.ssl, null);
    assert.equal(config.warnings.length, 1);
    assert.match(config.warnings[0]!, /\.rr\.yaml:7, key 'http\.ssl\.acme': rrts does not implement ACME/);
    const withCert = load('  ssl:\n    cert: c.pem\n    key: k.pem\n    acme:\n      email: a@b.c\n', { 'c.pem': 'c', 'k.pem': 'k' });
    assert.equal(withCert.config.http!.ssl!.cert, join(withCert.dir, 'c.pem'));
  });

  test('address may be left out when ssl is set (https only)', () => {
    const dir = writeFiles({
      '.rr.yaml': `version: '3'\nserver:\n  command: php w.php\nhttp:\n  ssl:\n    cert: c.pem\n    key: k.pem\n`,
      'c.pem': 'c',
      'k.pem': 'k',
    });
    const config = loadConfig({ configPath: join(dir, '.rr.yaml'), env: {}, cpus: 2 });
    assert.equal(config.http!.address, '');
  });
});

describe('http rrts extensions and middleware settings', () => {
  test('status codes default to internal_error_code', () => {
    const { config } = load('  internal_error_code: 502\n');
    assert.equal(config.http!.noFreeWorkersCode, 502);
    assert.equal(config.http!.execTtlCode, 502);
    const custom = load('  no_free_workers_code: 503\n  exec_ttl_code: 504\n').config;
    assert.equal(custom.http!.noFreeWorkersCode, 503);
    assert.equal(custom.http!.execTtlCode, 504);
    assert.equal(loadError('  exec_ttl_code: 42\n').key, 'http.exec_ttl_code');
  });

  test('unknown middleware names are one warning each', () => {
    const { config } = load('  middleware: [headers, gzip, otel]\n');
    assert.deepEqual(
      config.warnings.filter((w) => w.includes('middleware')),
      ['http.middleware: requested middleware does not exist in rrts, skipped: otel'],
    );
  });

  test('static.dir must exist when static is used', () => {
    assert.equal(loadError('  middleware: [static]\n  static:\n    dir: nope\n').key, 'http.static.dir');
    const { config, dir } = load('  middleware: [static]\n  static:\n    dir: public\n    forbid: [php]\n', { 'public/a.txt': 'a' });
    assert.equal(config.http!.static!.dir, join(dir, 'public'));
    assert.deepEqual(config.http!.static!.forbid, ['.php']);
  });

  test('cors', () => {
    const { config } = load('  headers:\n    cors:\n      allowed_origin: "*"\n      max_age: 60\n      allow_credentials: true\n');
    assert.equal(config.http!.headers.cors!.allowedOrigin, '*');
    assert.equal(config.http!.headers.cors!.maxAge, 60);
    assert.equal(config.http!.headers.cors!.allowCredentials, true);
    assert.equal(loadError('  headers:\n    cors:\n      allowed_origin_regex: "(["\n').key, 'http.headers.cors.allowed_origin_regex');
  });
});
