// The job body on a beanstalk tube: RoadRunner's beanstalkjobs Item written by Go's encoding/gob (a fresh Encoder
// per job: the type definitions, then the value). The encoder writes what a fresh Go process writes for that Item;
// the decoder reads any gob stream of a struct, so a producer whose process numbered its types otherwise decodes too.

/** Go's predefined gob type ids. */
const BOOL = 1;
const INT = 2;
const UINT = 3;
const FLOAT = 4;
const BYTES = 5;
const STRING = 6;
/** Ids a fresh Go process gives the Item's types, in the order it numbers them (struct first, then its fields' types). */
const ITEM_ID = 65;
const STRINGS_ID = 66;
const HEADERS_ID = 67;
const OPTIONS_ID = 68;

/** The fields of beanstalkjobs.Item and its Options that gob carries (exported ones; rrts writes Hdrs, as RR ≥ 2025.1.x). */
export interface GobItem {
  job: string;
  id: string;
  payload: Buffer;
  headers: Record<string, string[]>;
  priority: number;
  pipeline: string;
  delay: number;
  autoAck: boolean;
  queue: string;
}

export class GobError extends Error {}

// --- encoding --------------------------------------------------------------------------------------------------------

class Writer {
  private readonly chunks: Buffer[] = [];

  uint(value: number): this {
    if (value < 0x80) {
      this.chunks.push(Buffer.from([value]));
      return this;
    }
    const bytes: number[] = [];
    let rest = BigInt(value);
    while (rest > 0n) {
      bytes.unshift(Number(rest & 0xffn));
      rest >>= 8n;
    }
    this.chunks.push(Buffer.from([256 - bytes.length, ...bytes]));
    return this;
  }

  int(value: number): this {
    const v = BigInt(value);
    const u = v < 0n ? (~v << 1n) | 1n : v << 1n;
    return this.uint(Number(u));
  }

  string(value: string | Buffer): this {
    const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    this.uint(bytes.length);
    this.chunks.push(bytes);
    return this;
  }

  done(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/** Struct fields as gob sends them: only non-zero ones, each with its field-number delta, then 0. */
class StructWriter {
  private last = -1;

  constructor(private readonly out: Writer) {}

  field(index: number): Writer {
    this.out.uint(index - this.last);
    this.last = index;
    return this.out;
  }

  end(): void {
    this.out.uint(0);
  }
}

/** One message: its length, then its bytes. */
function message(body: (w: Writer) => void): Buffer {
  const inner = new Writer();
  body(inner);
  const bytes = inner.done();
  return Buffer.concat([new Writer().uint(bytes.length).done(), bytes]);
}

function structTypeDefinition(id: number, name: string, fields: ReadonlyArray<readonly [string, number]>): Buffer {
  return message((w) => {
    w.int(-id);
    const wire = new StructWriter(w);
    wire.field(2); // wireType.StructT
    const struct = new StructWriter(w);
    struct.field(0); // CommonType
    const common = new StructWriter(w);
    common.field(0).string(name);
    common.field(1).int(id);
    common.end();
    struct.field(1).uint(fields.length); // Field []fieldType
    for (const [fieldName, fieldId] of fields) {
      const field = new StructWriter(w);
      field.field(0).string(fieldName);
      field.field(1).int(fieldId);
      field.end();
    }
    struct.end();
    wire.end();
  });
}

const TYPE_DEFINITIONS = Buffer.concat([
  structTypeDefinition(ITEM_ID, 'Item', [
    ['Job', STRING],
    ['Ident', STRING],
    ['Payload', BYTES],
    ['Hdrs', HEADERS_ID],
    ['Options', OPTIONS_ID],
  ]),
  message((w) => {
    w.int(-HEADERS_ID);
    const wire = new StructWriter(w);
    wire.field(3); // wireType.MapT
    const map = new StructWriter(w);
    map.field(0);
    const common = new StructWriter(w);
    common.field(0).string('map[string][]string');
    common.field(1).int(HEADERS_ID);
    common.end();
    map.field(1).int(STRING);
    map.field(2).int(STRINGS_ID);
    map.end();
    wire.end();
  }),
  message((w) => {
    w.int(-STRINGS_ID);
    const wire = new StructWriter(w);
    wire.field(1); // wireType.SliceT
    const slice = new StructWriter(w);
    slice.field(0);
    const common = new StructWriter(w);
    common.field(1).int(STRINGS_ID); // the element type of a map has no name
    common.end();
    slice.field(1).int(STRING);
    slice.end();
    wire.end();
  }),
  structTypeDefinition(OPTIONS_ID, 'Options', [
    ['Priority', INT],
    ['Pipeline', STRING],
    ['Delay', INT],
    ['AutoAck', BOOL],
    ['Queue', STRING],
  ]),
]);

/** The bytes `gob.NewEncoder(w).Encode(item)` writes in a fresh Go process (header keys sorted; Go's order is random). */
export function encodeItem(item: GobItem): Buffer {
  const value = message((w) => {
    w.int(ITEM_ID);
    const s = new StructWriter(w);
    if (item.job !== '') s.field(0).string(item.job);
    if (item.id !== '') s.field(1).string(item.id);
    if (item.payload.length > 0) s.field(2).string(item.payload);
    const keys = Object.keys(item.headers).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    s.field(3).uint(keys.length); // a non-nil map is sent even when empty
    for (const key of keys) {
      w.string(key);
      const list = item.headers[key] ?? [];
      w.uint(list.length);
      for (const v of list) w.string(v);
    }
    s.field(4);
    const o = new StructWriter(w);
    if (item.priority !== 0) o.field(0).int(item.priority);
    if (item.pipeline !== '') o.field(1).string(item.pipeline);
    if (item.delay !== 0) o.field(2).int(item.delay);
    if (item.autoAck) o.field(3).uint(1);
    if (item.queue !== '') o.field(4).string(item.queue);
    o.end();
    s.end();
  });
  return Buffer.concat([TYPE_DEFINITIONS, value]);
}

// --- decoding --------------------------------------------------------------------------------------------------------

type WireType =
  | { kind: 'struct'; name: string; fields: Array<{ name: string; id: number }> }
  | { kind: 'slice'; elem: number }
  | { kind: 'array'; elem: number; len: number }
  | { kind: 'map'; key: number; elem: number };

type GobValue = boolean | number | bigint | string | Buffer | GobValue[] | Map<GobValue, GobValue> | { [field: string]: GobValue };

class Reader {
  offset = 0;

  constructor(private readonly bytes: Buffer) {}

  remaining(): number {
    return this.bytes.length - this.offset;
  }

  get atEnd(): boolean {
    return this.offset >= this.bytes.length;
  }

  private byte(): number {
    if (this.offset >= this.bytes.length) throw new GobError('gob: the data ends in the middle of a value');
    return this.bytes[this.offset++]!;
  }

  bigUint(): bigint {
    const first = this.byte();
    if (first < 0x80) return BigInt(first);
    const count = 256 - first;
    if (count > 8) throw new GobError(`gob: an unsigned integer of ${count} bytes`);
    let value = 0n;
    for (let i = 0; i < count; i++) value = (value << 8n) | BigInt(this.byte());
    return value;
  }

  uint(): number {
    const value = this.bigUint();
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new GobError('gob: a length or count out of range');
    return Number(value);
  }

  int(): number {
    const u = this.bigUint();
    const v = u & 1n ? ~(u >> 1n) : u >> 1n;
    return Number(v);
  }

  bytesOf(length: number): Buffer {
    if (this.offset + length > this.bytes.length) throw new GobError('gob: the data ends in the middle of a value');
    const out = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return out;
  }

  /** Reads struct fields, calling `onField` with each field number; stops at the terminating 0. */
  struct(onField: (index: number) => void): void {
    let index = -1;
    for (;;) {
      const delta = this.uint();
      if (delta === 0) return;
      index += delta;
      onField(index);
    }
  }
}

function readCommon(r: Reader): { name: string; id: number } {
  const common = { name: '', id: 0 };
  r.struct((i) => {
    if (i === 0) common.name = r.bytesOf(r.uint()).toString('utf8');
    else if (i === 1) common.id = r.int();
    else throw new GobError(`gob: unknown CommonType field ${i}`);
  });
  return common;
}

/** A wireType message: the id it defines and its shape. */
function readWireType(r: Reader): WireType {
  let wire: WireType | null = null;
  r.struct((which) => {
    switch (which) {
      case 0: {
        const a = { kind: 'array' as const, elem: 0, len: 0 };
        r.struct((i) => (i === 0 ? readCommon(r) : i === 1 ? (a.elem = r.int()) : (a.len = r.int())));
        wire = a;
        break;
      }
      case 1: {
        const s = { kind: 'slice' as const, elem: 0 };
        r.struct((i) => (i === 0 ? readCommon(r) : (s.elem = r.int())));
        wire = s;
        break;
      }
      case 2: {
        const s = { kind: 'struct' as const, name: '', fields: [] as Array<{ name: string; id: number }> };
        r.struct((i) => {
          if (i === 0) s.name = readCommon(r).name;
          else {
            const count = r.uint();
            for (let f = 0; f < count; f++) {
              const field = { name: '', id: 0 };
              r.struct((j) => (j === 0 ? (field.name = r.bytesOf(r.uint()).toString('utf8')) : (field.id = r.int())));
              s.fields.push(field);
            }
          }
        });
        wire = s;
        break;
      }
      case 3: {
        const m = { kind: 'map' as const, key: 0, elem: 0 };
        r.struct((i) => (i === 0 ? readCommon(r) : i === 1 ? (m.key = r.int()) : (m.elem = r.int())));
        wire = m;
        break;
      }
      default:
        throw new GobError('gob: a GobEncoder, BinaryMarshaler or TextMarshaler type, which no Item field has');
    }
  });
  if (!wire) throw new GobError('gob: an empty type definition');
  return wire;
}

function readValue(r: Reader, id: number, types: Map<number, WireType>, depth: number): GobValue {
  if (depth > 16) throw new GobError('gob: values nested too deep');
  switch (id) {
    case BOOL:
      return r.uint() !== 0;
    case INT:
      return r.int();
    case UINT:
      return r.uint();
    case FLOAT:
      return Number(r.bigUint());
    case BYTES:
      return Buffer.from(r.bytesOf(r.uint()));
    case STRING:
      return r.bytesOf(r.uint()).toString('utf8');
  }
  const type = types.get(id);
  if (!type) throw new GobError(`gob: type id ${id} was not defined`);
  switch (type.kind) {
    case 'struct': {
      const out: { [field: string]: GobValue } = {};
      r.struct((i) => {
        const field = type.fields[i];
        if (!field) throw new GobError(`gob: field ${i} of ${type.name} is not in its definition`);
        out[field.name] = readValue(r, field.id, types, depth + 1);
      });
      return out;
    }
    case 'slice':
    case 'array': {
      const count = r.uint();
      if (count > r.remaining()) throw new GobError('gob: a slice longer than the data');
      const out: GobValue[] = [];
      for (let i = 0; i < count; i++) out.push(readValue(r, type.elem, types, depth + 1));
      return out;
    }
    case 'map': {
      const count = r.uint();
      if (count > r.remaining()) throw new GobError('gob: a map larger than the data');
      const out = new Map<GobValue, GobValue>();
      for (let i = 0; i < count; i++) out.set(readValue(r, type.key, types, depth + 1), readValue(r, type.elem, types, depth + 1));
      return out;
    }
  }
}

/**
 * Decodes one gob stream holding a struct value: the type definitions before it, then the value. Throws GobError
 * when the bytes are not gob (a body put by another client), so the driver can wrap them as RoadRunner does.
 */
export function decodeItem(body: Buffer): GobItem {
  const r = new Reader(body);
  const types = new Map<number, WireType>();
  for (;;) {
    if (r.atEnd) throw new GobError('gob: no value after the type definitions');
    const length = r.uint();
    const end = r.offset + length;
    if (length === 0 || end > body.length) throw new GobError('gob: a message length past the end of the data');
    const id = r.int();
    if (id < 0) {
      types.set(-id, readWireType(r));
      continue;
    }
    const type = types.get(id);
    if (!type || type.kind !== 'struct') throw new GobError(`gob: the value's type ${id} is not a struct`);
    const value = readValue(r, id, types, 0) as { [field: string]: GobValue };
    if (r.offset !== end) throw new GobError('gob: a value shorter than its message');
    return toItem(value);
  }
}

function toItem(value: { [field: string]: GobValue }): GobItem {
  const options = (isStruct(value.Options) ? value.Options : {}) as { [field: string]: GobValue };
  const headers: Record<string, string[]> = {};
  if (value.Hdrs instanceof Map) {
    for (const [key, list] of value.Hdrs) {
      if (typeof key === 'string' && Array.isArray(list)) headers[key] = list.filter((v): v is string => typeof v === 'string');
    }
  }
  return {
    job: typeof value.Job === 'string' ? value.Job : '',
    id: typeof value.Ident === 'string' ? value.Ident : '',
    payload: Buffer.isBuffer(value.Payload) ? value.Payload : Buffer.alloc(0),
    headers,
    priority: typeof options.Priority === 'number' ? options.Priority : 0,
    pipeline: typeof options.Pipeline === 'string' ? options.Pipeline : '',
    delay: typeof options.Delay === 'number' ? options.Delay : 0,
    autoAck: options.AutoAck === true,
    queue: typeof options.Queue === 'string' ? options.Queue : '',
  };
}

function isStruct(value: GobValue | undefined): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Map) && !Buffer.isBuffer(value);
}
