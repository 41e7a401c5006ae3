// schema/rrts.schema.json: the committed file is what the key table generates, the configs rrts ships and the tests
// write validate against it (with ajv, a devDependency), and it accepts exactly what the loader reads without warning.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { parseConfigText } from '../../src/config/document.js';
import { keyWarnings } from '../../src/config/keys.js';
import { configSchema, schemaText } from '../../src/config/schema.js';
import { FULL_CONFIG_TEXT } from './full-config.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const SCHEMA_FILE = path.join(root, 'schema', 'rrts.schema.json');

interface Validator {
  (data: unknown): boolean;
  errors?: { instancePath: string; message?: string }[] | null;
}

/** ajv, loaded at run time so that the build does not depend on it; a clear failure while it is not installed. */
function compileSchema(): Validator {
  let Ajv: new (options: Record<string, unknown>) => { compile(schema: unknown): Validator };
  try {
    const ajv = createRequire(import.meta.url)('ajv') as { default: typeof Ajv };
    Ajv = ajv.default;
  } catch (error) {
    assert.fail(`the schema tests need the devDependency ajv (npm install --save-dev ajv@^8.20.0): ${(error as Error).message}`);
  }
  // strict (ajv's default) refuses unknown keywords, so a malformed generated schema fails here
  return new Ajv({ allErrors: true, allowUnionTypes: true }).compile(configSchema());
}

function problems(validate: Validator, text: string): string[] {
  return validate(parse(text, { merge: true })) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''}`);
}

/** The rr.yaml of the Kubernetes ConfigMap in docs/deploy. */
function kubernetesConfig(): string {
  const docs = parseAllDocuments(readFileSync(path.join(root, 'docs/deploy/kubernetes.yaml'), 'utf8'));
  const configMap = docs.map((doc) => doc.toJS() as { kind?: string; data?: Record<string, string> }).find((doc) => doc.kind === 'ConfigMap');
  const text = configMap?.data?.['rr.yaml'];
  assert.ok(text, 'docs/deploy/kubernetes.yaml has a ConfigMap with rr.yaml');
  return text;
}

describe('schema/rrts.schema.json', () => {
  test('is what the key table generates (npm run schema writes it)', () => {
    assert.equal(readFileSync(SCHEMA_FILE, 'utf8'), schemaText(), 'schema/rrts.schema.json is stale: run npm run schema');
  });

  test('rr.example.yaml, the Kubernetes config and a config with every key are valid', () => {
    const validate = compileSchema();
    assert.deepEqual(problems(validate, readFileSync(path.join(root, 'rr.example.yaml'), 'utf8')), []);
    assert.deepEqual(problems(validate, kubernetesConfig()), []);
    assert.deepEqual(problems(validate, FULL_CONFIG_TEXT), []);
  });

  test('accepts the weak typing the loader reads: strings for numbers, comma lists, lists of maps, ${VAR}', () => {
    const validate = compileSchema();
    const text = `version: '3'
server:
  command: [php, worker.php]
  env: [{A: 1}, {B: true}]
http:
  address: \${HTTP_ADDRESS:-127.0.0.1:8080}
  middleware: headers,gzip
  max_request_size: "10"
  pool:
    num_workers: \${WORKERS}
    allocate_timeout: 60
    debug: "true"
metrics:
  collect:
    sizes:
      type: summary
      objectives: [{0.5: 0.05}, {1: 0.001}]
`;
    assert.deepEqual(problems(validate, text), []);
  });

  test('refuses a number version, a negative count, an unknown collector type, labels as a string', () => {
    const validate = compileSchema();
    const base = `version: '3'\nserver:\n  command: php w.php\n`;
    assert.notDeepEqual(problems(validate, base.replace("'3'", '3')), []);
    assert.notDeepEqual(problems(validate, `${base}http:\n  pool:\n    num_workers: -1\n`), []);
    assert.notDeepEqual(problems(validate, `${base}metrics:\n  collect:\n    x: {type: summry}\n`), []);
    // metrics/plugin.ts wants a real list of label names here, not the comma string other lists take
    assert.notDeepEqual(problems(validate, `${base}metrics:\n  collect:\n    x: {type: counter, labels: route}\n`), []);
  });

  test('is valid exactly where the loader has no key to warn about', () => {
    const validate = compileSchema();
    const base = `version: '3'\nserver:\n  command: php w.php\n`;
    const cases = [
      base,
      FULL_CONFIG_TEXT,
      `${base}  forks: {enabled: true}\n`,
      `${base}http:\n  pool:\n    num_worker: 4\n`,
      `${base}http:\n  pool:\n    supervisor:\n      max_worker_memroy: 100\n`,
      `${base}http:\n  fcgi:\n    address: tcp://0.0.0.0:7921\n`,
      `${base}http:\n  http3: {address: 127.0.0.1:8443}\n`,
      `${base}http:\n  pool:\n    dynamic_allocator: {max_workers: 2}\n`,
      `${base}http:\n  ssl:\n    acme: {email: a@b.c}\n`,
      `${base}logs:\n  file_logger_options: {max_size: 10}\n`,
      `${base}logs:\n  channels:\n    http: {mode: production}\n`,
      `${base}logs:\n  channels:\n    http: {levle: info}\n`,
      `${base}metrics:\n  collect:\n    x: {type: counter, lables: [a]}\n`,
      `${base}jobs:\n  consume: [q]\n`,
      `${base}kv: {}\n`,
      `${base}reload: {interval: 1s}\n`,
      `${base}envfile: .env\n`,
      `${base}informer: {}\n`,
      `${base}htpp: {}\n`,
    ];
    for (const text of cases) {
      const warned = keyWarnings(parseConfigText(text, 'rr.yaml').data).length > 0;
      assert.equal(problems(validate, text).length > 0, warned, text);
    }
  });
});
