// Unit tests of src/errors.ts: every code has one class, every class has its literal code and its name, and
// instanceof holds across the hierarchy (a WorkerStartError is a WorkerError, an RrtsError and an Error).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as errors from '../src/errors.js';
import { RRTS_ERROR_CODES, RrtsError, type RrtsErrorCode } from '../src/errors.js';
import { H1_ERROR_STATUS, type H1ErrorCode } from '../src/http/h1/errors.js';

/** One instance of every concrete class, as its callers make it. */
const samples: Record<string, () => RrtsError> = {
  ConfigError: () => new errors.ConfigError('expected a whole number', { file: 'rr.yaml', line: 3, key: 'http.pool.num_workers' }),
  AddressError: () => new errors.AddressError('invalid socket DSN "x": expected tcp://host:port'),
  ProtocolError: () => new errors.ProtocolError('bad CRC'),
  StartError: () => new errors.StartError('http: cannot start the worker pool'),
  ReloadError: () => new errors.ReloadError('http: reload failed'),
  NoFreeWorkersError: () => new errors.NoFreeWorkersError(),
  QueueFullError: () => new errors.QueueFullError(),
  PoolStoppedError: () => new errors.PoolStoppedError(),
  JobCancelledError: () => new errors.JobCancelledError(),
  ResetError: () => new errors.ResetError('this pool cannot change its workers'),
  TooManyWorkersError: () => new errors.TooManyWorkersError(256),
  SoftJobError: () => new errors.SoftJobError('the job failed'),
  StopRequestError: () => new errors.StopRequestError(42),
  WorkerBusyError: () => new errors.WorkerBusyError('worker 42 is already running a job'),
  WorkerStartError: () => new errors.WorkerStartError('worker 42 exited before it was ready'),
  WorkerHandshakeTimeoutError: () => new errors.WorkerHandshakeTimeoutError('worker 42 did not answer the pid handshake'),
  WorkerGoneError: () => new errors.WorkerGoneError('worker 42 exited'),
  WorkerProtocolError: () => new errors.WorkerProtocolError('worker 42 broke the protocol'),
  StreamTimeoutError: () => new errors.StreamTimeoutError('worker 42 did not end its stream'),
  ExecTtlError: () => new errors.ExecTtlError('worker 42 was killed'),
  ForkFailedError: () => new errors.ForkFailedError('the fork master 7 could not fork'),
  ForkMasterStartError: () => new errors.ForkMasterStartError('cannot start the fork master'),
  ForkMasterRefusedError: () => new errors.ForkMasterRefusedError('the fork root 6 did not start a master'),
  ForkMasterGoneError: () => new errors.ForkMasterGoneError('the fork master 7 exited'),
  ForkMasterTimeoutError: () => new errors.ForkMasterTimeoutError('the fork master 7 did not answer'),
  RequestTooLargeError: () => new errors.RequestTooLargeError('http: request body too large'),
  RequestFormingError: () => new errors.RequestFormingError('request forming error: bad tree'),
  RequestAbortedError: () => new errors.RequestAbortedError('request forming error: client disconnected'),
  MultipartError: () => new errors.MultipartError('multipart: bad part'),
  MultipartTooLargeError: () => new errors.MultipartTooLargeError('multipart: message too large'),
  FormTreeError: () => new errors.FormTreeError("invalid multiple values to key 'a' in tree"),
  ResponseError: () => new errors.ResponseError('worker sent a body before any status'),
  AnswerCutError: () => new errors.AnswerCutError('worker 42: the answer was cut'),
  H1ParseError: () => new errors.H1ParseError('MISSING_HOST', 'missing required Host header'),
  RpcCallError: () => new errors.RpcCallError('connection is shut down'),
  RpcCodecError: () => new errors.RpcCodecError('json: unexpected end'),
  RpcMethodError: () => new errors.RpcMethodError("rpc: can't find service nosuch.Method"),
  UnknownPluginError: () => new errors.UnknownPluginError('plugin grpc does not support workers management'),
  MetricsError: () => new errors.MetricsError('undefined collector app'),
  JobsDriverError: () => new errors.JobsDriverError('no active listeners, nothing to pause'),
  JobsRpcError: () => new errors.JobsRpcError('rpc_push:\n\tjobs_plugin_push: no such pipeline, requested: nope'),
  JobsStartError: () => new errors.JobsStartError('jobs_plugin_serve: config not found by provided key: jobs.pipelines.a.config'),
  JournalError: () => new errors.JournalError('rr.db is in use by another process (pid 1)', 'locked'),
};

/** The classes that group others and are never thrown themselves. */
const ABSTRACT = new Set(['RrtsError', 'WorkerError', 'RequestError']);

function exportedClasses(): Array<[string, unknown]> {
  return Object.entries(errors).filter(([, value]) => typeof value === 'function');
}

describe('src/errors.ts', () => {
  it('every exported class is an RrtsError with a sample here, or one of the abstract groups', () => {
    for (const [name, value] of exportedClasses()) {
      assert.ok(value === RrtsError || (value as { prototype: unknown }).prototype instanceof RrtsError, `${name} extends RrtsError`);
      assert.ok(ABSTRACT.has(name) || name in samples, `${name} has a sample in this test`);
    }
    for (const name of Object.keys(samples)) assert.ok(name in errors, `${name} is exported`);
  });

  it('each class sets its name and its literal code, keeps the message and the cause', () => {
    for (const [name, make] of Object.entries(samples)) {
      const error = make();
      assert.ok(error instanceof Error, name);
      assert.ok(error instanceof RrtsError, name);
      assert.equal(error.name, name);
      assert.match(error.code, /^ERR_[A-Z0-9_]+$/, name);
      assert.ok(String(error).startsWith(`${name}: `), `${name} prints its name: ${String(error)}`);
      assert.ok(error.stack?.startsWith(`${name}: `), `${name}'s stack starts with its name`);
    }
    const cause = new Error('pipe closed');
    const ttl = new errors.ExecTtlError('worker 42 was killed', { cause });
    assert.equal(ttl.message, 'worker 42 was killed');
    assert.equal(ttl.cause, cause);
  });

  it('every code has exactly one class, and every class one code (the parser one code per reason)', () => {
    const owners = new Map<string, string>();
    for (const [name, make] of Object.entries(samples)) {
      if (name === 'H1ParseError') continue;
      const code = make().code;
      assert.equal(owners.get(code), undefined, `${code} belongs to both ${owners.get(code)} and ${name}`);
      owners.set(code, name);
    }
    assert.deepEqual([...owners.keys()].sort(), [...RRTS_ERROR_CODES].sort());
    for (const reason of Object.keys(H1_ERROR_STATUS) as H1ErrorCode[]) {
      const error = new errors.H1ParseError(reason, 'refused');
      assert.equal(error.code, `ERR_HTTP_${reason}`);
      assert.equal(error.reason, reason);
      assert.equal(error.status, H1_ERROR_STATUS[reason]);
      assert.equal(owners.has(error.code), false, `${error.code} is the parser's alone`);
    }
  });

  it('the codes are a literal union: a code no class has does not compile', () => {
    const known: RrtsErrorCode = 'ERR_EXEC_TTL';
    // @ts-expect-error a code that no class carries is not an RrtsErrorCode
    const unknown: RrtsErrorCode = 'ERR_NOT_A_CODE';
    assert.notEqual(known, unknown);
  });

  it('instanceof follows the hierarchy, and only it', () => {
    const workerFailures = ['WorkerBusyError', 'WorkerStartError', 'WorkerHandshakeTimeoutError', 'WorkerGoneError', 'WorkerProtocolError'];
    const forkFailures = ['ForkFailedError', 'ForkMasterStartError', 'ForkMasterRefusedError', 'ForkMasterGoneError', 'ForkMasterTimeoutError'];
    const worker = new Set([...workerFailures, 'StreamTimeoutError', 'ExecTtlError', ...forkFailures]);
    const request = new Set(['RequestTooLargeError', 'RequestFormingError', 'RequestAbortedError']);
    for (const [name, make] of Object.entries(samples)) {
      const error = make();
      assert.equal(error instanceof errors.WorkerError, worker.has(name), `${name} instanceof WorkerError`);
      assert.equal(error instanceof errors.RequestError, request.has(name), `${name} instanceof RequestError`);
      for (const other of Object.keys(samples)) {
        if (other === name || (name === 'MultipartTooLargeError' && other === 'MultipartError')) continue;
        const otherClass = (errors as unknown as Record<string, new (...args: never[]) => unknown>)[other]!;
        assert.equal(error instanceof otherClass, false, `${name} is not a ${other}`);
      }
    }
    const tooLarge = new errors.MultipartTooLargeError('multipart: message too large');
    assert.ok(tooLarge instanceof errors.MultipartError);
    assert.equal(tooLarge.code, 'ERR_MULTIPART_TOO_LARGE');
    assert.equal(new errors.MultipartError('multipart: bad part').code, 'ERR_MULTIPART');
  });

  it('ConfigError puts the place before the problem and keeps both', () => {
    const placed = new errors.ConfigError('expected a whole number, got "x"', { file: 'rr.yaml', line: 3, key: 'http.pool.num_workers' });
    assert.equal(placed.message, `rr.yaml:3, key 'http.pool.num_workers': expected a whole number, got "x"`);
    assert.equal(placed.problem, 'expected a whole number, got "x"');
    assert.deepEqual([placed.file, placed.line, placed.key], ['rr.yaml', 3, 'http.pool.num_workers']);
    assert.equal(new errors.ConfigError('bad', { file: 'rr.yaml' }).message, 'rr.yaml: bad');
    assert.equal(new errors.ConfigError('bad', { key: 'logs.output' }).message, "key 'logs.output': bad");
    assert.equal(new errors.ConfigError('bad').message, 'bad');
  });
});
