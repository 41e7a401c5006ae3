// The jobs plugin's rr_jobs_* metrics (docs/jobs.md §4.8) in the metrics plugin's registry: RoadRunner's names and
// types (the four counts are gauges there, read here from the plugin's counters at scrape time), push latency and
// push requests by pipeline ("job" label, as RoadRunner names it), driver and source (single or batch).
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { JobsCounters } from './plugin.js';

export type PushSource = 'single' | 'batch';

export class JobsMetrics {
  private readonly latency: Histogram<'job' | 'driver' | 'source'>;
  private readonly requests: Counter<'job' | 'driver' | 'source'>;

  constructor(registry: Registry, counters: Readonly<JobsCounters>) {
    const registers = [registry];
    const gauge = (name: string, help: string, read: () => number): void => {
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read());
        },
      });
    };
    gauge('rr_jobs_jobs_ok', 'Number of successfully processed jobs.', () => counters.jobsOk);
    gauge('rr_jobs_jobs_err', 'Number of jobs error while processing in the worker.', () => counters.jobsErr);
    gauge('rr_jobs_push_ok', 'Number of job push.', () => counters.pushOk);
    gauge('rr_jobs_push_err', 'Number of jobs push which was failed.', () => counters.pushErr);
    this.latency = new Histogram({
      name: 'rr_jobs_push_latency',
      help: 'Histogram represents latency for pushed operation.',
      labelNames: ['job', 'driver', 'source'],
      registers,
    });
    this.requests = new Counter({
      name: 'rr_jobs_requests_total',
      help: 'Total number of push requests.',
      labelNames: ['job', 'driver', 'source'],
      registers,
    });
  }

  /** A push to an existing pipeline: counted, and its duration observed whether the driver took it or not. */
  observePush(pipeline: string, driver: string, source: PushSource, seconds: number): void {
    const labels = { job: pipeline, driver, source };
    this.requests.inc(labels);
    this.latency.observe(labels, seconds);
  }
}
