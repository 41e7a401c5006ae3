// The frames of RoadRunner's worker protocol (docs/protocol.md §2) and its RPC framing (§5.1), built on frame.ts.
import { ProtocolError } from '../errors.js';
import { Flag, Stream } from './flags.js';
import { encodeFrame, encodeSplitFrame, payloadLength, payloadPart, type Frame } from './frame.js';

/**
 * Server -> worker: the pid request; `serverPid` must be truthy for PHP (docs/protocol.md §2.3). `offerPipes`: fork
 * mode's relay sends it with a new worker's pipes (the SDK ignores the key).
 */
export function pidRequest(serverPid: number, offerPipes = false): Buffer {
  const payload = offerPipes ? `{"pid":${serverPid},"pipes":true}` : `{"pid":${serverPid}}`;
  return encodeFrame({ flags: Flag.CONTROL | Flag.CODEC_JSON, payload });
}

/** Server -> worker: the soft stop control. */
export const STOP_CONTROL: Buffer = encodeFrame({ flags: Flag.CONTROL | Flag.CODEC_JSON, payload: '{"stop":true}' });
/** Server -> worker: answer to a PING during a stream. */
export const PONG: Buffer = encodeFrame({ byte10: Stream.PONG });
/** Server -> worker: stop the stream you are sending. */
export const STREAM_STOP: Buffer = encodeFrame({ byte10: Stream.STOP });

/** Server -> worker: a job; exactly one option, the context length (docs/protocol.md §2.4). */
export function jobFrame(codec: number, context: Buffer, body: Buffer): Buffer {
  return encodeSplitFrame(codec, context, body);
}

/** Parse the worker's pid reply; throws ProtocolError with the reason. */
export function parsePidReply(frame: Frame): number {
  if (!(frame.flags & Flag.CONTROL)) throw new ProtocolError('unexpected response, header is missing, no CONTROL flag');
  let parsed: unknown;
  try {
    parsed = JSON.parse(frame.payload.toString('utf8'));
  } catch {
    throw new ProtocolError(`pid reply is not JSON: ${frame.payload.subarray(0, 200).toString('utf8')}`);
  }
  const pid = (parsed as { pid?: unknown } | null)?.pid;
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0) throw new ProtocolError('pid should be greater than 0');
  return pid;
}

export const STOP_REQUEST_CONTEXT = '{"stop":true}';

/** One response frame from a worker, taken apart (docs/protocol.md §2.5–2.7). */
export type JobReply =
  { kind: 'error'; message: string } | { kind: 'stop-request' } | { kind: 'data'; flags: number; context: Buffer; body: Buffer; more: boolean; ping: boolean };

export function parseJobReply(frame: Frame): JobReply {
  if (frame.flags & Flag.ERROR) return { kind: 'error', message: frame.payload.toString('utf8') };
  if (frame.options.length !== 1) throw new ProtocolError(`options length should be equal 1 (body offset), got ${frame.options.length}`);
  const offset = frame.options[0]!;
  const length = payloadLength(frame);
  if (offset > length) throw new ProtocolError(`bad payload: context length ${offset} is past the payload end (${length})`);
  const context = payloadPart(frame, 0, offset);
  const body = payloadPart(frame, offset, length);
  const more = (frame.byte10 & Stream.STREAM) !== 0;
  if (!more && body.length === 0 && offset === STOP_REQUEST_CONTEXT.length && context.toString('latin1') === STOP_REQUEST_CONTEXT) {
    return { kind: 'stop-request' };
  }
  return { kind: 'data', flags: frame.flags, context, body, more, ping: (frame.byte10 & Stream.PING) !== 0 };
}

/** An RPC call or reply: options [seq, method length], payload = method ‖ body (docs/protocol.md §5.1). */
export interface RpcMessage {
  seq: number;
  method: string;
  flags: number;
  body: Buffer;
}

export function encodeRpc(msg: RpcMessage): Buffer {
  const method = Buffer.from(msg.method, 'latin1');
  return encodeFrame({ flags: msg.flags, options: [msg.seq, method.length], payload: [method, msg.body] });
}

export function decodeRpc(frame: Frame): RpcMessage {
  if (frame.options.length !== 2) throw new ProtocolError(`RPC frames carry exactly 2 options, got ${frame.options.length}`);
  const [seq, methodLength] = frame.options as [number, number];
  if (methodLength > frame.payload.length) throw new ProtocolError(`RPC method length ${methodLength} is past the payload end`);
  return {
    seq,
    method: frame.payload.subarray(0, methodLength).toString('latin1'),
    flags: frame.flags,
    body: frame.payload.subarray(methodLength),
  };
}
