// Typed reads of one config section with weak typing; every mistake becomes a ConfigError that names the file,
// the line, the dotted key, the bad value and what was expected.
import { ConfigError } from '../errors.js';
import { describeValue, isPlainMap, megabytesToBytes, toBool, toCommand, toInt, toStr, toStringList, toStringMap, toUint, type PlainMap } from './coerce.js';
import { joinPath, type Origins } from './document.js';
import { parseDuration } from './duration.js';

function withoutNulls(map: Readonly<PlainMap>): PlainMap {
  return Object.fromEntries(Object.entries(map).filter(([, value]) => value !== null && value !== undefined));
}

export class SectionReader {
  constructor(
    /** Dotted path of this section ('' for the top). */
    readonly path: string,
    private readonly map: Readonly<PlainMap>,
    private readonly origins: Origins,
  ) {}

  /** The value at `key`, or undefined when missing or written as null (`key:` with nothing after it). */
  value(key: string): unknown {
    const value = this.map[key];
    return value === null ? undefined : value;
  }

  has(key: string): boolean {
    return this.value(key) !== undefined;
  }

  keys(): string[] {
    return Object.keys(this.map);
  }

  /** A sub-section, or null when it is absent or empty-valued (RoadRunner then treats the plugin as off). */
  section(key: string): SectionReader | null {
    const value = this.value(key);
    if (value === undefined) return null;
    if (!isPlainMap(value)) this.fail(key, `expected a section (a map of keys), got ${describeValue(value)}`);
    return new SectionReader(this.keyPath(key), value, this.origins);
  }

  /** Like section(), but an absent section reads as an empty one (every key takes its default). */
  sectionOrEmpty(key: string): SectionReader {
    return this.section(key) ?? new SectionReader(this.keyPath(key), {}, this.origins);
  }

  /** This section with the keys it lacks taken from `parent` (minus `except`); log channels inherit this way. */
  inheriting(parent: SectionReader, except: readonly string[]): SectionReader {
    const inherited: PlainMap = {};
    for (const key of parent.keys()) {
      if (!except.includes(key) && parent.has(key)) inherited[key] = parent.value(key);
    }
    return new SectionReader(this.path, { ...inherited, ...withoutNulls(this.map) }, this.origins);
  }

  /** '' when missing. */
  string(key: string): string {
    return this.read(key, '', toStr);
  }

  /** 0 when missing; may be negative. */
  int(key: string): number {
    return this.read(key, 0, toInt);
  }

  /** 0 when missing. */
  uint(key: string): number {
    return this.read(key, 0, toUint);
  }

  bool(key: string): boolean {
    return this.read(key, false, toBool);
  }

  /** Milliseconds; 0 when missing. */
  duration(key: string): number {
    return this.read(key, 0, parseDuration);
  }

  /** Bytes, from whole megabytes; 0 when missing. */
  megabytes(key: string): number {
    return this.read(key, 0, megabytesToBytes);
  }

  list(key: string): string[] {
    return this.read(key, [], toStringList);
  }

  stringMap(key: string): Record<string, string> {
    return this.read(key, {}, toStringMap);
  }

  /** argv, or [] when missing or empty. */
  command(key: string): string[] {
    return this.read(key, [], toCommand);
  }

  keyPath(key: string): string {
    return joinPath(this.path, key);
  }

  /** Throws a ConfigError for `key` (pointing at its line, or its section's line when the key is missing). */
  fail(key: string, message: string): never {
    const keyPath = this.keyPath(key);
    const origin = this.origins.find(keyPath);
    const via = origin.override ? ` (set by -o ${origin.override})` : '';
    throw new ConfigError(message + via, { file: origin.file, line: origin.line, key: keyPath });
  }

  private read<T>(key: string, missing: T, convert: (value: unknown) => T): T {
    const value = this.value(key);
    if (value === undefined) return missing;
    try {
      return convert(value);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      return this.fail(key, `${error.problem}, got ${describeValue(value)}`);
    }
  }
}
