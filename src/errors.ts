// Every error rrts raises on purpose, in one place (as undici's lib/core/errors.js): one base class, RrtsError, and
// a subclass per failure with its literal `code`, so code matches with `instanceof` and users and logs with the code
// (docs/errors.md lists them with what each one becomes for the user).
import { H1_ERROR_STATUS, type H1ErrorCode } from './http/h1/errors.js';

/** Every code an RrtsError can carry but the parser's; each belongs to exactly one class (test/errors.test.ts). */
export const RRTS_ERROR_CODES = [
  'ERR_CONFIG',
  'ERR_ADDRESS',
  'ERR_PROTOCOL',
  'ERR_START',
  'ERR_RELOAD',
  // the pool
  'ERR_NO_FREE_WORKERS',
  'ERR_QUEUE_FULL',
  'ERR_POOL_STOPPED',
  'ERR_ABORTED',
  'ERR_RESET',
  'ERR_TOO_MANY_WORKERS',
  // a job on a worker
  'ERR_SOFT_JOB',
  'ERR_WORKER_STOP_REQUEST',
  // a broken worker (WorkerError)
  'ERR_WORKER_BUSY',
  'ERR_WORKER_BOOT',
  'ERR_ALLOCATE_TIMEOUT',
  'ERR_WORKER_GONE',
  'ERR_WORKER_PROTOCOL',
  'ERR_STREAM_TIMEOUT',
  'ERR_EXEC_TTL',
  'ERR_FORK',
  'ERR_MASTER_BOOT',
  'ERR_MASTER_REFUSED',
  'ERR_MASTER_GONE',
  'ERR_MASTER_TIMEOUT',
  // HTTP
  'ERR_REQUEST_TOO_LARGE',
  'ERR_REQUEST_FORMING',
  'ERR_REQUEST_ABORTED',
  'ERR_MULTIPART',
  'ERR_MULTIPART_TOO_LARGE',
  'ERR_FORM_TREE',
  'ERR_BAD_RESPONSE',
  'ERR_ANSWER_CUT',
  // RPC and the services behind it
  'ERR_RPC',
  'ERR_RPC_CODEC',
  'ERR_RPC_METHOD',
  'ERR_UNKNOWN_PLUGIN',
  'ERR_METRICS',
  // jobs
  'ERR_JOBS_DRIVER',
  'ERR_JOBS_RPC',
  'ERR_JOBS_START',
  'ERR_JOBS_JOURNAL',
] as const;

/** The codes, and the parser's `ERR_HTTP_<reason>` (one class, H1ParseError, for all its reasons). */
export type RrtsErrorCode = (typeof RRTS_ERROR_CODES)[number] | `ERR_HTTP_${H1ErrorCode}`;

/** The base of every error below; never thrown itself. `name` is the subclass's name. */
export abstract class RrtsError extends Error {
  abstract readonly code: RrtsErrorCode;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * A problem in the configuration. The message names the place (`file:line, key 'a.b': `) before the problem; an
 * error thrown without a place (a value checked on its own, as the coercions do) is placed by whoever knows it.
 */
export class ConfigError extends RrtsError {
  override readonly code = 'ERR_CONFIG';
  readonly file: string | undefined;
  readonly key: string | undefined;
  readonly line: number | undefined;
  /** The message without the place. */
  readonly problem: string;
  constructor(problem: string, where: { file?: string; key?: string; line?: number } = {}) {
    const place = [where.file ? (where.line ? `${where.file}:${where.line}` : where.file) : undefined, where.key ? `key '${where.key}'` : undefined]
      .filter(Boolean)
      .join(', ');
    super(place ? `${place}: ${problem}` : problem);
    this.file = where.file;
    this.key = where.key;
    this.line = where.line;
    this.problem = problem;
  }
}

/** A listen address (tcp://host:port, unix://file.sock) that cannot be parsed, or is taken. */
export class AddressError extends RrtsError {
  override readonly code = 'ERR_ADDRESS';
}

/** Bytes or messages that break a wire protocol: goridge framing (bad CRC, bad header length, garbage) or the fork control protocol. */
export class ProtocolError extends RrtsError {
  override readonly code = 'ERR_PROTOCOL';
}

/** A plugin could not start (listen, start its workers, run server.on_init): rrts does not serve. */
export class StartError extends RrtsError {
  override readonly code = 'ERR_START';
}

/** A reload (SIGHUP) could not apply the new config; the old workers and recipe stay. */
export class ReloadError extends RrtsError {
  override readonly code = 'ERR_RELOAD';
}

/** No worker became free within allocate_timeout. */
export class NoFreeWorkersError extends RrtsError {
  override readonly code = 'ERR_NO_FREE_WORKERS';
  constructor(message = 'no free workers in the pool, wait timeout exceed') {
    super(message);
  }
}

/** The pool's queue is full (max_queue_size). */
export class QueueFullError extends RrtsError {
  override readonly code = 'ERR_QUEUE_FULL';
  constructor() {
    super('max queue size reached');
  }
}

/** The pool is stopping: no new job, reset or worker. */
export class PoolStoppedError extends RrtsError {
  override readonly code = 'ERR_POOL_STOPPED';
  constructor() {
    super('the worker pool is stopping');
  }
}

/** The job was cancelled (its client went away) while it waited for a worker. */
export class JobCancelledError extends RrtsError {
  override readonly code = 'ERR_ABORTED';
  constructor() {
    super('the client went away while the request waited for a worker');
  }
}

/** A reset (or a reload's recipe) could not be carried out; the old workers keep serving. */
export class ResetError extends RrtsError {
  override readonly code = 'ERR_RESET';
}

/** informer.AddWorker past the pool's ceiling. */
export class TooManyWorkersError extends RrtsError {
  override readonly code = 'ERR_TOO_MANY_WORKERS';
  constructor(max: number) {
    super(`number of workers can't be more than ${max}`);
  }
}

/** The worker answered with goridge's ERROR flag (PHP `$worker->error()`): the job failed, the worker is fine. */
export class SoftJobError extends RrtsError {
  override readonly code = 'ERR_SOFT_JOB';
}

/** The worker asked to be restarted instead of answering (PHP `Worker::stop()`); the job should go elsewhere. */
export class StopRequestError extends RrtsError {
  override readonly code = 'ERR_WORKER_STOP_REQUEST';
  constructor(pid: number) {
    super(`worker ${pid} asked to be stopped instead of answering`);
  }
}

/** A worker failed: it died, broke the protocol, timed out or could not start. The subclass says which. */
export abstract class WorkerError extends RrtsError {}

/** A job was given to a worker already running one (a bug in the pool, never the worker's fault). */
export class WorkerBusyError extends WorkerError {
  override readonly code = 'ERR_WORKER_BUSY';
}

/** The worker could not start: the command failed, it exited before it was ready, or it botched the handshake. */
export class WorkerStartError extends WorkerError {
  override readonly code = 'ERR_WORKER_BOOT';
}

/** The worker did not answer the pid handshake within pool.allocate_timeout. */
export class WorkerHandshakeTimeoutError extends WorkerError {
  override readonly code = 'ERR_ALLOCATE_TIMEOUT';
}

/** The worker exited or closed its relay. */
export class WorkerGoneError extends WorkerError {
  override readonly code = 'ERR_WORKER_GONE';
}

/** The worker sent bytes or frames the worker protocol does not allow. */
export class WorkerProtocolError extends WorkerError {
  override readonly code = 'ERR_WORKER_PROTOCOL';
}

/** The worker did not end its stream within stream_timeout after STOP. */
export class StreamTimeoutError extends WorkerError {
  override readonly code = 'ERR_STREAM_TIMEOUT';
}

/** The worker was killed because its job ran longer than exec_ttl. */
export class ExecTtlError extends WorkerError {
  override readonly code = 'ERR_EXEC_TTL';
}

/** Fork mode: the master could not fork a worker. */
export class ForkFailedError extends WorkerError {
  override readonly code = 'ERR_FORK';
}

/** Fork mode: the fork root or a master could not start or did not report ready. */
export class ForkMasterStartError extends WorkerError {
  override readonly code = 'ERR_MASTER_BOOT';
}

/** Fork mode: the root refused to start a master (its opcache is full or too wasted); a fresh root may. */
export class ForkMasterRefusedError extends WorkerError {
  override readonly code = 'ERR_MASTER_REFUSED';
}

/** Fork mode: the root or master exited, or closed its control channel. */
export class ForkMasterGoneError extends WorkerError {
  override readonly code = 'ERR_MASTER_GONE';
}

/** Fork mode: the root or master did not answer a control request in time. */
export class ForkMasterTimeoutError extends WorkerError {
  override readonly code = 'ERR_MASTER_TIMEOUT';
}

/**
 * The request cannot be handed to a worker; the subclass says which status the client gets. The body may be left
 * partly unread: answer with `Connection: close`. Temp files are already removed when this is thrown.
 */
export abstract class RequestError extends RrtsError {}

/** The body is over http.max_request_size: 413. */
export class RequestTooLargeError extends RequestError {
  override readonly code = 'ERR_REQUEST_TOO_LARGE';
}

/** The request cannot be turned into a payload (bad form tree, malformed multipart): 500, as RoadRunner answers. */
export class RequestFormingError extends RequestError {
  override readonly code = 'ERR_REQUEST_FORMING';
}

/** The client went away before its body was read: 400. */
export class RequestAbortedError extends RequestError {
  override readonly code = 'ERR_REQUEST_ABORTED';
}

/** The multipart body is malformed. */
export class MultipartError extends RrtsError {
  override readonly code: 'ERR_MULTIPART' | 'ERR_MULTIPART_TOO_LARGE' = 'ERR_MULTIPART';
}

/** The multipart body exceeds a parser limit (413 once the request layer sees it). */
export class MultipartTooLargeError extends MultipartError {
  override readonly code = 'ERR_MULTIPART_TOO_LARGE';
}

/** The form cannot be turned into a tree (`a=1&a[b]=2`), or the url-encoded body is malformed. */
export class FormTreeError extends RrtsError {
  override readonly code = 'ERR_FORM_TREE';
}

/** The worker's answer is not a valid HTTP response (context not JSON, bad status, body without a status). */
export class ResponseError extends RrtsError {
  override readonly code = 'ERR_BAD_RESPONSE';
}

/**
 * A streamed body ran past its Content-Length: the writer sent the declared bytes, ended the answer and logged it.
 * Thrown to the worker so it stops the stream; the server has nothing left to answer.
 */
export class AnswerCutError extends RrtsError {
  override readonly code = 'ERR_ANSWER_CUT';
}

/** Why the HTTP/1 parser refused a request: `reason` is stable, `status` is what Go's net/http answers with. */
export class H1ParseError extends RrtsError {
  override readonly code: `ERR_HTTP_${H1ErrorCode}`;
  readonly reason: H1ErrorCode;
  /** The status to answer with before closing the connection. */
  readonly status: number;
  constructor(reason: H1ErrorCode, message: string) {
    super(message);
    this.code = `ERR_HTTP_${reason}`;
    this.reason = reason;
    this.status = H1_ERROR_STATUS[reason];
  }
}

/** An RPC call (from the CLI) failed: the server answered with an error, or the call could not complete. */
export class RpcCallError extends RrtsError {
  override readonly code = 'ERR_RPC';
}

/** An RPC argument or result the codec cannot handle; the text goes back to the caller as the call's error. */
export class RpcCodecError extends RrtsError {
  override readonly code = 'ERR_RPC_CODEC';
}

/** An RPC call names no registered `service.Method` (net/rpc's texts). */
export class RpcMethodError extends RrtsError {
  override readonly code = 'ERR_RPC_METHOD';
}

/** An RPC call names a plugin that does not exist, or one without the capability the call needs (RoadRunner's texts). */
export class UnknownPluginError extends RrtsError {
  override readonly code = 'ERR_UNKNOWN_PLUGIN';
}

/** A metrics RPC call or declaration that cannot be carried out; the message is what the PHP client sees. */
export class MetricsError extends RrtsError {
  override readonly code = 'ERR_METRICS';
}

/** What went wrong with a boltdb pipeline's journal file. */
export type JournalFailure = 'io' | 'locked' | 'node' | 'format' | 'closed' | 'write';

/** A boltdb pipeline's journal cannot be used: not ours, locked, closed, or a write or fsync failed. */
export class JournalError extends RrtsError {
  override readonly code = 'ERR_JOBS_JOURNAL';
  constructor(
    message: string,
    readonly reason: JournalFailure = 'io',
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** A jobs driver refused a call (push, pause, resume, a settle after its pipeline stopped); the text is RoadRunner's. */
export class JobsDriverError extends RrtsError {
  override readonly code = 'ERR_JOBS_DRIVER';
}

/** A jobs.* RPC call failed; the message is RoadRunner's text (`op:\n\top: reason`), which the PHP SDK shows verbatim. */
export class JobsRpcError extends RrtsError {
  override readonly code = 'ERR_JOBS_RPC';
}

/** The jobs plugin could not start: a configured pipeline failed to build or run, or the jobs pool did not start. */
export class JobsStartError extends RrtsError {
  override readonly code = 'ERR_JOBS_START';
}
