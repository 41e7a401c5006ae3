// A jobs worker's answer (docs/jobs.md §2.4): the JSON body `{"type":T,"data":D}` the PHP SDK sends, and what it
// means for the job's driver. Pure: the plugin logs and settles.
import type { DeliveredJob, JobHeaders } from './driver.js';

/** The SDK's answer types (spiral/roadrunner-jobs Type). */
export const AnswerType = { NO_ERROR: 0, ERROR: 1, ACK: 2, NACK: 3, REQUEUE: 4 } as const;

export type Answer =
  | {
      kind: 'settle';
      settle: (job: DeliveredJob) => Promise<void>;
      /** a line to log at warn level (fail() without requeue, an unknown type) */
      log?: string;
      message?: string;
    }
  /** not the protocol's (not JSON, empty, data missing): counted as an error and acked, as RoadRunner does */
  | { kind: 'invalid'; reason: string };

interface AnswerData {
  message: string;
  delaySeconds: number;
  headers: JobHeaders;
  requeue: boolean;
}

const ACKED: Answer = { kind: 'settle', settle: (job) => job.ack() };
/** The SDK's complete() and ack(), byte for byte (docs/jobs.md §2.4): nearly every answer, known without JSON.parse. */
const COMPLETE = Buffer.from('{"type":0,"data":[]}');
const ACK = Buffer.from('{"type":2,"data":[]}');

export function handleAnswer(body: Buffer): Answer {
  if (body.length === ACK.length && (body.equals(ACK) || body.equals(COMPLETE))) return ACKED;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch (err) {
    return { kind: 'invalid', reason: body.length === 0 ? 'the answer is empty' : `the answer is not JSON: ${(err as Error).message}` };
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return { kind: 'invalid', reason: 'the answer is not a JSON object' };
  const { type, data } = parsed as { type?: unknown; data?: unknown };
  const kind = typeof type === 'number' && Number.isInteger(type) && type >= 0 ? type : -1;
  if (kind === -1) return { kind: 'invalid', reason: `the answer's type is not a whole number: ${JSON.stringify(type)}` };
  switch (kind) {
    case AnswerType.NO_ERROR:
    case AnswerType.ACK:
      return ACKED;
    case AnswerType.ERROR:
    case AnswerType.NACK:
    case AnswerType.REQUEUE: {
      const d = readData(data);
      if (typeof d === 'string') return { kind: 'invalid', reason: d };
      if (kind === AnswerType.NACK) return { kind: 'settle', settle: (job) => job.nackWithOptions(d.requeue, d.delaySeconds) };
      if (kind === AnswerType.REQUEUE || d.requeue) return { kind: 'settle', settle: (job) => job.requeue(d.headers, d.delaySeconds) };
      return { kind: 'settle', settle: (job) => job.ack(), log: 'jobs protocol error', message: d.message };
    }
    default:
      return { kind: 'settle', settle: (job) => job.ack(), log: `unknown response type ${kind}, acknowledging the JOB` };
  }
}

/** `data` of types 1, 3 and 4, as Go decodes it into {message, delay_seconds, headers, requeue}; a string says why not. */
function readData(data: unknown): AnswerData | string {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return `the answer's data is missing or not an object: ${JSON.stringify(data)}`;
  const d = data as Record<string, unknown>;
  const message = d.message === undefined || d.message === null ? '' : d.message;
  if (typeof message !== 'string') return 'data.message is not a string';
  const delay = d.delay_seconds ?? 0;
  if (typeof delay !== 'number' || !Number.isInteger(delay)) return 'data.delay_seconds is not a whole number';
  const requeue = d.requeue ?? false;
  if (typeof requeue !== 'boolean') return 'data.requeue is not true or false';
  const headers = readHeaders(d.headers);
  if (headers === null) return 'data.headers is not a map of string lists';
  return { message, delaySeconds: Math.max(0, delay), headers, requeue };
}

function readHeaders(value: unknown): JobHeaders | null {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) return null;
  const headers: JobHeaders = {};
  for (const [key, list] of Object.entries(value as Record<string, unknown>)) {
    if (list === null) {
      headers[key] = [];
      continue;
    }
    if (!Array.isArray(list) || !list.every((v) => typeof v === 'string')) return null;
    headers[key] = list;
  }
  return headers;
}
