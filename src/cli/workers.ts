// `rrts workers [plugin...] [-i] [--json]`: the workers of each pool as `rr workers` shows them (docs/compatibility.md §2.3):
// `Workers of [http]:` and a PID | STATUS | EXECS | MEMORY | CPU% | CREATED table, plus USS and the fork master's
// pid for fork pools (from the `uss` and `masterPid` fields rrts adds to RoadRunner's State), and an EXTRA column
// while pool.dynamic_allocator runs workers beyond num_workers (`dynamic`). `--json` prints `{"http": [State…]}` for
// scripts; `-i` redraws every second until SIGINT/SIGTERM.
import type { WorkerState } from '../rpc/services.js';
import type { GlobalOptions } from './options.js';
import { connectFromConfig, type RpcClient } from './rpc-client.js';

export interface WorkersOptions {
  interactive?: boolean;
  json?: boolean;
}

const MAX_WIDTH = 80;
const STATUS_COLOR: Readonly<Record<string, string>> = {
  ready: '36', // cyan
  working: '32', // green
  inactive: '33', // yellow
  invalid: '33',
  stopped: '31', // red
  errored: '31',
};

export async function workersCommand(plugins: string[], opts: WorkersOptions, globals: GlobalOptions): Promise<void> {
  const client = await connectFromConfig(globals);
  const color = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
  const render = async (): Promise<Collected & { text: string }> => {
    const { states, errors } = await collect(client, plugins).catch(fatal);
    if (opts.json) return { states, errors, text: `${JSON.stringify(Object.fromEntries(states), null, 2)}\n` };
    const now = Date.now();
    return { states, errors, text: [...states].map(([name, list]) => renderPlugin(name, list, now, color)).join('\n') };
  };

  if (!opts.interactive) {
    const { text, errors } = await render();
    process.stdout.write(text);
    for (const e of errors) process.stderr.write(`${e}\n`);
    client.close();
    if (errors.length > 0) process.exitCode = 1;
    return;
  }

  // -i: redraw in place every second (on a terminal: cursor home, each line cleared, the rest of the screen cleared).
  const tty = Boolean(process.stdout.isTTY);
  let timer: NodeJS.Timeout | null = null;
  const quit = (): void => {
    if (timer) clearTimeout(timer);
    client.close();
    process.exit(0);
  };
  process.once('SIGINT', quit);
  process.once('SIGTERM', quit);
  if (tty && !opts.json) process.stdout.write('\x1b[2J');
  const draw = async (): Promise<void> => {
    const { states, text, errors } = await render();
    if (opts.json) {
      // Scripts get one compact JSON document per line (NDJSON) instead of a redrawn screen.
      process.stdout.write(`${JSON.stringify(Object.fromEntries(states))}\n`);
      for (const e of errors) process.stderr.write(`${e}\n`);
    } else {
      const frame = `rrts workers, every 1s, ${new Date().toLocaleTimeString()} (Ctrl+C to quit)\n\n${text}${errors.map((e) => `${e}\n`).join('')}`;
      process.stdout.write(tty ? `\x1b[H${frame.replace(/\n/g, '\x1b[K\n')}\x1b[J` : `${frame}\n`);
    }
    timer = setTimeout(() => void draw(), 1000);
  };
  await draw();
}

interface Collected {
  states: Map<string, WorkerState[]>;
  errors: string[];
}

/** informer.List when no plugin is named (else a check that the named ones exist), then informer.Workers for each. */
async function collect(client: RpcClient, plugins: string[]): Promise<Collected> {
  const known = await client.call<string[] | null>('informer.List', true);
  const names = plugins.length > 0 ? plugins : [...(known ?? [])].sort();
  const errors: string[] = [];
  const states = new Map<string, WorkerState[]>();
  for (const name of names) {
    if (!known?.includes(name)) {
      errors.push(`unknown plugin: ${name} (plugins with workers: ${known?.join(', ') || 'none'})`);
      continue;
    }
    try {
      const list = await client.call<{ workers: WorkerState[] | null }>('informer.Workers', name);
      states.set(
        name,
        [...(list?.workers ?? [])].sort((a, b) => a.pid - b.pid),
      );
    } catch (err) {
      errors.push(`failed to receive information about ${name} plugin: ${(err as Error).message}`);
    }
  }
  return { states, errors };
}

function fatal(err: Error): never {
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
}

/** `Workers of [name]:`, the fork master line, and the table; rows sorted by pid. */
export function renderPlugin(name: string, states: WorkerState[], nowMs: number, color: boolean): string {
  const title = color ? `\x1b[93m${name}\x1b[0m` : name;
  const lines = [`Workers of [${title}]:`];
  const fork = states.some((s) => s.masterPid !== undefined);
  if (fork) lines.push(`master: ${states.find((s) => s.masterPid !== undefined)!.masterPid}`);
  if (states.length === 0) return `${lines.join('\n')}\nno workers running\n`;
  const headers = ['PID', 'STATUS', 'EXECS', 'MEMORY', 'CPU%', 'CREATED'];
  if (fork) headers.push('USS');
  // RoadRunner does not tell its dynamically allocated workers apart; the column shows only while there are some
  const dynamic = states.some((s) => s.dynamic === true);
  if (dynamic) headers.push('EXTRA');
  const rows = [...states]
    .sort((a, b) => a.pid - b.pid)
    .map((s): Cell[] => {
      const code = color ? STATUS_COLOR[s.statusStr] : undefined;
      const row: Cell[] = [
        { text: String(s.pid) },
        { text: s.statusStr, color: code },
        { text: comma(s.numExecs) },
        { text: humanBytes(s.memoryUsage) },
        { text: s.CPUPercent.toFixed(2) },
        { text: relativeTime(s.created / 1e6, nowMs) },
      ];
      if (fork) row.push({ text: s.uss > 0 ? humanBytes(s.uss) : '-' });
      if (dynamic) row.push({ text: s.dynamic === true ? 'yes' : '' });
      return row;
    });
  lines.push(renderTable(headers, rows));
  return `${lines.join('\n')}\n`;
}

export interface Cell {
  text: string;
  /** ANSI SGR code, e.g. '36' */
  color?: string | undefined;
}

/**
 * A box-drawing table like rr ≥ 2025.1.2 (tablewriter v1): headers centred, cells left-aligned. When it would be
 * wider than maxWidth, the one-space cell padding goes.
 */
export function renderTable(headers: string[], rows: Cell[][], maxWidth = MAX_WIDTH): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.text.length ?? 0)));
  const content = widths.reduce((a, b) => a + b, 0);
  const pad = content + 3 * widths.length + 1 <= maxWidth ? 1 : 0;
  const space = ' '.repeat(pad);
  const rule = (l: string, m: string, r: string): string => l + widths.map((w) => '─'.repeat(w + 2 * pad)).join(m) + r;
  const line = (cells: string[]): string => `│${cells.map((c) => space + c + space).join('│')}│`;
  const centre = (text: string, w: number): string => {
    const left = Math.floor((w - text.length) / 2);
    return ' '.repeat(left) + text + ' '.repeat(w - text.length - left);
  };
  const out = [rule('┌', '┬', '┐'), line(headers.map((h, i) => centre(h, widths[i]!))), rule('├', '┼', '┤')];
  for (const row of rows) {
    out.push(
      line(
        widths.map((w, i) => {
          const cell = row[i] ?? { text: '' };
          const padded = cell.text + ' '.repeat(w - cell.text.length);
          return cell.color ? `\x1b[${cell.color}m${cell.text}\x1b[0m${padded.slice(cell.text.length)}` : padded;
        }),
      ),
    );
  }
  out.push(rule('└', '┴', '┘'));
  return out.join('\n');
}

/** go-humanize's Bytes: SI units, one decimal under 10 (`45 MB`, `1.5 kB`, `7 B`). */
export function humanBytes(n: number): string {
  if (n < 10) return `${Math.max(0, Math.round(n))} B`;
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB'];
  const e = Math.min(units.length - 1, Math.floor(Math.log(n) / Math.log(1000)));
  const value = Math.floor((n / 1000 ** e) * 10 + 0.5) / 10;
  return `${value < 10 ? value.toFixed(1) : value.toFixed(0)} ${units[e]}`;
}

/** go-humanize's Comma: `1,234,567`. */
export function comma(n: number): string {
  const sign = n < 0 ? '-' : '';
  return sign + String(Math.trunc(Math.abs(n))).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const WEEK = 7 * DAY;
const MONTH = 30 * DAY;
const YEAR = 12 * MONTH;
/** go-humanize's default magnitudes: [upper bound, format, divisor]. */
const MAGNITUDES: ReadonlyArray<readonly [number, string, number]> = [
  [SECOND, 'now', 1],
  [2 * SECOND, '1 second %s', 1],
  [MINUTE, '%d seconds %s', SECOND],
  [2 * MINUTE, '1 minute %s', 1],
  [HOUR, '%d minutes %s', MINUTE],
  [2 * HOUR, '1 hour %s', 1],
  [DAY, '%d hours %s', HOUR],
  [2 * DAY, '1 day %s', 1],
  [WEEK, '%d days %s', DAY],
  [2 * WEEK, '1 week %s', 1],
  [MONTH, '%d weeks %s', WEEK],
  [2 * MONTH, '1 month %s', 1],
  [YEAR, '%d months %s', MONTH],
  [18 * MONTH, '1 year %s', 1],
  [2 * YEAR, '2 years %s', 1],
  [37 * YEAR, '%d years %s', YEAR],
  [Infinity, 'a long while %s', 1],
];

/** go-humanize's Time: `now`, `12 minutes ago`, `1 day ago`, `3 seconds from now`. */
export function relativeTime(thenMs: number, nowMs: number): string {
  let diff = nowMs - thenMs;
  let label = 'ago';
  if (diff < 0) {
    diff = -diff;
    label = 'from now';
  }
  const [, format, divisor] = MAGNITUDES.find(([bound]) => diff < bound)!;
  return format.replace('%d', String(Math.floor(diff / divisor))).replace('%s', label);
}
