// `logs` (docs/compatibility.md §1.10): mode, level, encoding, outputs, and per-plugin channels that inherit the
// top-level keys they do not set. Bad modes and levels are ignored with a warning, as RoadRunner does.
import type { LogChannelConfig, LogLevel, LogMode, LogsConfig } from '../types.js';
import type { SectionReader } from '../reader.js';
import type { SectionContext } from './context.js';

const MODES: readonly LogMode[] = ['development', 'production', 'raw', 'off'];
const LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'dpanic', 'panic', 'fatal'];
const ENCODINGS = ['console', 'json'] as const;
/** The level each mode uses when `level` is not valid. */
const MODE_LEVEL: Readonly<Record<LogMode, LogLevel>> = { development: 'debug', production: 'info', raw: 'info', off: 'debug' };

export function readLogs(root: SectionReader, ctx: SectionContext): LogsConfig {
  const logs = root.sectionOrEmpty('logs');
  return { ...readChannel(logs, ctx), channels: readChannels(logs, ctx) };
}

function readChannels(logs: SectionReader, ctx: SectionContext): Record<string, LogChannelConfig> {
  const channels = logs.section('channels');
  const result: Record<string, LogChannelConfig> = {};
  for (const name of channels?.keys() ?? []) {
    const channel = channels!.sectionOrEmpty(name).inheriting(logs, ['channels']);
    result[name] = readChannel(channel, ctx);
  }
  return result;
}

function readChannel(section: SectionReader, ctx: SectionContext): LogChannelConfig {
  const mode = readMode(section, ctx);
  return {
    mode,
    level: readLevel(section, mode, ctx),
    encoding: readEncoding(section, mode),
    lineEnding: section.string('line_ending') || '\n',
    output: orStderr(section.list('output')),
    errOutput: orStderr(section.has('err_output') ? section.list('err_output') : section.list('erroroutput')),
  };
}

function readMode(section: SectionReader, ctx: SectionContext): LogMode {
  const written = section.string('mode').trim().toLowerCase();
  if (written === '') return 'development';
  if (written === 'none') return 'off';
  if ((MODES as readonly string[]).includes(written)) return written as LogMode;
  ctx.warnings.push(`${section.keyPath('mode')}: unknown log mode ${JSON.stringify(written)} ignored, using development`);
  return 'development';
}

function readLevel(section: SectionReader, mode: LogMode, ctx: SectionContext): LogLevel {
  const written = section.string('level').trim().toLowerCase();
  if (written === '') return 'debug';
  if ((LEVELS as readonly string[]).includes(written)) return written as LogLevel;
  ctx.warnings.push(`${section.keyPath('level')}: unknown log level ${JSON.stringify(written)} ignored, using ${MODE_LEVEL[mode]}`);
  return MODE_LEVEL[mode];
}

function readEncoding(section: SectionReader, mode: LogMode): 'console' | 'json' {
  const written = section.string('encoding').trim().toLowerCase();
  if (written === '') return mode === 'production' ? 'json' : 'console';
  if (written === 'console' || written === 'json') return written;
  return section.fail('encoding', `expected one of ${ENCODINGS.join(', ')}, got ${JSON.stringify(written)}`);
}

function orStderr(outputs: string[]): string[] {
  return outputs.length > 0 ? outputs : ['stderr'];
}
