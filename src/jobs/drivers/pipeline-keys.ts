// Reading a pipeline's keys as RoadRunner's drivers do: a file pipeline's keys decoded strictly (an error names the
// key), a jobs.Declare map's strings decoded as Go's Pipeline.String/Int/Bool (what they refuse gives the default).
import { describeValue } from '../../config/coerce.js';
import { ConfigError } from '../../errors.js';

/** `section[key]` through `decode`, 0 when absent; a refused value is a ConfigError naming `where.key`. */
export function readKey<T>(section: Record<string, unknown>, key: string, where: string, decode: (value: unknown) => T): T | 0 {
  const value = section[key];
  if (value === undefined || value === null) return 0;
  try {
    return decode(value);
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(`${where}.${key}: ${err.problem}, got ${describeValue(value)}`);
    throw err;
  }
}

/** RoadRunner's Pipeline.String: a value that is not a string gives ''. */
export function declaredString(map: Record<string, unknown>, key: string): string {
  const value = map[key];
  return typeof value === 'string' ? value : '';
}

/** RoadRunner's Pipeline.Int: a value that is not a whole number gives the default. */
export function declaredInt(map: Record<string, unknown>, key: string, fallback: number): number {
  const value = map[key];
  const text = typeof value === 'string' ? value.trim() : typeof value === 'number' ? String(value) : '';
  return /^[+-]?\d+$/.test(text) && Number.isSafeInteger(Number(text)) ? Number(text) : fallback;
}

/** RoadRunner's Pipeline.Bool is Go's strconv.ParseBool; anything it refuses is false. */
export function declaredBool(map: Record<string, unknown>, key: string): boolean {
  const value = map[key];
  return value === true || (typeof value === 'string' && ['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value));
}

/** A pipeline's settings from `read`; a ConfigError it throws is prefixed with the driver and the pipeline's name. */
export function pipelineSettings<T>(driver: string, pipelineName: string, read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(`${driver} pipeline ${pipelineName}: ${err.message}`);
    throw err;
  }
}
