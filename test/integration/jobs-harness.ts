// The jobs integration tests' parts: `rrts serve` with a jobs section and the project's PHP consumer
// (test/fixtures/php/jobs-consumer.php), the PHP producer speaking protobuf RPC (jobs-producer.php), and the
// consumer's delivery log.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { PipelineState } from '../../src/jobs/driver.js';
import { freePort, ROOT, startRrts, sleep, type Mode, type RrtsInstance } from './harness.js';

const run = promisify(execFile);
export const CONSUMER = path.join(ROOT, 'test', 'fixtures', 'php', 'jobs-consumer.php');
export const PRODUCER = path.join(ROOT, 'test', 'fixtures', 'php', 'jobs-producer.php');

export interface Delivery {
  event: 'start' | 'done';
  pid: number;
  id: string;
  job?: string;
  pipeline?: string;
  headers?: Record<string, string[]>;
  act: string;
  flags?: number;
  mode?: string;
}

export class JobsServer {
  constructor(
    readonly rrts: RrtsInstance,
    readonly rpc: string,
    /** where the consumer logs deliveries and keeps its "-once" markers */
    readonly dir: string,
  ) {}

  /** jobs-producer.php <command> [args]: the parsed JSON result, or the RPC error text as `{ error }`. */
  async produce(...args: string[]): Promise<unknown> {
    try {
      const { stdout } = await run('php', [PRODUCER, this.rpc, ...args], { timeout: 60_000 });
      return JSON.parse(stdout) as unknown;
    } catch (err) {
      const stdout = (err as { stdout?: string }).stdout ?? '';
      if (stdout.startsWith('ERROR: ')) return { error: stdout.slice('ERROR: '.length).trimEnd() };
      throw err;
    }
  }

  /** jobs.Stat's row of one pipeline, or undefined when it has none. */
  async stat(pipeline: string): Promise<PipelineState | undefined> {
    return ((await this.produce('stat')) as PipelineState[]).find((r) => r.pipeline === pipeline);
  }

  /**
   * The pipeline's row once it holds no job, ready, reserved or delayed (a worker logs "done" just before rrts reads
   * its ack), or the last row seen after 10 s.
   */
  async untilIdle(pipeline: string): Promise<PipelineState> {
    let row = await this.stat(pipeline);
    for (let i = 0; i < 200 && (!row || row.active + row.reserved + row.delayed > 0); i++) {
      await sleep(50);
      row = await this.stat(pipeline);
    }
    if (!row) throw new Error(`jobs.Stat has no pipeline ${pipeline}`);
    return row;
  }

  deliveries(): Delivery[] {
    const file = path.join(this.dir, 'deliveries.log');
    if (!fs.existsSync(file)) return [];
    const text = fs.readFileSync(file, 'utf8');
    // Up to the last newline: a worker may be writing its next line while the file is read (its lock is PHP's own).
    return text
      .slice(0, text.lastIndexOf('\n') + 1)
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as Delivery);
  }

  done(): Delivery[] {
    return this.deliveries().filter((d) => d.event === 'done');
  }

  started(): Delivery[] {
    return this.deliveries().filter((d) => d.event === 'start');
  }

  async waitForDone(n: number, timeoutMs = 30_000): Promise<Delivery[]> {
    await this.rrts.waitFor(() => this.done().length >= n, `${n} jobs done (have ${this.done().length})`, timeoutMs);
    return this.done();
  }

  async stop(): Promise<void> {
    await this.rrts.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** rrts with only rpc and jobs (no http), `workers` consumers, the given pipelines and consume list. */
export async function startJobs(mode: Mode, jobs: Record<string, unknown>, extra: Record<string, unknown> = {}, workers = 2): Promise<JobsServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-jobs-'));
  const rpc = `tcp://127.0.0.1:${await freePort()}`;
  try {
    const rrts = await startRrts({
      mode,
      config: {
        server: { command: `php ${CONSUMER}`, env: { JOBS_DIR: dir } },
        http: null,
        rpc: { listen: rpc },
        jobs: { pool: { num_workers: workers, allocate_timeout: '20s' }, ...jobs },
        ...extra,
      },
    });
    return new JobsServer(rrts, rpc, dir);
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** How many times each id appears. */
export function countIds(deliveries: Delivery[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const d of deliveries) counts.set(d.id, (counts.get(d.id) ?? 0) + 1);
  return counts;
}
