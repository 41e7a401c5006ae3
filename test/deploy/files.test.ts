// The deploy files in docs/deploy work as written: the Kubernetes manifest parses with the YAML parsers kubectl
// uses, the systemd unit passes systemd-analyze, and both start rrts with the app as its working directory.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const deployDir = path.join(root, 'docs/deploy');
const read = (name: string): string => fs.readFileSync(path.join(deployDir, name), 'utf8');

type Token = YAML.CST.Token | YAML.CST.CollectionItem | YAML.CST.SourceToken | undefined | null;

/**
 * Plain scalars inside flow collections that hold a flow indicator. libyaml's scanner, which kubectl's go-yaml and
 * PyYAML follow, ends a plain scalar at `?`, `,`, `[`, `]`, `{` or `}` in flow context, where the `yaml` package reads
 * on: `{ path: /ready?plugin=http }` parses here and fails in kubectl.
 */
export function flowIndicatorsInPlainScalars(source: string): string[] {
  const found: string[] = [];
  const seen = new Set<object>();
  const walk = (token: Token, inFlow: boolean): void => {
    if (!token || typeof token !== 'object' || seen.has(token)) return;
    seen.add(token);
    if ('type' in token && token.type === 'scalar' && inFlow && /[?,[\]{}]/.test(token.source)) found.push(token.source);
    const flow = inFlow || ('type' in token && token.type === 'flow-collection');
    if ('items' in token && Array.isArray(token.items)) {
      for (const item of token.items as YAML.CST.CollectionItem[]) {
        walk(item.key, flow);
        walk(item.value, flow);
      }
    }
    if ('value' in token && typeof token.value === 'object') walk(token.value, flow);
  };
  for (const token of new YAML.Parser().parse(source)) walk(token, false);
  return found;
}

describe('docs/deploy', () => {
  const yamlFiles = fs.readdirSync(deployDir).filter((f) => /\.ya?ml$/.test(f));

  it('has YAML files to check', () => {
    assert.ok(yamlFiles.includes('kubernetes.yaml'));
  });

  for (const file of yamlFiles) {
    it(`${file} parses without errors or warnings`, () => {
      const docs = YAML.parseAllDocuments(read(file), { version: '1.1' });
      assert.ok(Array.isArray(docs) && docs.length > 0);
      for (const doc of docs) {
        assert.deepEqual(
          doc.errors.map((e) => e.message),
          [],
        );
        assert.deepEqual(
          doc.warnings.map((e) => e.message),
          [],
        );
      }
    });

    it(`${file} has no plain scalar that kubectl's parser would cut at a flow indicator`, () => {
      assert.deepEqual(flowIndicatorsInPlainScalars(read(file)), []);
    });
  }

  it('the flow-indicator check finds the unquoted probe path it exists for', () => {
    assert.deepEqual(flowIndicatorsInPlainScalars('probe: { path: /ready?plugin=http, port: status }\n'), ['/ready?plugin=http']);
    assert.deepEqual(flowIndicatorsInPlainScalars('probe: { path: "/ready?plugin=http", port: status }\n'), []);
  });

  it('the Kubernetes manifest keeps /tmp (uploads) on disk, not in memory', () => {
    type Volume = { name: string; emptyDir?: { medium?: string } };
    type Manifest = { kind?: string; spec?: { template: { spec: { volumes: Volume[] } } } };
    const docs = YAML.parseAllDocuments(read('kubernetes.yaml')).map((d) => d.toJS() as Manifest);
    const deployment = docs.find((d) => d.kind === 'Deployment')!;
    const tmp = deployment.spec!.template.spec.volumes.find((v) => v.name === 'tmp');
    assert.ok(tmp?.emptyDir, 'a tmp volume');
    assert.notEqual(tmp.emptyDir.medium, 'Memory');
  });

  it('the systemd unit: optional writable paths, -w to the app, and systemd-analyze verify when it exists', () => {
    const unit = read('rrts.service');
    const rw = /^ReadWritePaths=(.*)$/m.exec(unit)?.[1]?.trim().split(/\s+/) ?? [];
    assert.ok(rw.length > 0, 'ReadWritePaths is set');
    for (const p of rw) assert.ok(p.startsWith('-'), `${p}: a missing path must not fail the unit (prefix '-')`);
    const execStart = /^ExecStart=(.*)$/m.exec(unit)?.[1] ?? '';
    const workDir = /^WorkingDirectory=(.*)$/m.exec(unit)?.[1];
    assert.match(execStart, new RegExp(` -w ${workDir}(\\s|$)`), 'ExecStart passes -w with the WorkingDirectory');
    const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
    if (analyze.error) return; // no systemd here: the checks above still ran
    // verify checks that ExecStart's program exists: point it at this Node.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-unit-'));
    try {
      const copy = path.join(dir, 'rrts.service');
      fs.writeFileSync(copy, unit.replace(/^ExecStart=\S+/m, `ExecStart=${process.execPath}`));
      execFileSync('systemd-analyze', ['verify', copy], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the Dockerfile entrypoint passes -w with the app directory', () => {
    const docker = read('Dockerfile');
    const entry = /^ENTRYPOINT (\[.*\])$/m.exec(docker)?.[1];
    assert.ok(entry, 'an exec-form ENTRYPOINT');
    const args = JSON.parse(entry) as string[];
    const w = args.indexOf('-w');
    assert.ok(w > 0, 'ENTRYPOINT has -w');
    assert.equal(args[w + 1], /^WORKDIR (\S+)$/m.exec(docker.slice(docker.lastIndexOf('FROM ')))?.[1]);
  });
});
