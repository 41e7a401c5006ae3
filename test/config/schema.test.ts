// schema/rrts.schema.json: the committed file is what the key table generates, the configs rrts ships and the tests
// write validate against it (with ajv, a devDependency), and it accepts exactly what the loader reads without warning.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { parseConfigText } from '../../src/config/document.js';
import { keyWarnings } from '../../src/config/keys.js';
import { schemaText } from '../../src/config/schema.js';
import { FULL_CONFIG_TEXT } from './full-config.js';
import { schemaProblems } from '../support/schema.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const SCHEMA_FILE = path.join(root, 'schema', 'rrts.schema.json');

/** The schema's complaints about a config file's text (the validator is test/support/schema.ts's). */
function problems(text: string): string[] {
  return schemaProblems(parse(text, { merge: true }));
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
    assert.deepEqual(problems(readFileSync(path.join(root, 'rr.example.yaml'), 'utf8')), []);
    assert.deepEqual(problems(kubernetesConfig()), []);
    assert.deepEqual(problems(FULL_CONFIG_TEXT), []);
  });

  test('accepts the weak typing the loader reads: strings for numbers, comma lists, lists of maps, ${VAR}', () => {
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
    assert.deepEqual(problems(text), []);
  });

  test('refuses a number version, a negative count, an unknown collector type, labels as a string', () => {
    const base = `version: '3'\nserver:\n  command: php w.php\n`;
    assert.notDeepEqual(problems(base.replace("'3'", '3')), []);
    assert.notDeepEqual(problems(`${base}http:\n  pool:\n    num_workers: -1\n`), []);
    assert.notDeepEqual(problems(`${base}metrics:\n  collect:\n    x: {type: summry}\n`), []);
    // metrics/plugin.ts wants a real list of label names here, not the comma string other lists take
    assert.notDeepEqual(problems(`${base}metrics:\n  collect:\n    x: {type: counter, labels: route}\n`), []);
  });

  test('is valid exactly where the loader has no key to warn about', () => {
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
      `${base}jobs:\n  num_pollers: 4\n`,
      `${base}jobs:\n  pipelines:\n    q: {driver: memory, config: {prefetch: 3}, drive: x}\n`,
      `${base}kv: {}\n`,
      `${base}reload: {interval: 1s}\n`,
      `${base}envfile: .env\n`,
      `${base}informer: {}\n`,
      `${base}htpp: {}\n`,
    ];
    for (const text of cases) {
      const warned = keyWarnings(parseConfigText(text, 'rr.yaml').data).length > 0;
      assert.equal(problems(text).length > 0, warned, text);
    }
  });
});
