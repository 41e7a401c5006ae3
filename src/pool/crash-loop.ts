// The crash-loop policy, one for a pool's workers and for fork mode's master (docs/pool.md, "Crash loops"): starts
// that keep failing are spaced out (100 ms doubling to 10 s), the loop is logged once when it begins and once when
// it ends, and the pool answers /ready with 503 while it lasts.
import type { Logger } from 'pino';

export const BACKOFF_START_MS = 100;
export const BACKOFF_MAX_MS = 10_000;
/** Failed starts in a row that make a crash loop: one or two are retried quietly (a port race, a slow disk). */
export const CRASH_LOOP_FAILURES = 3;
/** A worker that dies sooner than this after it became ready, having served nothing, counts as a failed start. */
export const EARLY_DEATH_MS = 2_000;

/** The wait before the next start after `failures` failed starts in a row: 0, then 100 ms doubling to 10 s. */
export function backOffDelay(failures: number): number {
  return failures <= 0 ? 0 : Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** (failures - 1));
}

/** Counts failed starts in a row for one thing that starts processes, and says so in the log without flooding it. */
export class CrashLoop {
  private failures = 0;
  private announced = false;

  /** `what` names it in the log: "http: workers", "http: the fork master". */
  constructor(
    private readonly what: string,
    private readonly log: Logger,
  ) {}

  /** Failed starts in a row. */
  get count(): number {
    return this.failures;
  }

  get looping(): boolean {
    return this.failures >= CRASH_LOOP_FAILURES;
  }

  /** How long to wait before the next start. */
  delay(): number {
    return backOffDelay(this.failures);
  }

  /**
   * A start failed. The first ones are warnings; the one that makes it a loop is an error, logged once; the attempts
   * after it go to the debug level (each with its reason) until the loop ends.
   */
  failed(message: string): void {
    this.failures++;
    const fields = { attempt: this.failures, next_attempt_ms: this.delay() };
    if (!this.looping) {
      this.log.warn(fields, `${message}; next attempt in ${fields.next_attempt_ms} ms`);
      return;
    }
    if (this.announced) {
      this.log.debug(fields, message);
      return;
    }
    this.announced = true;
    this.log.error(
      fields,
      `${this.what}: crash loop, ${this.failures} failed starts in a row (${message}); retrying with a back-off of up to ${BACKOFF_MAX_MS} ms, not ready meanwhile`,
    );
  }

  /** A start held (it stayed up EARLY_DEATH_MS or served a job): the loop, if any, is over. */
  succeeded(): void {
    if (this.announced) this.log.info({ failed_starts: this.failures }, `${this.what}: the crash loop is over after ${this.failures} failed starts`);
    this.failures = 0;
    this.announced = false;
  }
}
