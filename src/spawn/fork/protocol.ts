// The fork control protocol (docs/protocol.md §6) as types: every message rrts sends to a root or a generation master
// and every one they send back, with a decoder that checks each field, so a message that does not match is a
// ProtocolError naming the op and the field instead of a cast. The PHP mirror is php/lib/Fork/Protocol.php.
import { ProtocolError } from '../../errors.js';

/** A request id as rrts sends it; the PHP side echoes whatever came (nil when it was absent). */
export type RequestId = number;

// rrts -> root
export interface GenerationRequest {
  op: 'generation';
  /** what the new master sets before its preload: its pool's RR_MODE and RR_RELAY (pools share a root) */
  env?: Record<string, string>;
  /** the pool's output socket: the master (from its preload on) and its children connect their stdout and stderr to it */
  output?: string;
}
// rrts -> root or master
export interface PingRequest {
  op: 'ping';
}
// rrts -> master
export interface ForkRequest {
  op: 'fork';
  env: Record<string, string>;
}
export interface ReapRequest {
  op: 'reap';
  pid: number;
}
/** how many children to keep parked from now on (a pool's own count; the root's --spares until then) */
export interface SparesRequest {
  op: 'spares';
  count: number;
}

/** What rrts asks a root. */
export type RootRequest = GenerationRequest | PingRequest;
/** What rrts asks a generation master. */
export type MasterRequest = ForkRequest | ReapRequest | SparesRequest | PingRequest;
export type Request = RootRequest | MasterRequest;

/** Sent once by a root (after its warm-up) and by a master (after its preload). */
export interface ReadyMessage {
  op: 'ready';
  pid: number;
  php: string;
  opcache: boolean;
  preload: string | null;
  resources: number;
  /** the root only */
  root?: true;
  /** the root only: a reset may share its opcache (opcache_get_status() answers, so changed files are found) */
  warm?: boolean;
  /** a master given an output socket: its children connect their own stdout and stderr (true), or why they cannot */
  output?: boolean | string;
}

/** The first frame on a generation master's connection to the control socket. */
export interface HelloMessage {
  op: 'hello';
  pid: number;
}

/** An unknown op, or the like: an event, with the request's id when it had one. */
export interface ErrorMessage {
  op: 'error';
  id?: unknown;
  error: string;
}

export interface GenerationAnswer {
  op: 'generation';
  id: unknown;
  pid: number;
}
export interface GenerationFailed {
  op: 'generation_failed';
  id: unknown;
  error: string;
}
export interface RootPong {
  op: 'pong';
  id: unknown;
  masters: number;
}
/** A generation master exited and the root reaped it. */
export interface MasterExited {
  op: 'exited';
  pid: number;
  code: number | null;
  signal: number | null;
}

export interface Forked {
  op: 'forked';
  id: unknown;
  pid: number;
}
export interface ForkFailed {
  op: 'fork_failed';
  id: unknown;
  error: string;
}
export interface Reaped {
  op: 'reaped';
  id?: unknown;
  pid: number;
  /** false with no error: the child is still running */
  done: boolean;
  code: number | null;
  signal: number | null;
  error: string | null;
}
export interface SparesSet {
  op: 'spares';
  id: unknown;
  count: number;
}
export interface MasterPong {
  op: 'pong';
  id: unknown;
  children: number;
  spares: number;
  memory: number;
}

/** Everything a root sends rrts over its fd 3. */
export type RootMessage = ReadyMessage | GenerationAnswer | GenerationFailed | RootPong | MasterExited | ErrorMessage;
/** Everything a generation master sends rrts over its control connection (after its hello). */
export type MasterMessage = ReadyMessage | Forked | ForkFailed | Reaped | SparesSet | MasterPong | ErrorMessage;

/** Reads the fields of one decoded map, each checked; a mismatch names the op and the field. */
class Fields {
  constructor(
    private readonly raw: Record<string, unknown>,
    readonly op: string,
  ) {}

  has(name: string): boolean {
    return this.raw[name] !== undefined;
  }

  /** The id is echoed as it came: not checked. */
  id(): unknown {
    return this.raw.id;
  }

  int(name: string): number {
    const v = this.raw[name];
    if (typeof v === 'number' && Number.isInteger(v)) return v;
    // PHP sends ints beyond 32 bits as (u)int64, which msgpackr reads as a BigInt
    if (typeof v === 'bigint' && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
    throw this.mismatch(name, 'an integer', v);
  }

  intOrNull(name: string): number | null {
    return this.raw[name] == null ? null : this.int(name);
  }

  string(name: string): string {
    const v = this.raw[name];
    if (typeof v === 'string') return v;
    throw this.mismatch(name, 'a string', v);
  }

  stringOrNull(name: string): string | null {
    return this.raw[name] == null ? null : this.string(name);
  }

  bool(name: string): boolean {
    const v = this.raw[name];
    if (typeof v === 'boolean') return v;
    throw this.mismatch(name, 'a boolean', v);
  }

  boolOrString(name: string): boolean | string {
    const v = this.raw[name];
    if (typeof v === 'boolean' || typeof v === 'string') return v;
    throw this.mismatch(name, 'a boolean or a string', v);
  }

  private mismatch(name: string, expected: string, got: unknown): ProtocolError {
    return new ProtocolError(`'${this.op}' message: field '${name}' must be ${expected}, got ${describe(got)}`);
  }
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'nil';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return `${typeof v} ${String(v)}`;
  return Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'a map' : typeof v;
}

/** The op of a decoded payload; a ProtocolError when it is not a map with a string op. */
function fieldsOf(raw: unknown): Fields {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw) || raw instanceof Uint8Array) {
    throw new ProtocolError(`a control message must be a map, got ${describe(raw)}`);
  }
  const map = raw as Record<string, unknown>;
  if (typeof map.op !== 'string') throw new ProtocolError(`a control message needs a string 'op', got ${describe(map.op)}`);
  return new Fields(map, map.op);
}

function readyMessage(f: Fields): ReadyMessage {
  const ready: ReadyMessage = {
    op: 'ready',
    pid: f.int('pid'),
    php: f.string('php'),
    opcache: f.bool('opcache'),
    preload: f.stringOrNull('preload'),
    resources: f.int('resources'),
  };
  if (f.has('root')) {
    if (!f.bool('root')) throw new ProtocolError(`'ready' message: field 'root' must be true when present`);
    ready.root = true;
  }
  if (f.has('warm')) ready.warm = f.bool('warm');
  if (f.has('output')) ready.output = f.boolOrString('output');
  return ready;
}

function errorMessage(f: Fields): ErrorMessage {
  return f.has('id') ? { op: 'error', id: f.id(), error: f.string('error') } : { op: 'error', error: f.string('error') };
}

function unknownOp(f: Fields, who: string): ProtocolError {
  return new ProtocolError(`unknown op '${f.op}' from ${who}`);
}

/** A message from a root, checked. */
export function decodeRootMessage(raw: unknown): RootMessage {
  const f = fieldsOf(raw);
  switch (f.op) {
    case 'ready':
      return readyMessage(f);
    case 'generation':
      return { op: 'generation', id: f.id(), pid: f.int('pid') };
    case 'generation_failed':
      return { op: 'generation_failed', id: f.id(), error: f.string('error') };
    case 'pong':
      return { op: 'pong', id: f.id(), masters: f.int('masters') };
    case 'exited':
      return { op: 'exited', pid: f.int('pid'), code: f.intOrNull('code'), signal: f.intOrNull('signal') };
    case 'error':
      return errorMessage(f);
    default:
      throw unknownOp(f, 'a fork root');
  }
}

/** A message from a generation master (after its hello), checked. */
export function decodeMasterMessage(raw: unknown): MasterMessage {
  const f = fieldsOf(raw);
  switch (f.op) {
    case 'ready':
      return readyMessage(f);
    case 'forked':
      return { op: 'forked', id: f.id(), pid: f.int('pid') };
    case 'fork_failed':
      return { op: 'fork_failed', id: f.id(), error: f.string('error') };
    case 'reaped':
      return {
        op: 'reaped',
        ...(f.has('id') ? { id: f.id() } : {}),
        pid: f.int('pid'),
        done: f.bool('done'),
        code: f.intOrNull('code'),
        signal: f.intOrNull('signal'),
        error: f.stringOrNull('error'),
      };
    case 'spares':
      return { op: 'spares', id: f.id(), count: f.int('count') };
    case 'pong':
      return { op: 'pong', id: f.id(), children: f.int('children'), spares: f.int('spares'), memory: f.int('memory') };
    case 'error':
      return errorMessage(f);
    default:
      throw unknownOp(f, 'a fork master');
  }
}

/** The first frame of a control connection: a hello, checked. */
export function decodeHello(raw: unknown): HelloMessage {
  const f = fieldsOf(raw);
  if (f.op !== 'hello') throw new ProtocolError(`expected a 'hello' message, got '${f.op}'`);
  return { op: 'hello', pid: f.int('pid') };
}

/** Why a root or master answered a request with something other than success: its error text, or the op. */
export function failureText(reply: RootMessage | MasterMessage): string {
  return 'error' in reply && typeof reply.error === 'string' ? reply.error : reply.op;
}

/**
 * The key a raw answer is matched to its request by: `reaped` by the child's pid (rrts may ask twice for one pid),
 * everything else by id; null for an event. Read before the message is checked, so a malformed answer still fails
 * the request that waits for it.
 */
export function answerKey(raw: unknown): string | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const map = raw as Record<string, unknown>;
  if (map.op === 'reaped') return `reap:${String(map.pid)}`;
  return map.id !== undefined && map.id !== null ? `id:${String(map.id)}` : null;
}
