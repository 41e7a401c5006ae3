// One fork control connection (docs/protocol.md §6.2): goridge frames carrying msgpack maps, requests matched to
// their answers, every incoming message checked by the protocol's decoder (protocol.ts) before anyone reads it.
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { Packr } from 'msgpackr';
import { encodeFrame, type FrameDecoder } from '../../goridge/frame.js';
import { Flag } from '../../goridge/flags.js';
import { ForkMasterGoneError, ForkMasterTimeoutError, ProtocolError } from '../../errors.js';
import { answerKey, type Request } from './protocol.js';

export const packr = new Packr({ useRecords: false, mapsAsObjects: true });

interface Pending<In> {
  op: string;
  resolve(msg: In): void;
  reject(err: Error): void;
}

const REQUEST_TIMEOUT_MS = 10_000;

/** One control connection: frames in and out, requests matched to answers, everything else to onMessage. */
export class ControlChannel<In extends { op: string }> {
  private readonly pending = new Map<string, Pending<In>>();
  private nextId = 1;
  private closedError: Error | null = null;
  private corked = false;

  /** @param decode checks a decoded payload (decodeRootMessage, decodeMasterMessage); throws a ProtocolError */
  constructor(
    private readonly stream: Duplex,
    private readonly decoder: FrameDecoder,
    private readonly describe: () => string,
    private readonly decode: (raw: unknown) => In,
    private readonly onMessage: (msg: In) => void,
    private readonly onBroken: (why: string) => void,
    private readonly log: Logger,
  ) {
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('error', () => undefined);
  }

  /** Frames that came in with the first one (read before this channel existed). */
  deliver(frames: Array<{ payload: Buffer }>): void {
    for (const frame of frames) this.onFrame(frame.payload);
  }

  request(msg: Request, key?: string): Promise<In> {
    if (this.closedError || this.stream.destroyed) {
      return Promise.reject(this.closedError ?? new ForkMasterGoneError(`${this.describe()} is not running`));
    }
    const id = this.nextId++;
    const pendingKey = key ?? `id:${id}`;
    return new Promise<In>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(pendingKey);
        reject(new ForkMasterTimeoutError(`${this.describe()} did not answer '${msg.op}' in time`));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(pendingKey, {
        op: msg.op,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.corkUntilNextTick();
      this.stream.write(encodeFrame({ flags: Flag.CODEC_MSGPACK, payload: packr.pack({ ...msg, id }) }));
    });
  }

  /**
   * Requests made in the same tick (the forks of a pool start or a reset) go out in one write, so the master reads
   * them as one burst and forks them back to back (docs/protocol.md §6.5).
   */
  private corkUntilNextTick(): void {
    if (this.corked) return;
    this.corked = true;
    this.stream.cork();
    process.nextTick(() => {
      this.corked = false;
      this.stream.uncork();
    });
  }

  /** Every request still waiting fails with this error, and so does every later one. */
  fail(err: Error): void {
    this.closedError ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  close(): void {
    this.stream.end();
    this.stream.destroy();
  }

  private onData(chunk: Buffer): void {
    let frames;
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      this.onBroken(`broke the control protocol: ${(err as Error).message}`);
      return;
    }
    for (const frame of frames) this.onFrame(frame.payload);
  }

  private onFrame(payload: Buffer): void {
    let raw: unknown;
    try {
      raw = packr.unpack(payload);
    } catch (err) {
      this.log.error(`unreadable message from ${this.describe()}: ${(err as Error).message}`);
      return;
    }
    const key = answerKey(raw);
    const pending = key === null ? undefined : this.pending.get(key);
    if (pending) this.pending.delete(key!);
    let msg: In;
    try {
      msg = this.decode(raw);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      const what = pending ? `its answer to '${pending.op}'` : 'a message';
      const error = new ProtocolError(`${this.describe()} sent ${what} that breaks the control protocol: ${err.message}`);
      if (pending) pending.reject(error);
      else this.log.error(error.message);
      return;
    }
    if (pending) pending.resolve(msg);
    else this.onMessage(msg);
  }
}
