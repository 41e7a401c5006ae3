// The `development` (console) line format, after RoadRunner's zap console encoder: time, level, logger name, message,
// other fields as compact JSON. Written by hand because it must match zap's columns, which pino-pretty does not
// produce. Pure string formatting over a parsed pino record; sinks and colour decisions live in index.ts.

/** Between the columns of a console line. */
export const COLUMN_SEPARATOR = '  ';

const LABELS: Readonly<Record<number, string>> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const LABEL_WIDTH = 5;

// zap's capital colour level encoder: debug magenta, info blue, warn yellow, error and worse red.
const LEVEL_COLORS: Readonly<Record<number, string>> = { 10: '\x1b[35m', 20: '\x1b[35m', 30: '\x1b[34m', 40: '\x1b[33m', 50: '\x1b[31m', 60: '\x1b[31m' };
const RESET = '\x1b[0m';

/** Keys pino writes itself; everything else in a record is a field the caller logged. */
const OWN_KEYS = new Set(['level', 'time', 'logger', 'msg']);

export interface ConsoleRecord {
  level: number;
  /** epoch milliseconds */
  time?: number;
  logger?: string;
  msg?: string;
  [field: string]: unknown;
}

function levelLabel(level: number): string {
  return LABELS[level] ?? `LEVEL${level}`;
}

/** One console line without its line ending, e.g. `2025-01-01T10:00:00.000Z  DEBUG  http  message  {"key":"value"}`. */
export function formatConsoleLine(record: ConsoleRecord, color: boolean): string {
  const label = levelLabel(record.level);
  const pad = ' '.repeat(Math.max(0, LABEL_WIDTH - label.length));
  const level = color ? `${LEVEL_COLORS[record.level] ?? ''}${label}${RESET}${pad}` : label + pad;
  const columns: string[] = [];
  if (record.time !== undefined) columns.push(new Date(record.time).toISOString());
  columns.push(level);
  if (record.logger !== undefined) columns.push(record.logger);
  columns.push(record.msg ?? '');
  let fields: Record<string, unknown> | null = null;
  for (const key of Object.keys(record)) {
    if (OWN_KEYS.has(key)) continue;
    (fields ??= {})[key] = record[key];
  }
  if (fields) columns.push(JSON.stringify(fields));
  return columns.join(COLUMN_SEPARATOR);
}
