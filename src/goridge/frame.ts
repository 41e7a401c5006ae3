// Goridge v3 frames: encode to one Buffer (written in one call, docs/protocol.md §1.6) and a streaming decoder
// that copes with partial reads, many frames per chunk and frames far larger than a pipe buffer.
// Pure functions over Buffer; no I/O here.
import { ProtocolError } from '../errors.js';

export interface Frame {
  flags: number;
  /** Stream byte: STREAM/STOP/PING/PONG bits. */
  byte10: number;
  options: number[];
  payload: Buffer;
}

export const HEADER_SIZE = 12;
export const MAX_OPTIONS = 10;
/** Default refusal threshold for one frame's payload; the wire allows up to 4 GiB but nothing sane sends that. */
export const DEFAULT_MAX_PAYLOAD = 2 ** 31 - 1;

const CRC_TABLE = new Uint32Array(256).map((_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** Standard CRC-32 (IEEE, as zlib and PHP's crc32()). */
export function crc32(buf: Uint8Array, start = 0, end = buf.length): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export interface FrameInit {
  flags?: number;
  byte10?: number;
  options?: readonly number[];
  payload?: Buffer | string | readonly Buffer[];
}

/** Encode one frame into a single Buffer: header, options, payload. */
export function encodeFrame(init: FrameInit = {}): Buffer {
  const options = init.options ?? [];
  if (options.length > MAX_OPTIONS) throw new RangeError(`goridge frames carry at most ${MAX_OPTIONS} options`);
  const parts: readonly Buffer[] =
    init.payload === undefined
      ? []
      : typeof init.payload === 'string'
        ? [Buffer.from(init.payload)]
        : Buffer.isBuffer(init.payload)
          ? [init.payload]
          : init.payload;
  let payloadLength = 0;
  for (const p of parts) payloadLength += p.length;
  if (payloadLength > 0xffffffff) throw new RangeError('goridge payload longer than 4 GiB');
  const headerLength = HEADER_SIZE + 4 * options.length;
  const out = Buffer.allocUnsafe(headerLength + payloadLength);
  writeHeader(out, options.length, init.flags ?? 0, payloadLength, init.byte10 ?? 0);
  for (let i = 0; i < options.length; i++) out.writeUInt32LE(options[i]! >>> 0, HEADER_SIZE + 4 * i);
  let at = headerLength;
  for (const p of parts) {
    p.copy(out, at);
    at += p.length;
  }
  return out;
}

/**
 * The frame of a job and of its answer: one option, the length of `head`, and the payload head ‖ tail. Same bytes
 * as encodeFrame({ flags, options: [head.length], payload: [head, tail] }), without the arrays: it runs per request.
 */
export function encodeSplitFrame(flags: number, head: Uint8Array, tail: Uint8Array): Buffer {
  const payloadLength = head.length + tail.length;
  if (payloadLength > 0xffffffff) throw new RangeError('goridge payload longer than 4 GiB');
  const out = Buffer.allocUnsafe(HEADER_SIZE + 4 + payloadLength);
  writeHeader(out, 1, flags, payloadLength, 0);
  out.writeUInt32LE(head.length, HEADER_SIZE);
  out.set(head, HEADER_SIZE + 4);
  out.set(tail, HEADER_SIZE + 4 + head.length);
  return out;
}

/** Bytes 0–11: version 1 and header length, flags, payload length, CRC of bytes 0–5, byte10, and 0. */
function writeHeader(out: Buffer, optionCount: number, flags: number, payloadLength: number, byte10: number): void {
  out[0] = (1 << 4) | (3 + optionCount);
  out[1] = flags & 0xff;
  out.writeUInt32LE(payloadLength, 2);
  out.writeUInt32LE(crc32(out, 0, 6), 6);
  out[10] = byte10 & 0xff;
  out[11] = 0;
}

/** Describe bytes that failed to parse, for logs: PHP output is usually readable text. */
export function describeGarbage(bytes: Buffer, max = 256): string {
  const text = bytes.subarray(0, max).toString('latin1');
  // eslint-disable-next-line no-control-regex
  const printable = text.replace(/[\x00-\x08\x0b-\x1f\x7f-\xff]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return bytes.length > max ? `${printable}… (${bytes.length} bytes)` : printable;
}

/**
 * A frame as the decoder hands it out: its payload is a view made when first asked for, since the frame of a job's
 * answer is taken apart without it (payloadPart).
 */
class DecodedFrame implements Frame {
  private view: Buffer | null = null;

  constructor(
    readonly flags: number,
    readonly byte10: number,
    readonly options: number[],
    /** The whole frame: header, options, payload. */
    readonly bytes: Buffer,
    readonly payloadStart: number,
  ) {}

  get payload(): Buffer {
    return (this.view ??= this.bytes.subarray(this.payloadStart));
  }
}

const NO_BYTES = Buffer.alloc(0);

/** Bytes [from, to) of a frame's payload, without a view of the whole payload for a decoded frame; empty: a shared one. */
export function payloadPart(frame: Frame, from: number, to: number): Buffer {
  if (from === to) return NO_BYTES;
  if (frame instanceof DecodedFrame) return frame.bytes.subarray(frame.payloadStart + from, frame.payloadStart + to);
  return frame.payload.subarray(from, to);
}

/** A frame's payload length, without a view of it for a decoded frame. */
export function payloadLength(frame: Frame): number {
  return frame instanceof DecodedFrame ? frame.bytes.length - frame.payloadStart : frame.payload.length;
}

/** The options after a frame's header, in an array of their number (job frames carry one, RPC frames two). */
function readOptions(bytes: Buffer, count: number): number[] {
  if (count === 0) return [];
  if (count === 1) return [bytes.readUInt32LE(HEADER_SIZE)];
  const options = new Array<number>(count);
  for (let i = 0; i < count; i++) options[i] = bytes.readUInt32LE(HEADER_SIZE + 4 * i);
  return options;
}

/**
 * Streaming decoder. push() takes any chunk and returns the frames it completed. Chunks are kept in a list and
 * copied once when a frame is complete; a frame lying in a single chunk is handed out as a slice.
 * After a ProtocolError the decoder is poisoned: the stream has no resynchronisation point.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private failed: ProtocolError | null = null;
  /** Frames announcing a longer payload are refused before anything is allocated. */
  maxPayload: number;

  constructor(options: { maxPayload?: number } = {}) {
    this.maxPayload = options.maxPayload ?? DEFAULT_MAX_PAYLOAD;
  }

  /** Bytes held that do not yet form a whole frame. */
  get pending(): number {
    return this.buffered;
  }

  /**
   * The frame being received, once its header and options are buffered: its whole size as announced (header,
   * options, payload), flags and options. Lets a caller budget or refuse it before the payload arrives. Null while
   * fewer bytes are buffered, and after a failure.
   */
  get incoming(): { size: number; flags: number; options: number[] } | null {
    if (this.failed || this.buffered < HEADER_SIZE) return null;
    const hl = this.peek(HEADER_SIZE)[0]! & 0x0f;
    if (this.buffered < hl * 4) return null;
    const head = this.peek(hl * 4); // validated by decodeInto() when it stopped at this frame
    const options: number[] = [];
    for (let i = HEADER_SIZE; i < hl * 4; i += 4) options.push(head.readUInt32LE(i));
    return { size: hl * 4 + head.readUInt32LE(2), flags: head[1]!, options };
  }

  push(chunk: Buffer): Frame[] {
    if (this.failed) throw this.failed;
    if (chunk.length === 0) return [];
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    // Made with its first frame, at its size: an empty array's first push() reserves room for 17.
    let frames: Frame[] | null = null;
    try {
      for (let frame = this.next(); frame !== null; frame = this.next()) {
        if (frames === null) frames = [frame];
        else frames.push(frame);
      }
    } catch (err) {
      // Frames completed before the garbage are still good: hand them out with the error.
      (err as ProtocolError & { frames?: Frame[] }).frames = frames ?? [];
      throw err;
    }
    return frames ?? [];
  }

  /** The next whole frame buffered, or null. */
  private next(): Frame | null {
    if (this.buffered < HEADER_SIZE) return null;
    const head = this.peek(HEADER_SIZE); // the header is head[0..11]
    const hl = head[0]! & 0x0f;
    if (hl < 3 || hl > 3 + MAX_OPTIONS) this.fail(`bad goridge header length ${hl}`);
    if (crc32(head, 0, 6) !== head.readUInt32LE(6)) this.fail('CRC mismatch in goridge header');
    const length = head.readUInt32LE(2);
    if (length > this.maxPayload) this.fail(`goridge frame of ${length} bytes is over the limit of ${this.maxPayload}`);
    const total = hl * 4 + length;
    if (this.buffered < total) return null;
    const bytes = this.take(total);
    return new DecodedFrame(bytes[1]!, bytes[10]!, readOptions(bytes, hl - 3), bytes, hl * 4);
  }

  private fail(reason: string): never {
    const n = Math.min(this.buffered, 512);
    const sample = this.peek(n).subarray(0, n);
    this.failed = new ProtocolError(`${reason}; invalid message: ${describeGarbage(sample)}`);
    throw this.failed;
  }

  /** A buffer starting with the first n buffered bytes, contiguous (copies only when they span chunks). */
  private peek(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= n) return first;
    const merged = Buffer.concat(this.chunks, this.buffered);
    this.chunks = [merged];
    return merged;
  }

  /** Remove and return the first n buffered bytes. */
  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length === n) {
      out = first; // the usual case: one read, one frame
      this.chunks.shift();
    } else if (first.length > n) {
      out = first.subarray(0, n);
      this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let at = 0;
      while (at < n) {
        const c = this.chunks[0]!;
        const need = n - at;
        if (c.length <= need) {
          c.copy(out, at);
          at += c.length;
          this.chunks.shift();
        } else {
          c.copy(out, at, 0, need);
          this.chunks[0] = c.subarray(need);
          at += need;
        }
      }
    }
    this.buffered -= n;
    return out;
  }
}
