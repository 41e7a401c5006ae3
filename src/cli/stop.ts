// `rrts stop [-f]`: read .pid from the working directory and send SIGTERM (twice with -f), like `rr stop`. Only the
// pid file is needed: the config may have changed, or be gone, since the server started.
import fs from 'node:fs';
import path from 'node:path';
import { die, workDirOf, type GlobalOptions } from './options.js';
import { delay } from '../time.js';

export async function stopCommand(opts: GlobalOptions): Promise<void> {
  const file = path.join(workDirOf(opts), '.pid');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8').trim();
  } catch {
    die(`stop: no pid file at ${file}; start the server with 'rrts serve -p'`);
  }
  const pid = Number(text);
  if (!Number.isInteger(pid) || pid <= 0) die(`stop: ${file} does not hold a pid: '${text}'`);
  process.stderr.write(`stopping process with PID: ${pid}\n`);
  try {
    process.kill(pid, 'SIGTERM');
    if (opts.force) {
      await delay(1000);
      process.kill(pid, 'SIGTERM');
    }
  } catch (err) {
    die(`stop: cannot signal ${pid}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
