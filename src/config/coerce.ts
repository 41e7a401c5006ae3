// Weak typing as RoadRunner's decoder does it (mapstructure, weakly typed input): "4" -> 4, "true" -> true,
// "a,b" -> [a, b], a list of one-key maps -> one map. Pure functions; a bad value throws badValue()'s ConfigError.
import { ConfigError } from '../errors.js';

/** A value of the wrong shape: a ConfigError without a place, which the reader gives file, line and key. */
export function badValue(expected: string): ConfigError {
  return new ConfigError(`expected ${expected}`);
}

export type PlainMap = Record<string, unknown>;

export function isPlainMap(value: unknown): value is PlainMap {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const WHOLE_NUMBER = /^[+-]?\d+$/;

/** A whole number; "" (e.g. an unset ${VAR}) counts as 0, as in Go's weak decoding. */
export function toInt(value: unknown): number {
  if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'string') {
    const text = value.trim();
    if (text === '') return 0;
    if (WHOLE_NUMBER.test(text) && Number.isSafeInteger(Number(text))) return Number(text);
  }
  throw badValue('a whole number');
}

export function toUint(value: unknown): number {
  const result = toInt(value);
  if (result < 0) throw badValue('a whole number (0 or more)');
  return result;
}

const TRUE_WORDS = new Set(['1', 't', 'true']);
const FALSE_WORDS = new Set(['', '0', 'f', 'false']);

/** Go's strconv.ParseBool words (case-insensitive); numbers are true when not 0. */
export function toBool(value: unknown): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') return value !== 0;
  if (typeof value === 'string') {
    const word = value.trim().toLowerCase();
    if (TRUE_WORDS.has(word)) return true;
    if (FALSE_WORDS.has(word)) return false;
  }
  throw badValue('true or false');
}

/** Scalars become strings; booleans become "1"/"0" as mapstructure writes them (so `env: {DEBUG: true}` gives "1"). */
export function toStr(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  if (typeof value === 'boolean') return value ? '1' : '0';
  throw badValue('a string');
}

/** A list of strings; a string is split on commas (entries trimmed, empty ones dropped); a lone scalar is a list of one. */
export function toStringList(value: unknown): string[] {
  const expected = 'a list of strings (or a comma-separated string)';
  if (Array.isArray(value)) {
    return value.filter((item) => item !== null && item !== undefined).map((item) => scalarOr(item, expected));
  }
  if (typeof value === 'string') return splitCommas(value);
  if (typeof value === 'number' || typeof value === 'boolean') return [toStr(value)];
  throw badValue(expected);
}

export function splitCommas(text: string): string[] {
  return text
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
}

/** A map of names to strings; a list of maps is merged into one map (later entries win). null values become "". */
export function toStringMap(value: unknown): Record<string, string> {
  const expected = 'a map of names to strings';
  const maps = Array.isArray(value) ? value : [value];
  const result: Record<string, string> = {};
  for (const map of maps) {
    if (map === null || map === undefined) continue;
    if (!isPlainMap(map)) throw badValue(expected);
    for (const [key, item] of Object.entries(map)) {
      result[key] = item === null || item === undefined ? '' : scalarOr(item, expected);
    }
  }
  return result;
}

/**
 * argv for a command. A string is split on runs of whitespace (no shell quoting). A list is argv as written,
 * except that a list of one string is split like a string, as RoadRunner's server plugin does.
 */
export function toCommand(value: unknown): string[] {
  const expected = 'a command (a string or a list of strings)';
  if (typeof value === 'string') return splitWords(value);
  if (Array.isArray(value)) {
    const argv = value.map((item) => scalarOr(item, expected));
    return argv.length === 1 ? splitWords(argv[0]!) : argv;
  }
  throw badValue(expected);
}

function splitWords(text: string): string[] {
  const trimmed = text.trim();
  return trimmed === '' ? [] : trimmed.split(/\s+/);
}

const MEGABYTE = 1024 * 1024;

/** Sizes are written as whole megabytes (MiB) and returned in bytes. */
export function megabytesToBytes(value: unknown): number {
  try {
    return toUint(value) * MEGABYTE;
  } catch {
    throw badValue('a whole number of megabytes');
  }
}

function scalarOr(value: unknown, expected: string): string {
  try {
    return toStr(value);
  } catch {
    throw badValue(expected);
  }
}

/** How a bad value is quoted in an error message: strings in quotes, lists and maps as short JSON. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null || value === undefined) return 'nothing';
  if (typeof value === 'object') {
    const json = JSON.stringify(value);
    const short = json.length > 60 ? `${json.slice(0, 57)}...` : json;
    return `${Array.isArray(value) ? 'a list' : 'a map'} ${short}`;
  }
  return String(value);
}
