// Every document the code and the docs point at must be in the repository, and every `§` section cited must be a
// numbered heading of that document. Scans src/, php/, test/, docs/ and README.md as they are on disk.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// Compiled tests run from dist/test/, so the repository is two levels up.
const ROOT = path.resolve(fileURLToPath(new URL('../../', import.meta.url)));
const SCANNED_DIRS = ['src', 'php', 'test', 'docs'];
const SCANNED_EXTENSIONS = new Set(['.ts', '.mjs', '.js', '.php', '.c', '.md', '.yaml', '.yml']);
/** This file: its examples of broken references are meant to be broken. */
const SELF = path.join('test', 'docs.test.ts');

/** A `name.md` or `dir/…/name.md` reference; URLs are skipped because no path segment may start after a dot or slash. */
const DOC_REFERENCE = /(?<![\w./-])((?:\.{1,2}\/|[\w-]+\/)*[\w-]+\.md)\b/g;
/** `§2`, `§2.3`, and ranges `§2.4–2.6` / `§1–§4` (en dash or hyphen). */
const SECTION_REFERENCE = /§\s?(\d+(?:\.\d+)*)(?:\s?[–-]\s?§?(\d+(?:\.\d+)*))?/g;
/** A numbered heading: `## 2. Worker protocol`, `### 2.3 Pid handshake`. */
const NUMBERED_HEADING = /^#{1,6}\s+(\d+(?:\.\d+)*)\.?\s/;

interface Problem {
  file: string;
  line: number;
  message: string;
}

/** The section numbers a markdown document has, and the numbers it uses twice. */
export function headingSections(markdown: string): { sections: Set<string>; duplicates: string[] } {
  const sections = new Set<string>();
  const duplicates: string[] = [];
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const m = fenced ? null : NUMBERED_HEADING.exec(line);
    if (!m) continue;
    if (sections.has(m[1]!)) duplicates.push(m[1]!);
    sections.add(m[1]!);
  }
  return { sections, duplicates };
}

/** Where a reference points: markdown links are relative to their file, everything else to the repository root. */
function resolveReference(reference: string, file: string, exists: (p: string) => boolean): string | null {
  const fromRoot = path.normalize(reference);
  if (file.endsWith('.md')) {
    const fromFile = path.normalize(path.join(path.dirname(file), reference));
    if (exists(fromFile)) return fromFile;
  } else if (!reference.includes('/') && exists(path.join(path.dirname(file), reference))) {
    return path.join(path.dirname(file), reference);
  }
  return exists(fromRoot) ? fromRoot : null;
}

/** Whether the text just before a `§` names an RFC (`RFC 9112 §6.3`, also across a comment's line break). */
function isRfcSection(text: string, at: number): boolean {
  const before = text
    .slice(Math.max(0, at - 40), at)
    .replace(/\/\/|\*|#/g, ' ')
    .replace(/\s+/g, ' ');
  return /RFC ?\d+ ?$/.test(before);
}

/**
 * The broken references of one file (`file` relative to the repository root). `exists` and `sectionsOf` take paths
 * relative to the root; `sectionsOf` returns null for a file that is not a numbered document.
 */
export function checkFile(file: string, text: string, exists: (p: string) => boolean, sectionsOf: (p: string) => Set<string> | null): Problem[] {
  const problems: Problem[] = [];
  const markdown = file.endsWith('.md');
  const lines = text.split('\n');
  let offset = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const report = (message: string): void => void problems.push({ file, line: i + 1, message });
    // The documents cited on this line, by column: a `§` belongs to the last one before it.
    const cited: Array<{ at: number; doc: string | null }> = [];
    for (const m of line.matchAll(DOC_REFERENCE)) {
      const reference = m[1]!;
      const at = m.index;
      const quoted = /['"]$/.test(line.slice(0, at)) && /^['"]/.test(line.slice(at + reference.length));
      if (quoted) continue; // a file name in code (path.join('docs', 'x.md')), not a citation
      const doc = resolveReference(reference, file, exists);
      if (doc === null) report(`${reference} is not a file in the repository`);
      else if (!markdown && !reference.includes('/') && /^\s*§/.test(line.slice(at + reference.length))) {
        report(`cite ${reference} by its path from the repository root (docs/${reference})`);
      }
      cited.push({ at, doc });
    }
    for (const m of line.matchAll(SECTION_REFERENCE)) {
      const owner = cited.filter((c) => c.at < m.index).at(-1);
      let doc: string | null;
      if (owner) doc = owner.doc;
      else if (isRfcSection(text, offset + m.index)) continue;
      else if (markdown)
        doc = file; // a document's reference to its own section
      else {
        report(`${m[0]} does not say which document it cites`);
        continue;
      }
      if (doc === null) continue; // already reported
      const sections = sectionsOf(doc);
      if (sections === null) {
        report(`${m[0]} cites ${doc}, which has no numbered sections`);
        continue;
      }
      for (const section of [m[1]!, m[2]].filter((s): s is string => s !== undefined)) {
        if (!sections.has(section)) report(`${doc} has no section ${section} (cited as ${m[0]})`);
      }
    }
    offset += line.length + 1;
  }
  return problems;
}

function walk(dir: string, out: string[]): void {
  for (const entry of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(rel, out);
    else if (entry.isFile() && SCANNED_EXTENSIONS.has(path.extname(entry.name)) && rel !== SELF) out.push(rel);
  }
}

describe('document references in the repository', () => {
  const files: string[] = ['README.md'];
  for (const dir of SCANNED_DIRS) walk(dir, files);
  const exists = (p: string): boolean => !p.startsWith('..') && fs.existsSync(path.join(ROOT, p));
  const sectionCache = new Map<string, Set<string> | null>();
  const sectionsOf = (p: string): Set<string> | null => {
    if (!sectionCache.has(p)) {
      const found = p.endsWith('.md') ? headingSections(fs.readFileSync(path.join(ROOT, p), 'utf8')).sections : null;
      sectionCache.set(p, found && found.size > 0 ? found : null);
    }
    return sectionCache.get(p)!;
  };

  test('the protocol and compatibility documents are there, numbered, each number once', () => {
    for (const doc of ['docs/protocol.md', 'docs/compatibility.md']) {
      const { sections, duplicates } = headingSections(fs.readFileSync(path.join(ROOT, doc), 'utf8'));
      assert.ok(sections.has('1') && sections.has('2.1'), `${doc} has numbered sections`);
      assert.deepEqual(duplicates, [], `${doc} numbers each section once`);
    }
  });

  test('every cited document exists and has every cited section', () => {
    const problems = files.flatMap((file) => checkFile(file, fs.readFileSync(path.join(ROOT, file), 'utf8'), exists, sectionsOf));
    assert.deepEqual(
      problems.map((p) => `${p.file}:${p.line}: ${p.message}`),
      [],
    );
  });
});

describe('the reference checker', () => {
  const docs: Record<string, string> = {
    'docs/protocol.md': '# Wire\n## 1. Frames\n### 1.2 Flags\n### 1.3 Stream byte\n## 2. Workers\n### 2.3 Handshake\n',
    'docs/plain.md': '# Plain\nno numbers\n',
  };
  const exists = (p: string): boolean => p in docs || p === 'src/x.ts';
  const sectionsOf = (p: string): Set<string> | null => {
    const s = headingSections(docs[p] ?? '').sections;
    return s.size > 0 ? s : null;
  };
  const check = (text: string, file = 'src/x.ts'): string[] => checkFile(file, text, exists, sectionsOf).map((p) => p.message);

  test('accepts existing sections, lists and ranges', () => {
    assert.deepEqual(check('// docs/protocol.md §1.2, §1.3 and §2.3; docs/protocol.md §1.2–1.3; §1–§2 of docs/protocol.md §1'), []);
  });

  test('refuses a section the document does not have', () => {
    assert.deepEqual(check('// see docs/protocol.md §2.2'), ['docs/protocol.md has no section 2.2 (cited as §2.2)']);
    assert.deepEqual(check('// docs/protocol.md §1.2–1.4'), ['docs/protocol.md has no section 1.4 (cited as §1.2–1.4)']);
  });

  test('refuses a document that is not in the repository', () => {
    assert.deepEqual(check('// compat.md §1.9'), ['compat.md is not a file in the repository']);
    assert.deepEqual(check('// docs/design.md'), ['docs/design.md is not a file in the repository']);
  });

  test('refuses a bare section and a bare document name in code', () => {
    assert.deepEqual(check('// the rpc section (§1.6)'), ['§1.6 does not say which document it cites']);
    assert.deepEqual(check('// protocol.md §1.2', 'docs/x.ts'), ['cite protocol.md by its path from the repository root (docs/protocol.md)']);
  });

  test('refuses sections of a document without numbered headings', () => {
    assert.deepEqual(check('// docs/plain.md §1'), ['§1 cites docs/plain.md, which has no numbered sections']);
  });

  test('leaves RFC sections, URLs and quoted file names alone', () => {
    assert.deepEqual(check('/** no body (RFC 9112\n * §6.3): nothing */'), []);
    assert.deepEqual(check("// https://github.com/o/r/blob/main/docs/x.md\nconst f = path.join('docs', 'y.md');"), []);
  });

  test('markdown: links relative to the file, and sections of the document itself', () => {
    assert.deepEqual(check('See [protocol.md](protocol.md) §2.3.', 'docs/plain.md'), []);
    assert.deepEqual(check('See [protocol.md](protocol.md) §9.', 'docs/plain.md'), ['docs/protocol.md has no section 9 (cited as §9)']);
    assert.deepEqual(check('As §1.2 says.', 'docs/protocol.md'), []);
    assert.deepEqual(check('As §4 says.', 'docs/protocol.md'), ['docs/protocol.md has no section 4 (cited as §4)']);
  });
});
