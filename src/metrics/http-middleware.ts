// RoadRunner's `http_metrics` middleware (docs/compatibility.md §1.9, §5): request counts, durations and the number of requests
// inside the handler, for the HTTP plugin to report into the metrics plugin's registry.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** RoadRunner's buckets for rr_http_request_duration_seconds. */
export const HTTP_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60];

export class HttpMetrics {
  private readonly queue: Gauge;
  private readonly requests: Counter<'status'>;
  private readonly duration: Histogram<'status'>;
  private readonly noFree: Counter;
  private readonly uptime: Counter;
  private uptimeTimer: NodeJS.Timeout | null;

  constructor(registry: Registry) {
    const registers = [registry];
    this.queue = new Gauge({ name: 'rr_http_requests_queue', help: 'Total number of queued requests.', registers });
    this.noFree = new Counter({ name: 'rr_http_no_free_workers_total', help: 'Total number of NoFreeWorkers occurrences.', registers });
    this.requests = new Counter({
      name: 'rr_http_request_total',
      help: 'Total number of handled http requests after server restart.',
      labelNames: ['status'],
      registers,
    });
    this.duration = new Histogram({
      name: 'rr_http_request_duration_seconds',
      help: 'HTTP request duration.',
      labelNames: ['status'],
      buckets: HTTP_DURATION_BUCKETS,
      registers,
    });
    this.uptime = new Counter({ name: 'rr_http_uptime_seconds', help: 'Uptime in seconds', registers });
    this.uptimeTimer = setInterval(() => this.uptime.inc(), 1000);
    this.uptimeTimer.unref();
  }

  /**
   * A request entered the handler; call the returned function once with the status written. Calls after the first
   * are ignored, so an error path that reports twice cannot unbalance the queue gauge.
   */
  begin(): (status: number) => void {
    this.queue.inc();
    const started = process.hrtime.bigint();
    let ended = false;
    return (status: number) => {
      if (ended) return;
      ended = true;
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const labels = { status: String(status) };
      this.requests.inc(labels);
      this.duration.observe(labels, seconds);
      this.queue.dec();
    };
  }

  /** The pool had no free worker for a request (RoadRunner counts its `No-Workers` header). */
  noFreeWorkers(): void {
    this.noFree.inc();
  }

  /** Stop the uptime clock. The metrics stay in the registry with their last values. */
  stop(): void {
    if (this.uptimeTimer) clearInterval(this.uptimeTimer);
    this.uptimeTimer = null;
  }

  /** Whether the uptime clock still runs (for tests of stop()). */
  get running(): boolean {
    return this.uptimeTimer !== null;
  }
}
