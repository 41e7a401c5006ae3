// `-o key=value` overrides (docs/compatibility.md §1.3): parsed like RoadRunner does, the value env-substituted, then set
// at a dotted path (missing maps are created). Values stay strings; the section readers type them weakly.
import { ConfigError } from '../errors.js';
import { isPlainMap, type PlainMap } from './coerce.js';
import { MAX_NESTING, type Origins } from './document.js';
import { expandString, type EnvLookup } from './expand.js';

export interface Override {
  /** Lower-cased dotted path. */
  key: string;
  value: string;
  flag: string;
}

const QUOTES = ['"', "'", '`'];
const USAGE = 'usage: -o key=value';

export function parseOverride(flag: string): Override {
  const text = flag.replace(/^[ "'`]+/, '');
  const equals = text.indexOf('=');
  if (equals === -1) throw new ConfigError(`${USAGE} (got ${JSON.stringify(flag)})`);
  const key = text.slice(0, equals).trim();
  const value = unquote(text.slice(equals + 1).trim());
  if (key === '' || value === '') throw new ConfigError(`${USAGE} (got ${JSON.stringify(flag)})`);
  const parts = key.split('.');
  if (parts.some((part) => part === '')) throw new ConfigError(`${USAGE}: bad key ${JSON.stringify(key)}`);
  if (parts.includes('__proto__')) throw new ConfigError(`-o ${describeKey(key)}: a key named __proto__ would set the prototype of every object`);
  // the same bound as nesting in the file: every walk over the data recurses
  if (parts.length > MAX_NESTING) throw new ConfigError(`-o ${describeKey(key)}: the key nests ${parts.length} levels, more than ${MAX_NESTING}`);
  return { key: key.toLowerCase(), value, flag };
}

/** A key short enough for a one-line message. */
function describeKey(key: string): string {
  return key.length > 80 ? `${key.slice(0, 77)}...` : key;
}

/** A value wrapped in ", ' or ` loses the wrappers; escaped inner quotes of that kind are unescaped. */
function unquote(value: string): string {
  const quote = value[0];
  if (quote === undefined || !QUOTES.includes(quote)) return value;
  let start = 0;
  let end = value.length;
  while (start < end && value[start] === quote) start++;
  while (end > start && value[end - 1] === quote) end--;
  return value.slice(start, end).replaceAll(`\\${quote}`, quote);
}

/** Applies the overrides in order to `data` (mutated) and records them in `origins`. */
export function applyOverrides(data: PlainMap, flags: readonly string[], lookup: EnvLookup, origins: Origins, file: string): void {
  for (const flag of flags) {
    const override = parseOverride(flag);
    setPath(data, override.key.split('.'), expandString(override.value, lookup));
    origins.removeUnder(override.key);
    origins.set(override.key, { file, override: flag });
  }
}

/** Sets a value at a key path, replacing anything that is not a map on the way. */
export function setPath(data: PlainMap, keys: readonly string[], value: unknown): void {
  let map = data;
  for (const key of keys.slice(0, -1)) {
    const next = map[key];
    if (!isPlainMap(next)) map[key] = {};
    map = map[key] as PlainMap;
  }
  map[keys[keys.length - 1]!] = value;
}
