// A separate process for the boltdb tests: `hold DIR` opens the pipeline and keeps its lock until killed;
// `churn DIR ROUND` pushes and acks jobs as fast as it can and prints a line for each push and ack that resolved
// (so the parent knows what was confirmed, and which acks were under way, when it sends SIGKILL); `fill DIR`
// pushes until a write fails (the parent sets a file size limit) and reports what the driver does then.
import { jobItem, openDriver, payloadFor } from './boltdb-helpers.js';

/** Sizes from a few bytes to 256 KiB, so a kill can land in the middle of a long write. */
function sizeFor(n: number): number {
  return [16, 200, 4096, 65_536, 262_144][n % 5]!;
}

async function hold(dir: string): Promise<void> {
  await openDriver(dir);
  process.stdout.write(`ready ${process.pid}\n`);
  setInterval(() => undefined, 60_000);
}

async function churn(dir: string, round: string): Promise<void> {
  const { driver, queue } = await openDriver(dir, { tuning: { compactMinBytes: 512 * 1024 } });
  await driver.run();
  process.stdout.write(`ready ${process.pid}\n`);
  let n = 0;
  const pusher = async (): Promise<void> => {
    for (;;) {
      const id = `r${round}-${n}-L${sizeFor(n)}`;
      n += 1;
      await driver.push(jobItem('disk', n, { id, payload: payloadFor(id), headers: { id: [id] } }));
      process.stdout.write(`pushed ${id}\n`);
    }
  };
  const acker = async (): Promise<void> => {
    for (;;) {
      const job = queue.take();
      if (!job) {
        await queue.waitFor(1, 1000);
        continue;
      }
      // ack two of three jobs; the third stays taken (in processing) until the kill
      if (Number(job.item.id.split('-')[1]) % 3 === 2) continue;
      process.stdout.write(`acking ${job.item.id}\n`);
      await job.ack();
      process.stdout.write(`acked ${job.item.id}\n`);
    }
  };
  await Promise.all([pusher(), pusher(), pusher(), pusher(), acker()]);
}

/** Pushes until the file size limit (ulimit -f, set by the parent) makes a write fail, then reports what follows. */
async function fill(dir: string): Promise<void> {
  // the kernel sends SIGXFSZ on a write past the limit: with a handler the write fails with EFBIG instead
  process.on('SIGXFSZ', () => undefined);
  const { driver } = await openDriver(dir);
  for (let n = 0; n < 100_000; n++) {
    const id = `fill-${n}-L${[100, 3000, 20_000][n % 3]!}`;
    try {
      await driver.push(jobItem('disk', n, { id, payload: payloadFor(id), headers: { id: [id] } }));
    } catch (error) {
      process.stdout.write(`failed ${(error as Error).message}\n`);
      break;
    }
    process.stdout.write(`pushed ${id}\n`);
  }
  const after = await driver.push(jobItem('disk', -1, { id: 'after-L1', payload: payloadFor('after-L1') })).then(
    () => 'accepted',
    (error: Error) => error.message,
  );
  process.stdout.write(`after ${after}\n`);
  process.stdout.write(`state ${(await driver.state()).errorMessage ?? ''}\n`);
  await driver.stop();
  process.stdout.write('stopped\n');
}

const [mode, dir, round] = process.argv.slice(2);
if (mode === 'hold' && dir) await hold(dir);
else if (mode === 'churn' && dir && round) await churn(dir, round);
else if (mode === 'fill' && dir) await fill(dir);
else {
  process.stderr.write('usage: boltdb-child.js hold DIR | churn DIR ROUND | fill DIR\n');
  process.exit(2);
}
