// Named error classes with stable codes, so callers (and users) can match on `code` instead of message text.

export class RrtsError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A problem in the configuration: names the file, the key path, the bad value and what was expected. */
export class ConfigError extends RrtsError {
  readonly file: string | undefined;
  readonly key: string | undefined;
  readonly line: number | undefined;
  constructor(message: string, where: { file?: string; key?: string; line?: number } = {}) {
    const place = [where.file ? (where.line ? `${where.file}:${where.line}` : where.file) : undefined, where.key ? `key '${where.key}'` : undefined]
      .filter(Boolean)
      .join(', ');
    super('ERR_CONFIG', place ? `${place}: ${message}` : message);
    this.file = where.file;
    this.key = where.key;
    this.line = where.line;
  }
}

/** Bytes that do not follow the goridge protocol (bad CRC, bad header length, absurd length, garbage). */
export class ProtocolError extends RrtsError {
  constructor(message: string) {
    super('ERR_PROTOCOL', message);
  }
}

/** A worker failed: it died, broke the protocol, timed out or could not start. */
export class WorkerError extends RrtsError {
  constructor(message: string, code = 'ERR_WORKER', options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** The worker answered with goridge's ERROR flag (PHP `$worker->error()`): the job failed, the worker is fine. */
export class SoftJobError extends RrtsError {
  constructor(message: string) {
    super('ERR_SOFT_JOB', message);
  }
}

/** No worker became free within allocate_timeout. */
export class NoFreeWorkersError extends RrtsError {
  constructor(message = 'no free workers in the pool, wait timeout exceed') {
    super('ERR_NO_FREE_WORKERS', message);
  }
}

/** The pool's queue is full (max_queue_size). */
export class QueueFullError extends RrtsError {
  constructor() {
    super('ERR_QUEUE_FULL', 'max queue size reached');
  }
}

/** A jobs driver refused a call (push, pause, resume, a settle after its pipeline stopped); the text is RoadRunner's. */
export class JobsDriverError extends RrtsError {
  constructor(message: string) {
    super('ERR_JOBS_DRIVER', message);
  }
}

/** A jobs.* RPC call failed; the message is RoadRunner's text (`op:\n\top: reason`), which the PHP SDK shows verbatim. */
export class JobsRpcError extends RrtsError {
  constructor(message: string) {
    super('ERR_JOBS_RPC', message);
  }
}

/** The jobs plugin could not start: a configured pipeline failed to build or run, or the jobs pool did not start. */
export class JobsStartError extends RrtsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_JOBS_START', message, options);
  }
}
