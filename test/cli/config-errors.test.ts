// Hostile configs through the real CLI (`bin/rrts serve -c rr.yaml`): alias bombs, an anchor aliased inside
// itself, absurd nesting (in the file, through aliases, in an included file, in a -o key) each end rrts with exit
// code 1 and one `config error: <file>:<line>, key '<key>': ...` line on stderr, never a stack trace.
import { describe, it } from 'node:test';
import { writeFiles } from '../config/tmp.js';
import { assertConfigError, serve } from './cli-helpers.js';

const HEAD = "version: '3'\nrpc:\n  listen: tcp://127.0.0.1:0\n";

/** The classic billion laughs: 9 lists of 9 aliases to the list before, 9^9 values once expanded. */
function billionLaughs(): string {
  let text = 'l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n';
  for (let level = 1; level <= 8; level++)
    text += `l${level}: &l${level} [${Array(9)
      .fill(`*l${level - 1}`)
      .join(', ')}]\n`;
  return text;
}

describe('rrts serve: hostile configs give one config error line', () => {
  it('a billion-laughs alias bomb', () => {
    const dir = writeFiles({ 'rr.yaml': HEAD + billionLaughs() });
    // the aliases of lines 5-7 add 90 + 819 + 7,380 values; the first one of line 8 passes 10,000
    assertConfigError(serve(dir), /^config error: rr\.yaml:8, key 'l4\[0\]': aliases expand to more than 10000 values at the alias \*l3/);
  });

  it('an anchor aliased inside itself (server: &s ... env: *s)', () => {
    const dir = writeFiles({ 'rr.yaml': `${HEAD}server: &s\n  command: "php worker.php"\n  env: *s\n` });
    assertConfigError(
      serve(dir),
      /^config error: rr\.yaml:6, key 'server\.env': the alias \*s is inside the map or list anchored as &s: it would contain itself$/,
    );
  });

  it('a map merging itself (<<: *base inside &base)', () => {
    const dir = writeFiles({ 'rr.yaml': `${HEAD}http: &base\n  address: 127.0.0.1:0\n  <<: *base\n` });
    assertConfigError(serve(dir), /^config error: rr\.yaml:6, key 'http': the alias \*base is inside/);
  });

  it('an alias to no anchor', () => {
    const dir = writeFiles({ 'rr.yaml': `${HEAD}server:\n  command: "php worker.php"\n  env: *nowhere\n` });
    assertConfigError(serve(dir), /^config error: rr\.yaml:6, key 'server\.env': the alias \*nowhere has no anchor &nowhere before it$/);
  });

  it('the same files as includes name the included file and its line', () => {
    const dir = writeFiles({
      'rr.yaml': `${HEAD}include: [bomb.yaml]\n`,
      'bomb.yaml': `version: '3'\n${billionLaughs()}`,
      'rr-self.yaml': `${HEAD}include: [self.yaml]\n`,
      'self.yaml': "version: '3'\nserver: &s\n  command: php worker.php\n  env: *s\n",
    });
    assertConfigError(serve(dir), /^config error: bomb\.yaml:6, key 'l4\[\d\]': aliases expand to more than 10000 values/);
    assertConfigError(serve(dir, [], process.env, 'rr-self.yaml'), /^config error: self\.yaml:4, key 'server\.env': the alias \*s is inside/);
  });

  it('nesting: 100 levels of block maps, 2,000 of flow lists, 100 through a chain of aliases', () => {
    let maps = HEAD;
    for (let level = 0; level < 100; level++) maps += `${'  '.repeat(level)}k${level}:\n`;
    // the map under k63 (line 4 + 64) is the 65th level
    assertConfigError(serve(writeFiles({ 'rr.yaml': maps })), /^config error: rr\.yaml:68, key 'k0\.k1\.[k0-9.]*\.k63': nesting too deep: more than 64 levels/);

    const lists = `${HEAD}x: ${'['.repeat(2000)}${']'.repeat(2000)}\n`;
    assertConfigError(serve(writeFiles({ 'rr.yaml': lists })), /^config error: rr\.yaml:4: invalid YAML: nesting too deep \(more than 64 levels\)$/);

    let chain = `${HEAD}a0: &a0 [1]\n`;
    for (let i = 1; i < 100; i++) chain += `a${i}: &a${i} [*a${i - 1}]\n`;
    // a63 = [*a62], and a62 expands to 63 levels: 64 plus the top map
    assertConfigError(
      serve(writeFiles({ 'rr.yaml': chain })),
      /^config error: rr\.yaml:67, key 'a63\[0\]': nesting too deep: the alias \*a62 makes more than 64 levels/,
    );
  });

  it('a -o key 20,000 levels deep', () => {
    const key = Array.from({ length: 20_000 }, (_, i) => `k${i}`).join('.');
    const result = serve(writeFiles({ 'rr.yaml': HEAD }), ['-o', `${key}=1`]);
    assertConfigError(result, /^config error: -o k0\.k1\.k2\.[k0-9.]*\.\.\.: the key nests 20000 levels, more than 64$/);
  });

  it('a __proto__ key, in the file or in a -o key', () => {
    const dir = writeFiles({ 'rr.yaml': `${HEAD}http:\n  __proto__:\n    address: 127.0.0.1:0\n` });
    assertConfigError(serve(dir), /^config error: rr\.yaml:5, key 'http\.__proto__': a key named __proto__ would become the prototype of its map/);
    assertConfigError(
      serve(writeFiles({ 'rr.yaml': HEAD }), ['-o', '__proto__.polluted=1']),
      /^config error: -o __proto__\.polluted: a key named __proto__ would set the prototype of every object$/,
    );
  });

  it('anchors used as RoadRunner configs use them still load', () => {
    const text = `${HEAD}defaults: &defaults\n  num_workers: 2\n  max_jobs: 10\nhttp:\n  address: 127.0.0.1:0\n  pool:\n    <<: *defaults\n    max_jobs: 5\n`;
    // no server section: the http plugin needs one, a config error of its own (proves the anchors were read)
    assertConfigError(serve(writeFiles({ 'rr.yaml': text })), /^config error: rr\.yaml(:\d+)?, key 'server': the http plugin needs a server section/);
  });
});

describe('rrts serve: errors found after the config loaded still name the file and the key', () => {
  it('a log file that cannot be opened names logs.output once', () => {
    const dir = writeFiles({ 'rr.yaml': `${HEAD}logs:\n  output: no-such-dir/rrts.log\n` });
    assertConfigError(serve(dir), /^config error: \/.*\/rr\.yaml, key 'logs\.output': cannot open log file 'no-such-dir\/rrts\.log': ENOENT/);
  });
});
