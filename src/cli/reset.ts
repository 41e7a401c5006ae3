// `rrts reset [plugin...]`: reset the workers of the named plugins (all resettable ones by default) concurrently,
// like `rr reset` (docs/compatibility.md §2.4), but unlike rr an unknown plugin or a failed reset prints the error and exits 1.
// Progress lines go to stdout (rr logs them to stderr) and are suppressed by -s; errors go to stderr.
import type { GlobalOptions } from './options.js';
import { connectFromConfig } from './rpc-client.js';

/** A rolling reset waits for fresh workers to boot; give slow applications room. */
const RESET_TIMEOUT_MS = 10 * 60_000;
/** A reset still running after this says so, and again at each interval, so a slow one does not look hung. */
export const PROGRESS_INTERVAL_MS = 2_000;

export async function resetCommand(plugins: string[], globals: GlobalOptions): Promise<void> {
  const client = await connectFromConfig(globals);
  const say = (line: string): void => {
    if (!globals.silent) process.stdout.write(`${line}\n`);
  };
  let failed = false;
  try {
    const names = plugins.length > 0 ? plugins : ((await client.call<string[] | null>('resetter.List', true)) ?? []);
    await Promise.all(
      names.map(async (name) => {
        say(`resetting plugin: [${name}]`);
        const started = performance.now();
        const progress = setInterval(
          () =>
            say(
              `still resetting plugin: [${name}] after ${Math.round((performance.now() - started) / 1000)} s (fresh workers start, then the old ones finish their requests)`,
            ),
          PROGRESS_INTERVAL_MS,
        );
        try {
          await client.call('resetter.Reset', name, RESET_TIMEOUT_MS);
          say(`plugin reset: [${name}] in ${Math.round(performance.now() - started)} ms`);
        } catch (err) {
          failed = true;
          process.stderr.write(`plugin reset failed: [${name}]: ${(err as Error).message}\n`);
        } finally {
          clearInterval(progress);
        }
      }),
    );
  } catch (err) {
    failed = true;
    process.stderr.write(`${(err as Error).message}\n`);
  } finally {
    client.close();
  }
  if (failed) process.exitCode = 1;
}
