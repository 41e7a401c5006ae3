// The messages between rrts's primary process and its HTTP front processes (http.front.processes > 1), over the
// cluster IPC channel: one discriminated union each way, checked field by field when decoded (docs/front.md §3).
import type { Config } from '../config/types.js';
import type { AddressInfo } from 'node:net';
import type { MetricsJson, WorkerState } from '../plugin.js';
import type { WorkerRecipe } from '../spawn/spawner.js';

/** What the primary can ask every front; each asks its own pool or HttpPlugin. */
export type FrontCallOp = 'workers' | 'addWorker' | 'removeWorker' | 'reset' | 'status' | 'ready' | 'metrics';

/** The answer of each call, by op. */
export interface FrontCallResults {
  workers: WorkerState[];
  addWorker: null;
  removeWorker: null;
  reset: null;
  status: number;
  ready: number;
  metrics: MetricsJson;
}

// primary -> front
export interface StartMessage {
  t: 'start';
  /** 0-based, stable across a replacement: the front's place in the split of the pool */
  index: number;
  /** the whole config, http.pool already cut to this front's share */
  config: Config;
}
export interface CallMessage {
  t: 'call';
  id: number;
  op: FrontCallOp;
  /** reset only: a reload's new recipe */
  recipe?: WorkerRecipe;
}
export interface StopMessage {
  t: 'stop';
  graceMs: number;
}
/** Fork mode: the shared root's answer to a `root` or `generation` request. */
export interface RootReply {
  t: 'rootReply';
  id: number;
  /** root: the shared root's pid and ready info; generation: the new master's pid (its socket is the handle) */
  pid: number;
  info?: Record<string, unknown>;
  /** the master's frames read with its hello, payloads only */
  frames?: Uint8Array[];
  error?: string;
  /** the root refused the generation (its opcache is full or wasted) */
  refused?: boolean;
}
/** Fork mode: a master of this front exited (the root reaped it), or the shared root itself did (pid of the root). */
export interface RootEvent {
  t: 'rootEvent';
  kind: 'masterExited' | 'rootExited';
  /** the root's id as the front knows it (rootReply's pid of a `root` request) */
  root: number;
  pid: number;
  code: number | null;
  signal: string | null;
}
export type ToFront = StartMessage | CallMessage | StopMessage | RootReply | RootEvent;

// front -> primary
/** Its listener is on: an ES module's top level runs after cluster's 'online', whose messages would be lost. */
export interface HelloMessage {
  t: 'hello';
}
export interface StartedMessage {
  t: 'started';
  /** the bound addresses (the shared sockets'), for the start-up summary */
  address: AddressInfo | null;
  tlsAddress: AddressInfo | null;
}
export interface FailedMessage {
  t: 'failed';
  error: string;
}
export interface ReplyMessage {
  t: 'reply';
  id: number;
  /** null when the call failed */
  value: unknown;
  error?: string;
}
/** What the pool reports, for the primary's metrics. */
export interface PoolEvent {
  t: 'poolEvent';
  kind: 'workerStarted' | 'masterRestarted';
  seconds?: number;
}
/** Fork mode: get the shared root for this recipe (started by the first front that asks), or a master from it. */
export interface RootRequest {
  t: 'rootRequest';
  id: number;
  op: 'root' | 'generation' | 'release';
  /** the recipe's key: fronts with the same one share the root */
  key: string;
  /** root only: the root's command, preload, spares and environment (RR_RELAY is each fork's own) */
  spec?: RootSpec;
  /** generation and release: the root's pid from the `root` answer */
  root?: number;
  /** root only: a fresh root even when one runs (the running one refused a generation) */
  fresh?: boolean;
  /** generation only: the front's RR_MODE and RR_RELAY, set in the new master before its preload */
  env?: Record<string, string>;
  /** generation only: the front pool's output socket, which the master and its workers write to */
  output?: string;
}
export interface RootSpec {
  command: { php: string; flags: string[]; script: string; args: string[] };
  preload: string | null;
  spares: number;
  env: Record<string, string>;
  cwd: string;
  readyTimeoutMs: number;
}
export interface StoppedMessage {
  t: 'stopped';
}
export type FromFront = HelloMessage | StartedMessage | FailedMessage | ReplyMessage | PoolEvent | RootRequest | StoppedMessage;

export class FrontMessageError extends Error {}

type Fields = Record<string, unknown>;

function fields(raw: unknown, from: string): Fields {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new FrontMessageError(`${from}: not a message: ${typeof raw}`);
  return raw as Fields;
}

function need(m: Fields, key: string, type: 'number' | 'string' | 'object' | 'boolean', from: string): void {
  const v = m[key];
  if (typeof v !== type || v === null) throw new FrontMessageError(`${from}: '${String(m.t)}' needs ${key} (${type}), got ${v === null ? 'null' : typeof v}`);
}

function oneOf<T extends string>(m: Fields, key: string, values: readonly T[], from: string): void {
  if (!values.includes(m[key] as T))
    throw new FrontMessageError(`${from}: '${String(m.t)}' has ${key} ${JSON.stringify(m[key])}, expected ${values.join(', ')}`);
}

const CALL_OPS: readonly FrontCallOp[] = ['workers', 'addWorker', 'removeWorker', 'reset', 'status', 'ready', 'metrics'];

/** A message the front got from the primary; throws FrontMessageError naming the field that does not fit. */
export function decodeToFront(raw: unknown): ToFront {
  const from = 'message from the rrts primary';
  const m = fields(raw, from);
  switch (m.t) {
    case 'start':
      need(m, 'index', 'number', from);
      need(m, 'config', 'object', from);
      break;
    case 'call':
      need(m, 'id', 'number', from);
      oneOf(m, 'op', CALL_OPS, from);
      break;
    case 'stop':
      need(m, 'graceMs', 'number', from);
      break;
    case 'rootReply':
      need(m, 'id', 'number', from);
      need(m, 'pid', 'number', from);
      break;
    case 'rootEvent':
      oneOf(m, 'kind', ['masterExited', 'rootExited'], from);
      need(m, 'root', 'number', from);
      need(m, 'pid', 'number', from);
      break;
    default:
      throw new FrontMessageError(`${from}: unknown type ${JSON.stringify(m.t)}`);
  }
  return m as unknown as ToFront;
}

/** A message the primary got from a front (`who` names it: pid and index); throws FrontMessageError. */
export function decodeFromFront(raw: unknown, who: string): FromFront | null {
  const from = `message from ${who}`;
  const m = fields(raw, from);
  // cluster's own messages (`cmd: NODE_CLUSTER`) share the channel; they are not ours
  if (typeof m.cmd === 'string' && m.cmd.startsWith('NODE_')) return null;
  switch (m.t) {
    case 'hello':
    case 'started':
    case 'stopped':
      break;
    case 'failed':
      need(m, 'error', 'string', from);
      break;
    case 'reply':
      need(m, 'id', 'number', from);
      break;
    case 'poolEvent':
      oneOf(m, 'kind', ['workerStarted', 'masterRestarted'], from);
      break;
    case 'rootRequest':
      need(m, 'id', 'number', from);
      oneOf(m, 'op', ['root', 'generation', 'release'], from);
      need(m, 'key', 'string', from);
      if (m.op === 'root') need(m, 'spec', 'object', from);
      else need(m, 'root', 'number', from);
      if (m.env !== undefined) need(m, 'env', 'object', from);
      if (m.output !== undefined) need(m, 'output', 'string', from);
      break;
    default:
      throw new FrontMessageError(`${from}: unknown type ${JSON.stringify(m.t)}`);
  }
  return m as unknown as FromFront;
}
