// The RPC codecs (docs/protocol.md §5.2): which codec a request asks for, decoding its argument, encoding a result.
// Pure functions over Buffer, no sockets. A Buffer result stands for Go's []byte: base64 over JSON, bytes elsewhere.
// Protobuf (goridge's 0x80) needs the method's message types: a method that has them carries a ProtoSignature.
import { Packr } from 'msgpackr';
import type { Type } from 'protobufjs';
import { RpcCodecError } from '../errors.js';
import { Flag } from '../goridge/flags.js';

export type CodecName = 'proto' | 'json' | 'raw' | 'msgpack' | 'gob';

export interface Codec {
  name: CodecName;
  /** The one flag bit the response carries. */
  flag: number;
}

const PROTO: Codec = { name: 'proto', flag: Flag.CODEC_PROTO };
const JSON_CODEC: Codec = { name: 'json', flag: Flag.CODEC_JSON };
const RAW: Codec = { name: 'raw', flag: Flag.CODEC_RAW };
const MSGPACK: Codec = { name: 'msgpack', flag: Flag.CODEC_MSGPACK };
const GOB: Codec = { name: 'gob', flag: Flag.CODEC_GOB };

/** goridge's server-side priority: PROTO > JSON > RAW > MSGPACK > GOB; no codec bit at all means gob. */
export function pickCodec(flags: number): Codec {
  if (flags & Flag.CODEC_PROTO) return PROTO;
  if (flags & Flag.CODEC_JSON) return JSON_CODEC;
  if (flags & Flag.CODEC_RAW) return RAW;
  if (flags & Flag.CODEC_MSGPACK) return MSGPACK;
  return GOB;
}

/** The codecs rrts cannot speak throw an RpcCodecError; the request is answered with its text instead. */
export function assertCodecSupported(codec: Codec): void {
  if (codec.name === 'gob') {
    throw new RpcCodecError(
      'rrts does not support the gob RPC codec (flags 0x20, used by the Go `rr` CLI): use `rrts workers`/`rrts reset`, or the JSON, msgpack or raw codec',
    );
  }
}

/** The protobuf message types of a method's argument and result (Go's proto.Message arguments). */
export interface ProtoSignature {
  arg: Type;
  result: Type;
}

/** What a protobuf argument or result becomes in JS: int64 as numbers, bytes as Buffers, absent fields as defaults. */
const PROTO_OBJECT = { longs: Number, defaults: true, arrays: true, objects: true } as const;

/** Methods whose arguments are not protobuf messages refuse the codec as goridge's server does. */
export function protoUnsupportedMessage(method: string): string {
  return `rrts: ${method} does not take protobuf messages (flags 0x80): use the JSON, msgpack or raw codec`;
}

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

/**
 * Decode a request argument. Empty bytes give `undefined` (Go keeps the zero value). RAW gives the Buffer itself.
 * With a ProtoSignature, protobuf and JSON both give the message as a plain object (JSON as Go's encoding/json reads
 * the generated structs: proto field names, bytes as base64); an empty protobuf body is the empty message.
 */
export function decodeArgument(codec: Codec, body: Buffer, proto?: ProtoSignature): unknown {
  if (proto && (codec.name === 'proto' || codec.name === 'json')) return decodeProtoArgument(codec, body, proto.arg);
  switch (codec.name) {
    case 'raw':
      return body;
    case 'json':
      if (body.length === 0) return undefined;
      try {
        return JSON.parse(body.toString('utf8'));
      } catch (err) {
        throw new RpcCodecError(`json: ${(err as Error).message}`);
      }
    case 'msgpack':
      if (body.length === 0) return undefined;
      try {
        return packr.unpack(body);
      } catch (err) {
        throw new RpcCodecError(`msgpack: ${(err as Error).message}`);
      }
    default:
      assertCodecSupported(codec);
      throw new RpcCodecError(`unknown codec ${codec.name}`);
  }
}

function decodeProtoArgument(codec: Codec, body: Buffer, type: Type): unknown {
  try {
    if (codec.name === 'proto') return type.toObject(type.decode(body), PROTO_OBJECT);
    const json: unknown = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
    if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new Error(`expected an object for ${type.name}`);
    return type.toObject(type.fromObject(json), PROTO_OBJECT);
  } catch (err) {
    throw new RpcCodecError(`${codec.name === 'proto' ? 'proto' : 'json'}: cannot decode ${type.fullName.replace(/^\./, '')}: ${(err as Error).message}`);
  }
}

/** Encode a result. `undefined` travels as JSON null / msgpack nil. */
export function encodeResult(codec: Codec, value: unknown, proto?: ProtoSignature): Buffer {
  if (proto && codec.name === 'proto') {
    const type = proto.result;
    return Buffer.from(type.encode(type.fromObject((value ?? {}) as Record<string, unknown>)).finish());
  }
  if (proto && codec.name === 'json') {
    // Go's omitempty tags: zero values are left out, as toObject without defaults does
    const type = proto.result;
    return Buffer.from(goJson(type.toObject(type.fromObject((value ?? {}) as Record<string, unknown>), { longs: Number })), 'utf8');
  }
  switch (codec.name) {
    case 'raw':
      if (Buffer.isBuffer(value)) return value;
      if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      if (typeof value === 'string') return Buffer.from(value, 'utf8');
      throw new RpcCodecError(`raw codec: the result is a ${value === null ? 'null' : typeof value}, not bytes`);
    case 'json':
      return Buffer.from(goJson(value), 'utf8');
    case 'msgpack':
      return packr.pack(value === undefined ? null : value);
    default:
      assertCodecSupported(codec);
      throw new RpcCodecError(`unknown codec ${codec.name}`);
  }
}

/**
 * JSON as Go's encoding/json writes it: Buffers ([]byte) as base64 strings, and <, >, &, U+2028, U+2029 escaped
 * (they can only occur inside strings, so escaping the whole text is safe).
 */
export function goJson(value: unknown): string {
  const text = JSON.stringify(value === undefined ? null : value, function (this: Record<string, unknown>, key: string, v: unknown) {
    const original = this[key];
    return Buffer.isBuffer(original) || original instanceof Uint8Array ? Buffer.from(original).toString('base64') : v;
  });
  return text.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
