// Loggers built from the `logs` config section (docs/compatibility.md §1.10): one pino logger per channel (plugin name), in
// RoadRunner's modes (development console lines, production JSON, raw messages, off), written synchronously.
import { closeSync, openSync, writeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { ConfigError } from '../errors.js';
import type { LogChannelConfig, LogLevel, LogsConfig } from '../config/types.js';
import { formatConsoleLine, type ConsoleRecord } from './pretty.js';

export type Logger = import('pino').Logger;

export interface LogRoot {
  /** The logger for a plugin (`http`, `server`, `rpc`, …), configured by `logs.channels.<name>` when present. */
  channel(name: string): Logger;
  /** Records are written synchronously; this only pushes out what a caller-supplied stream may buffer. */
  flush(): void;
  /** Close the log files this root opened. Loggers keep working but drop what they would write to a closed file. */
  close(): void;
}

export interface CreateLogsOptions {
  /** Where `stderr` in `output` goes; default process.stderr. */
  stderr?: NodeJS.WritableStream;
  /** Where `stdout` in `output` goes; default process.stdout. */
  stdout?: NodeJS.WritableStream;
  /** Force coloured levels on or off; default: on for TTYs unless NO_COLOR is set. Files are never coloured. */
  color?: boolean;
}

type Format = 'console' | 'json' | 'raw' | 'off';

/** One place records go to: a stream (stderr/stdout) or an append-only file. */
interface Sink {
  readonly color: boolean;
  write(text: string): void;
  flush(): void;
  close(): void;
}

const PINO_LEVEL: Readonly<Record<LogLevel, pino.Level>> = {
  debug: 'debug',
  info: 'info',
  warn: 'warn',
  error: 'error',
  dpanic: 'fatal',
  panic: 'fatal',
  fatal: 'fatal',
};

function wantsColor(stream: NodeJS.WritableStream, forced: boolean | undefined): boolean {
  if (forced !== undefined) return forced;
  const noColor = process.env['NO_COLOR'];
  return (stream as { isTTY?: boolean }).isTTY === true && (noColor === undefined || noColor === '');
}

function streamSink(stream: NodeJS.WritableStream, color: boolean): Sink {
  // A closed pipe (whatever read our stderr went away: EPIPE) must not become an uncaught error that is logged to the
  // same stream again, in a loop: records for a broken stream are dropped, and serving goes on.
  let broken = false;
  stream.on('error', () => {
    broken = true;
  });
  return {
    color,
    write: (text) => {
      if (!broken) stream.write(text);
    },
    flush: () => (stream as { flushSync?: () => void }).flushSync?.(),
    close: () => {},
  };
}

function fileSink(file: string, key: string): Sink {
  let fd: number | null;
  try {
    fd = openSync(file, 'a');
  } catch (err) {
    throw new ConfigError(`cannot open log file '${file}': ${(err as Error).message}`, { key });
  }
  return {
    color: false,
    write(text) {
      if (fd === null) return;
      const bytes = Buffer.from(text);
      for (let at = 0; at < bytes.length;) at += writeSync(fd, bytes, at);
    },
    flush() {},
    close() {
      if (fd !== null) closeSync(fd);
      fd = null;
    },
  };
}

function formatOf(cfg: LogChannelConfig): Format {
  const mode = String(cfg.mode ?? 'development').toLowerCase();
  if (mode === 'off' || mode === 'none') return 'off';
  if (mode === 'raw') return 'raw';
  if (cfg.encoding === 'json' || cfg.encoding === 'console') return cfg.encoding;
  return mode === 'production' ? 'json' : 'console';
}

function levelOf(cfg: LogChannelConfig): pino.Level {
  const configured = PINO_LEVEL[String(cfg.level ?? '').toLowerCase() as LogLevel];
  if (configured) return configured;
  // An unknown level keeps the mode's own: info for production and raw, debug for development (and unknown modes).
  const mode = String(cfg.mode ?? 'development').toLowerCase();
  return mode === 'production' || mode === 'raw' ? 'info' : 'debug';
}

/** A channel's settings: its own entry where it has one, the root's otherwise. */
function channelConfig(config: LogsConfig, name: string): LogChannelConfig {
  const own = config.channels?.[name];
  if (!own) return config;
  return {
    mode: own.mode ?? config.mode,
    level: own.level ?? config.level,
    encoding: own.encoding ?? config.encoding,
    lineEnding: own.lineEnding ?? config.lineEnding,
    output: own.output ?? config.output,
    errOutput: own.errOutput ?? config.errOutput,
  };
}

/** The pino destination for one channel: turns pino's JSON line into the channel's format and writes it to every sink. */
function destination(format: Exclude<Format, 'off'>, sinks: readonly Sink[], lineEnding: string): pino.DestinationStream {
  if (format === 'json') {
    return {
      write(line: string) {
        const text = lineEnding === '\n' ? line : line.slice(0, -1) + lineEnding;
        for (const sink of sinks) sink.write(text);
      },
    };
  }
  if (format === 'raw') {
    return {
      write(line: string) {
        const text = String((JSON.parse(line) as { msg?: unknown }).msg ?? '') + lineEnding;
        for (const sink of sinks) sink.write(text);
      },
    };
  }
  return {
    write(line: string) {
      const record = JSON.parse(line) as ConsoleRecord;
      let plain: string | undefined;
      let colored: string | undefined;
      for (const sink of sinks) {
        if (sink.color) sink.write((colored ??= formatConsoleLine(record, true) + lineEnding));
        else sink.write((plain ??= formatConsoleLine(record, false) + lineEnding));
      }
    },
  };
}

/** Epoch nanoseconds, as RoadRunner's production encoder writes `ts` (an integer too big for a double, so text). */
function epochNanos(): string {
  return `,"ts":${Date.now()}000000`;
}

export function createLogs(config: LogsConfig, opts: CreateLogsOptions = {}): LogRoot {
  const sinks = new Map<string, Sink>();
  const loggers = new Map<string, Logger>();

  function sinkFor(output: string, key: string): Sink {
    const id = output === 'stderr' || output === 'stdout' ? output : `file:${output}`;
    let sink = sinks.get(id);
    if (!sink) {
      if (output === 'stderr' || output === 'stdout') {
        const stream = (output === 'stderr' ? opts.stderr : opts.stdout) ?? process[output];
        sink = streamSink(stream, wantsColor(stream, opts.color));
      } else {
        sink = fileSink(output.startsWith('file://') ? fileURLToPath(output) : output, key);
      }
      sinks.set(id, sink);
    }
    return sink;
  }

  /** Open (once) the sinks a channel writes to; run for every configured channel up front so bad paths fail early. */
  function targetsOf(cfg: LogChannelConfig, format: Exclude<Format, 'off'>, key: string): Sink[] {
    const outputs = cfg.output && cfg.output.length > 0 ? cfg.output : [format === 'raw' ? 'stdout' : 'stderr'];
    return [...new Set(outputs)].map((o) => sinkFor(o, key));
  }

  function build(name: string): Logger {
    const cfg = channelConfig(config, name);
    const format = formatOf(cfg);
    if (format === 'off') return pino({ level: 'silent', base: null }, { write() {} });
    const targets = targetsOf(cfg, format, config.channels?.[name] ? `logs.channels.${name}.output` : 'logs.output');
    const options: pino.LoggerOptions = { level: levelOf(cfg), base: { logger: name } };
    if (format === 'json') {
      options.timestamp = epochNanos;
      options.formatters = { level: (label) => ({ level: label }) };
    } else if (format === 'console') {
      options.timestamp = pino.stdTimeFunctions.epochTime;
    } else {
      options.timestamp = false;
    }
    return pino(options, destination(format, targets, cfg.lineEnding || '\n'));
  }

  const configured: [string, LogChannelConfig][] = [
    ['logs.output', config],
    ...Object.keys(config.channels ?? {}).map((name): [string, LogChannelConfig] => [`logs.channels.${name}.output`, channelConfig(config, name)]),
  ];
  try {
    for (const [key, cfg] of configured) {
      const format = formatOf(cfg);
      if (format !== 'off') targetsOf(cfg, format, key);
    }
  } catch (err) {
    for (const sink of sinks.values()) sink.close();
    throw err;
  }

  return {
    channel(name) {
      let logger = loggers.get(name);
      if (!logger) {
        logger = build(name);
        loggers.set(name, logger);
      }
      return logger;
    },
    flush() {
      for (const sink of sinks.values()) sink.flush();
    },
    close() {
      for (const sink of sinks.values()) sink.close();
    },
  };
}

/** Log every line a child writes on `stream` under its pid, whole however the reads cut it (WorkerOutputLines). */
export function logOutputLines(stream: NodeJS.ReadableStream, logger: Logger, pid: number): WorkerOutputLines {
  const lines = new WorkerOutputLines(logger, pid);
  stream.on('data', (chunk: Buffer) => lines.push(chunk));
  stream.once('end', () => lines.end());
  return lines;
}

/** The last lines of a worker's output kept while it starts (for the one error that reports a failed start). */
export const START_OUTPUT_LINES = 20;

/** The longest line of a worker's output logged as one record: a longer one is cut into records of this size. */
export const MAX_OUTPUT_LINE_BYTES = 1024 * 1024;

/**
 * One worker's output stream logged line by line (an info record per non-empty line, with its pid), the bytes of
 * an unfinished line held until it ends (or the stream does): a line that arrives in several chunks (a 64 KiB line
 * read from a socket) is one record, and a UTF-8 character split between chunks stays whole.
 */
export class WorkerOutputLines {
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** holdUntilReady(): whole lines kept instead of logged (the last START_OUTPUT_LINES), until release() or take(). */
  private kept: string[] | null = null;

  constructor(
    private readonly logger: Logger,
    private readonly pid: number,
    private readonly maxLineBytes = MAX_OUTPUT_LINE_BYTES,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (let end = chunk.indexOf(0x0a); end !== -1; end = chunk.indexOf(0x0a, start)) {
      this.emit(chunk.subarray(start, end));
      start = end + 1;
    }
    if (start < chunk.length) {
      this.held.push(chunk.subarray(start));
      this.heldBytes += chunk.length - start;
      // a line without an end holds no more than this: what it has so far is logged
      if (this.heldBytes >= this.maxLineBytes) this.emit(Buffer.alloc(0));
    }
  }

  /** The stream ended: a last line without a newline is logged too. */
  end(): void {
    if (this.heldBytes > 0) this.emit(Buffer.alloc(0));
  }

  /**
   * Keep the lines instead of logging them while the worker starts: a start that fails is then reported once, at
   * error level, with its last lines (take()); a start that succeeds logs them as usual (release()).
   */
  holdUntilReady(): void {
    this.kept ??= [];
  }

  /** The worker is ready: the lines kept so far are logged, and later ones as they come. */
  release(): void {
    const kept = this.kept ?? [];
    this.kept = null;
    for (const text of kept) this.logger.info({ pid: this.pid }, text);
  }

  /** The start failed: the lines kept so far, for its error (not logged); later ones are logged as they come. */
  take(): string[] {
    if (this.heldBytes > 0 && this.kept) this.emit(Buffer.alloc(0)); // a last line without its newline
    const kept = this.kept ?? [];
    this.kept = null;
    return kept;
  }

  /** The lines kept so far, without ending the hold (for a message about a start still under way). */
  get keptLines(): readonly string[] {
    return this.kept ?? [];
  }

  private emit(tail: Buffer): void {
    const line = this.heldBytes === 0 ? tail : Buffer.concat([...this.held, tail]);
    this.held = [];
    this.heldBytes = 0;
    for (let at = 0; at < line.length; at += this.maxLineBytes) {
      let text = line.subarray(at, at + this.maxLineBytes).toString('utf8');
      if (at + this.maxLineBytes >= line.length && text.endsWith('\r')) text = text.slice(0, -1);
      if (text.length === 0) continue;
      if (this.kept) {
        this.kept.push(text);
        if (this.kept.length > START_OUTPUT_LINES) this.kept.shift();
      } else this.logger.info({ pid: this.pid }, text);
    }
  }
}
