// Reads a YAML (or JSON) config file into plain data with lower-cased keys, and remembers where each key was
// written (file and line) so later type errors can point at it.
import { readFileSync } from 'node:fs';
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Node as YamlNode } from 'yaml';
import { ConfigError } from '../errors.js';
import { isPlainMap, type PlainMap } from './coerce.js';

/** Where a value came from: a line of a file, or a -o flag. */
export interface Origin {
  file: string;
  line?: number;
  /** The -o flag that set this value. */
  override?: string;
}

/** Dotted key path -> origin. Lookups fall back to the nearest written ancestor (a missing key points at its section). */
export class Origins {
  private readonly byPath = new Map<string, Origin>();

  constructor(private readonly fallback: Origin) {}

  set(path: string, origin: Origin): void {
    this.byPath.set(path, origin);
  }

  find(path: string): Origin {
    for (let at: string | null = path; at !== null; at = parentPath(at)) {
      const origin = this.byPath.get(at);
      if (origin) return origin;
    }
    return this.fallback;
  }

  /** Forgets `path` and everything below it. */
  removeUnder(path: string): void {
    for (const key of [...this.byPath.keys()]) {
      if (isUnder(key, path)) this.byPath.delete(key);
    }
  }

  /** Takes `path` and everything below it from another file's origins (used by include). */
  copyUnder(path: string, from: Origins): void {
    for (const [key, origin] of from.byPath) {
      if (isUnder(key, path)) this.byPath.set(key, origin);
    }
  }
}

export function joinPath(parent: string, key: string): string {
  return parent === '' ? key : `${parent}.${key}`;
}

function parentPath(path: string): string | null {
  const cut = Math.max(path.lastIndexOf('.'), path.lastIndexOf('['));
  return cut <= 0 ? null : path.slice(0, cut);
}

function isUnder(key: string, path: string): boolean {
  return key === path || key.startsWith(`${path}.`) || key.startsWith(`${path}[`);
}

export interface ConfigSource {
  /** Top-level map, keys lower-cased at every depth. */
  data: PlainMap;
  origins: Origins;
}

/** Reads and parses one file. `label` is how the file is named in messages (the path as the user wrote it). */
export function readConfigFile(path: string, label: string): ConfigSource {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`unable to read the config file: ${(error as Error).message}`, { file: label });
  }
  return parseConfigText(text, label);
}

/** YAML 1.2 (JSON is a subset), with `<<` merge keys and anchors as RoadRunner's YAML reader allows them. */
export function parseConfigText(text: string, label: string): ConfigSource {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, merge: true });
  const [firstError] = doc.errors;
  if (firstError) {
    const line = firstError.linePos?.[0].line;
    throw new ConfigError(`invalid YAML: ${firstError.message.split(' at line ')[0]}`, { file: label, line });
  }
  const data = lowerCaseKeys(doc.toJS({ maxAliasCount: 1000 }));
  if (data === null || data === undefined) return { data: {}, origins: new Origins({ file: label }) };
  if (!isPlainMap(data)) {
    throw new ConfigError('expected a map of sections at the top of the file (version, server, http, ...)', { file: label, line: 1 });
  }
  const origins = new Origins({ file: label });
  recordLines(doc.contents, '', { label, lineCounter, origins });
  return { data, origins };
}

export function lowerCaseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(lowerCaseKeys);
  if (!isPlainMap(value)) return value;
  const result: PlainMap = {};
  for (const [key, item] of Object.entries(value)) result[key.toLowerCase()] = lowerCaseKeys(item);
  return result;
}

interface LineWalk {
  label: string;
  lineCounter: LineCounter;
  origins: Origins;
}

/** Walks the YAML tree and records the line of every key and list item under its dotted path. */
function recordLines(node: YamlNode | null, path: string, walk: LineWalk): void {
  if (isMap(node)) {
    for (const pair of node.items) {
      if (!isScalar(pair.key) || typeof pair.key.value === 'symbol' || !pair.key.range) continue; // `<<` merge keys
      const keyPath = joinPath(path, String(pair.key.value).toLowerCase());
      walk.origins.set(keyPath, { file: walk.label, line: walk.lineCounter.linePos(pair.key.range[0]).line });
      recordLines(pair.value as YamlNode | null, keyPath, walk);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, index) => {
      const itemPath = `${path}[${index}]`;
      const range = (item as YamlNode | null)?.range;
      if (range) walk.origins.set(itemPath, { file: walk.label, line: walk.lineCounter.linePos(range[0]).line });
      recordLines(item as YamlNode | null, itemPath, walk);
    });
  }
}
