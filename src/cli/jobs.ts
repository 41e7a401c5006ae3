// `rrts jobs --list | --pause p1,p2 | --resume p1,p2 | --destroy p1,p2`: rr jobs over RPC (docs/jobs.md §3.4):
// exactly one mode, names as one comma-separated argument, a PIPELINE(S) table of the names (the server's list,
// the names paused or resumed, the names destroyed), -s keeps only --list's table; an RPC error exits 1.
import type { GlobalOptions } from './options.js';
import { die } from './options.js';
import { connectFromConfig } from './rpc-client.js';
import { renderTable } from './workers.js';

export interface JobsOptions {
  list?: boolean;
  pause?: string | true;
  resume?: string | true;
  destroy?: string | true;
}

const MODES = ['pause', 'resume', 'destroy'] as const;

export async function jobsCommand(opts: JobsOptions, globals: GlobalOptions): Promise<void> {
  const modes = [...MODES.filter((m) => opts[m] !== undefined), ...(opts.list ? (['list'] as const) : [])];
  if (modes.length !== 1) die('command should be in form of: `rrts jobs --<destroy/resume/pause> pipe1,pipe2` or `rrts jobs --list`');
  const mode = modes[0]!;
  const names = mode === 'list' ? [] : namesOf(opts[mode], mode);
  const client = await connectFromConfig(globals);
  try {
    let shown: string[];
    if (mode === 'list') {
      shown = (await client.call<{ pipelines?: string[] } | undefined>('jobs.List', {}))?.pipelines ?? [];
    } else if (mode === 'destroy') {
      shown = (await client.call<{ pipelines?: string[] } | undefined>('jobs.Destroy', { pipelines: names }))?.pipelines ?? [];
    } else {
      await client.call(mode === 'pause' ? 'jobs.Pause' : 'jobs.Resume', { pipelines: names });
      shown = names;
    }
    if (mode === 'list' || !globals.silent) {
      process.stdout.write(
        `${renderTable(
          ['PIPELINE(S)'],
          shown.map((name) => [{ text: name }]),
        )}\n`,
      );
    }
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exitCode = 1;
  } finally {
    client.close();
  }
}

function namesOf(value: string | true | undefined, mode: string): string[] {
  const names =
    typeof value === 'string'
      ? value
          .split(',')
          .map((n) => n.trim())
          .filter((n) => n !== '')
      : [];
  if (names.length === 0) die(`incorrect command usage, should be: rrts jobs --${mode} pipe1,pipe2`);
  return names;
}
