// The data tree RoadRunner sends as a parsed form body (docs/protocol.md §4.3): names like `a[b][]` become nested objects
// and lists. The same mounting rules build the uploads tree (docs/protocol.md §4.4). Also url-encoded decoding (Go url.ParseQuery).

import { FormTreeError } from '../errors.js';

/** Names deeper than this many levels are silently ignored (RoadRunner's MaxLevel). */
export const MAX_TREE_DEPTH = 127;

/** A branch of the tree. Always created with a null prototype, so `__proto__` is an ordinary key. */
export interface Tree {
  [key: string]: unknown;
}

export function newTree(): Tree {
  return Object.create(null) as Tree;
}

/** Trees are the only null-prototype objects in a tree; leaves are strings, arrays and file objects. */
function isTree(value: unknown): value is Tree {
  return typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === null;
}

/** RoadRunner's fetchIndexes: `a[b][]` -> ['a', 'b', '']; spaces anywhere in the name are dropped. */
export function splitFieldName(name: string): string[] {
  let plain = true;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 32 || c === 91 || c === 93) {
      plain = false;
      break;
    }
  }
  if (plain) return [name];
  const keys = [''];
  let pos = 0; // 0: inside a key, 1: just after '[', 2: just after ']'
  for (const ch of name) {
    if (ch === ' ') continue;
    if (ch === '[') {
      pos = 1;
      continue;
    }
    if (ch === ']') {
      if (pos === 1) keys.push('');
      pos = 2;
      continue;
    }
    if (pos !== 0) keys.push('');
    keys[keys.length - 1] += ch;
    pos = 0;
  }
  return keys;
}

function isEmptyLeaf(value: unknown): boolean {
  if (value === undefined || value === null) return true;
  if (typeof value === 'string') return value.length === 0;
  if (Array.isArray(value)) return value.length === 0 || (value.length === 1 && (value[0] === '' || value[0] == null));
  return false;
}

/**
 * Mounts all values sent under one field name. A plain name takes one value (`pick`: the last for form fields, the
 * first for files), `name[]` takes them all as a list, `a[b]` nests. Throws FormTreeError when a name needs a branch
 * where a non-empty value already is (or the other way round), RoadRunner's "invalid multiple values" error.
 */
export function mountField<V>(tree: Tree, name: string, values: V[], pick: 'first' | 'last'): void {
  const keys = splitFieldName(name);
  if (keys.length > MAX_TREE_DEPTH) return;
  const incomingEmpty = isEmptyLeaf(values);
  let node = tree;
  for (let depth = 0; depth < keys.length; depth++) {
    const key = keys[depth]!;
    const rest = keys.length - depth;
    const listIncoming = rest === 2 && keys[depth + 1] === '';
    const leafIncoming = rest === 1 || listIncoming;
    const existing = node[key];
    if (existing === undefined) {
      node[key] = newTree();
    } else if (!isTree(existing)) {
      if (!isEmptyLeaf(existing)) {
        if (rest > 1 && keys[depth + 1] !== '') throw invalidMultipleValues(key);
        if (incomingEmpty) return;
      } else if (!incomingEmpty) {
        node[key] = newTree();
      }
    } else if (leafIncoming) {
      if (!incomingEmpty) throw invalidMultipleValues(key);
      return;
    }
    if (listIncoming) {
      node[key] = values;
      return;
    }
    if (rest === 1) {
      node[key] = values.length === 0 ? values : pick === 'last' ? values[values.length - 1] : values[0];
      return;
    }
    const child = node[key];
    if (isTree(child)) {
      node = child;
    } else {
      // Only an empty leaf can still be here (RoadRunner would panic on it): it becomes a branch.
      const branch = newTree();
      node[key] = branch;
      node = branch;
    }
  }
}

function invalidMultipleValues(key: string): FormTreeError {
  return new FormTreeError(`invalid multiple values to key '${key}' in tree`);
}

/** Builds a tree from field name -> all its values, in the order the names first appeared. */
export function buildTree<V>(fields: ReadonlyMap<string, V[]>, pick: 'first' | 'last'): Tree {
  const tree = newTree();
  for (const [name, values] of fields) mountField(tree, name, values, pick);
  return tree;
}

/** Appends a value to the list of its field name, keeping the order in which names first appeared. */
export function addField<V>(fields: Map<string, V[]>, name: string, value: V): void {
  const list = fields.get(name);
  if (list === undefined) fields.set(name, [value]);
  else list.push(value);
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * Go's url.QueryUnescape over bytes [start, end): '+' is a space, %XX a byte; the result is read as UTF-8.
 * Returns null on a malformed escape; `onError` receives Go's message for it.
 */
export function queryUnescape(src: Buffer, start: number, end: number, onError?: (message: string) => void): string | null {
  let i = start;
  for (; i < end; i++) {
    const c = src[i];
    if (c === 37 || c === 43) break;
  }
  if (i === end) return src.toString('utf8', start, end);
  const out = Buffer.allocUnsafe(end - start);
  src.copy(out, 0, start, i);
  let n = i - start;
  for (; i < end; i++) {
    const c = src[i]!;
    if (c === 43) {
      out[n++] = 32;
    } else if (c === 37) {
      const hi = i + 2 < end ? hexValue(src[i + 1]!) : -1;
      const lo = i + 2 < end ? hexValue(src[i + 2]!) : -1;
      if (hi < 0 || lo < 0) {
        onError?.(`invalid URL escape ${JSON.stringify(src.toString('latin1', i, Math.min(i + 3, end)))}`);
        return null;
      }
      out[n++] = (hi << 4) | lo;
      i += 2;
    } else {
      out[n++] = c;
    }
  }
  return out.toString('utf8', 0, n);
}

/**
 * Go's url.ParseQuery over a url-encoded body: pairs split on '&', empty pairs skipped. Go reports a pair with a
 * ';' or a bad %-escape as an error and RoadRunner then fails the request, so this throws FormTreeError for them.
 */
export function parseUrlencoded(body: Buffer): Map<string, string[]> {
  const fields = new Map<string, string[]>();
  let error: string | null = null;
  const onError = (message: string): void => {
    error ??= message;
  };
  let pos = 0;
  while (pos < body.length) {
    let amp = body.indexOf(0x26, pos);
    if (amp === -1) amp = body.length;
    const start = pos;
    pos = amp + 1;
    if (amp === start) continue;
    const semi = body.indexOf(0x3b, start);
    if (semi !== -1 && semi < amp) {
      onError('invalid semicolon separator in query');
      continue;
    }
    let eq = body.indexOf(0x3d, start);
    if (eq === -1 || eq > amp) eq = amp;
    const key = queryUnescape(body, start, eq, onError);
    if (key === null) continue;
    const value = eq < amp ? queryUnescape(body, eq + 1, amp, onError) : '';
    if (value === null) continue;
    addField(fields, key, value);
  }
  if (error !== null) throw new FormTreeError(error);
  return fields;
}
