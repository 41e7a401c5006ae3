// The boltdb pipeline's keys as RoadRunner reads them (docs/jobs.md §1.2, §3.4): file, prefetch and permissions, from
// jobs.pipelines.<name>.config in the file or from jobs.Declare's string map.
import path from 'node:path';
import { ConfigError } from '../../../errors.js';
import type { PipelineConfig } from '../../driver.js';

export interface BoltdbOptions {
  /** absolute path of the journal */
  file: string;
  prefetch: number;
  /** mode of a new journal file */
  permissions: number;
  /** set when the permissions could not be read and 0755 is used, as RoadRunner warns */
  permissionsWarning?: string;
}

const DEFAULT_FILE = 'rr.db';
const DEFAULT_PREFETCH = 1000;
const DEFAULT_PERMISSIONS = 0o755;
const MAX_MODE = 0o7777;

function where(pipeline: PipelineConfig, key: string): string {
  return pipeline.declared ? `jobs.Declare of pipeline '${pipeline.name}', key '${key}'` : `jobs.pipelines.${pipeline.name}.config.${key}`;
}

function fail(pipeline: PipelineConfig, key: string, message: string): never {
  if (pipeline.declared) throw new ConfigError(`${where(pipeline, key)}: ${message}`);
  throw new ConfigError(message, { key: where(pipeline, key) });
}

/** Go's strconv.ParseInt(text, 8, 32): digits 0-7 with an optional sign, nothing else. */
function parseOctal(text: string): number | null {
  return /^[+-]?[0-7]+$/.test(text) ? parseInt(text, 8) : null;
}

/** A number in the file is the mode itself: the loader reads `0755` as octal, as RoadRunner's YAML reader does. */
function modeFromNumber(value: number): number | null {
  return Number.isSafeInteger(value) && value >= 0 && value <= MAX_MODE ? value : null;
}

/** mapstructure's weak decoding of a string into an int: strconv.ParseInt(text, 0, 64) (0755 octal, 0x1ed hex). */
function parseGoInt(text: string): number | null {
  const match = /^([+-]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)$/.exec(text.trim());
  if (!match) return null;
  const digits = match[2]!;
  let value: number;
  if (/^0[xX]/.test(digits)) value = parseInt(digits.slice(2), 16);
  else if (/^0[oO]/.test(digits)) value = parseInt(digits.slice(2), 8);
  else if (/^0[bB]/.test(digits)) value = parseInt(digits.slice(2), 2);
  else if (digits.length > 1 && digits.startsWith('0')) value = parseInt(digits, 8);
  else value = parseInt(digits, 10);
  return match[1] === '-' ? -value : value;
}

function readFile(pipeline: PipelineConfig, workDir: string): string {
  const value = pipeline.config.file;
  if (value === undefined || value === null || value === '') return path.resolve(workDir, DEFAULT_FILE);
  if (typeof value !== 'string') fail(pipeline, 'file', `expected a file name, got ${JSON.stringify(value)}`);
  return path.resolve(workDir, value);
}

function readPrefetch(pipeline: PipelineConfig): number {
  const value = pipeline.config.prefetch;
  if (value === undefined || value === null || value === '') return DEFAULT_PREFETCH;
  const number = typeof value === 'number' ? value : typeof value === 'string' && /^\s*[+-]?\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(number) || number < 0) fail(pipeline, 'prefetch', `expected a whole number of jobs (0 or more), got ${JSON.stringify(value)}`);
  // RoadRunner's InitDefaults turns 0 into the default
  return number === 0 ? DEFAULT_PREFETCH : number;
}

function readPermissions(pipeline: PipelineConfig): { mode: number; warning?: string } {
  const value = pipeline.config.permissions;
  if (value === undefined || value === null || value === '' || value === 0) return { mode: DEFAULT_PERMISSIONS };
  if (pipeline.declared) {
    // RoadRunner: strconv.ParseInt(value, 8, 32), and on error a warning and 0755 (the PHP SDK sends "493")
    const mode = typeof value === 'string' ? parseOctal(value.trim()) : null;
    if (mode === null || mode < 0 || mode > MAX_MODE) {
      return { mode: DEFAULT_PERMISSIONS, warning: `failed to parse permissions, fallback to default 0755 (provided: ${String(value)})` };
    }
    // a mode of 0 would make the file unreadable after the first start; the file config's default applies
    return { mode: mode === 0 ? DEFAULT_PERMISSIONS : mode };
  }
  const mode = typeof value === 'number' ? modeFromNumber(value) : typeof value === 'string' ? parseGoInt(value) : null;
  if (mode === null || mode < 0 || mode > MAX_MODE) {
    fail(pipeline, 'permissions', `expected a file mode such as 0755 or '0644', got ${JSON.stringify(value)}`);
  }
  return { mode };
}

/** Reads the pipeline's keys; a bad value throws a ConfigError naming the pipeline and the key. */
export function readBoltdbOptions(pipeline: PipelineConfig, workDir: string): BoltdbOptions {
  const file = readFile(pipeline, workDir);
  const prefetch = readPrefetch(pipeline);
  const permissions = readPermissions(pipeline);
  return { file, prefetch, permissions: permissions.mode, ...(permissions.warning ? { permissionsWarning: permissions.warning } : {}) };
}
