// Reads a YAML (or JSON) config file into plain data with lower-cased keys, and remembers where each key was
// written (file and line) so later type errors can point at it. Hostile files (alias bombs, an anchor aliased
// inside itself, absurd nesting) are refused with a line before anything expands them.
import { readFileSync } from 'node:fs';
import { LineCounter, isAlias, isMap, isPair, isScalar, isSeq, parseDocument, type Document, type Node as YamlNode } from 'yaml';
import { ConfigError } from '../errors.js';
import { isPlainMap, type PlainMap } from './coerce.js';
import { goYamlNumber } from './go-yaml-int.js';

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

/**
 * YAML 1.2 (JSON is a subset), with `<<` merge keys and anchors as RoadRunner's YAML reader allows them, and numbers
 * as it resolves them (`0755` is octal: go-yaml-int.ts).
 */
export function parseConfigText(text: string, label: string): ConfigSource {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, merge: true, customTags: (tags) => [goYamlNumber, ...tags] });
  const [firstError] = doc.errors;
  if (firstError) {
    const line = firstError.linePos?.[0].line;
    // the parser gives up on nesting a few hundred levels deep with the engine's own words
    const message = /call stack/i.test(firstError.message) ? `nesting too deep (more than ${MAX_NESTING} levels)` : firstError.message.split(' at line ')[0];
    throw new ConfigError(`invalid YAML: ${message}`, { file: label, line });
  }
  checkShape(doc, label, lineCounter);
  // checkShape() bounded what aliases add and named the line; the library's own count would throw without one
  const data = lowerCaseKeys(doc.toJS({ maxAliasCount: -1 }));
  if (data === null || data === undefined) return { data: {}, origins: new Origins({ file: label }) };
  if (!isPlainMap(data)) {
    throw new ConfigError('expected a map of sections at the top of the file (version, server, http, ...)', { file: label, line: 1 });
  }
  const origins = new Origins({ file: label });
  recordLines(doc.contents, '', { label, lineCounter, origins });
  return { data, origins };
}

/**
 * Levels of maps and lists, aliases expanded. A RoadRunner config nests five or six; every walk over the data
 * (lower-casing, ${VAR}, freezing, rpc.Config) recurses, so a bound keeps them far from the stack's end.
 */
export const MAX_NESTING = 64;
/**
 * Values aliases may add once expanded. Anchors in configs share pool defaults between a few sections (tens to
 * hundreds of values); an alias bomb (billion laughs) adds millions from a few lines.
 */
export const MAX_ALIASED_VALUES = 10_000;

/** Expanded size of a node: how many values (scalars, maps, lists) and how many levels of nesting it stands for. */
interface Extent {
  values: number;
  depth: number;
}

interface ShapeWalk {
  label: string;
  lineCounter: LineCounter;
  /** The node each anchor name stands for at this point of the document (a later anchor of the same name wins, as in YAML). */
  anchors: Map<string, YamlNode>;
  /** Extents of the anchored nodes walked so far. */
  extents: Map<YamlNode, Extent>;
  /** The maps and lists the walk is inside: an alias to one of them would make the data contain itself. */
  open: Set<YamlNode>;
  /** Values added by aliases so far. */
  aliased: number;
}

/**
 * Walks the YAML tree once, in document order, before anything expands it: refuses an alias to a map or list it
 * sits in (the data would contain itself; the walks over it would never end), an alias to no earlier anchor,
 * nesting deeper than MAX_NESTING, aliases adding more than MAX_ALIASED_VALUES, and `__proto__` keys, each at
 * its line.
 */
function checkShape(doc: Document, label: string, lineCounter: LineCounter): void {
  const walk: ShapeWalk = { label, lineCounter, anchors: new Map(), extents: new Map(), open: new Set(), aliased: 0 };
  measure(doc.contents, '', 0, walk);
}

function measure(node: YamlNode | null, path: string, depth: number, walk: ShapeWalk): Extent {
  if (!node) return { values: 1, depth: 0 };
  if (isAlias(node)) return measureAlias(node, path, depth, walk);
  if (node.anchor) walk.anchors.set(node.anchor, node);
  let extent: Extent = { values: 1, depth: 0 };
  if (isMap(node) || isSeq(node)) {
    if (depth >= MAX_NESTING) refuse(walk, node, path, `nesting too deep: more than ${MAX_NESTING} levels of maps and lists`);
    walk.open.add(node);
    let childDepth = 0;
    node.items.forEach((item: unknown, index: number) => {
      if (isPair(item) && isScalar(item.key) && String(item.key.value).toLowerCase() === '__proto__') {
        refuse(walk, item.key, keyPath(path, item.key), 'a key named __proto__ would become the prototype of its map in JavaScript: rename it');
      }
      const parts: Array<[unknown, string]> = isPair(item)
        ? [
            [item.key, keyPath(path, item.key)],
            [item.value, keyPath(path, item.key)],
          ]
        : [[item, `${path}[${index}]`]];
      for (const [child, childPath] of parts) {
        const inner = measure(child as YamlNode | null, childPath, depth + 1, walk);
        extent.values += inner.values;
        childDepth = Math.max(childDepth, inner.depth);
      }
    });
    walk.open.delete(node);
    extent = { values: extent.values, depth: childDepth + 1 };
  }
  if (node.anchor) walk.extents.set(node, extent);
  return extent;
}

function measureAlias(alias: YamlNode & { source: string }, path: string, depth: number, walk: ShapeWalk): Extent {
  const target = walk.anchors.get(alias.source);
  const what = `the alias *${alias.source}`;
  if (!target) refuse(walk, alias, path, `${what} has no anchor &${alias.source} before it`);
  if (walk.open.has(target)) refuse(walk, alias, path, `${what} is inside the map or list anchored as &${alias.source}: it would contain itself`);
  const extent = walk.extents.get(target) ?? { values: 1, depth: 0 };
  if (depth + extent.depth > MAX_NESTING) refuse(walk, alias, path, `nesting too deep: ${what} makes more than ${MAX_NESTING} levels of maps and lists`);
  walk.aliased += extent.values;
  if (walk.aliased > MAX_ALIASED_VALUES) {
    refuse(walk, alias, path, `aliases expand to more than ${MAX_ALIASED_VALUES} values at ${what} (an alias bomb?)`);
  }
  return extent;
}

function keyPath(path: string, key: unknown): string {
  if (isScalar(key) && typeof key.value === 'symbol') return path; // `<<` merges into the map itself
  return joinPath(path, isScalar(key) ? String(key.value).toLowerCase() : '?');
}

function refuse(walk: ShapeWalk, node: YamlNode, path: string, message: string): never {
  const line = node.range ? walk.lineCounter.linePos(node.range[0]).line : undefined;
  throw new ConfigError(message, { file: walk.label, line, key: path || undefined });
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
