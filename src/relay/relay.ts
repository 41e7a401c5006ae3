// A byte transport a worker talks over (its stdin/stdout pipes, or a socket), turned into goridge frames.
// One frame goes out in one write (docs/protocol.md §1.6); incoming bytes are decoded as they arrive.
import net from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { FrameDecoder, type Frame } from '../goridge/frame.js';
import { writeWhole } from '../native/direct-write.js';

export interface RelayHandlers {
  frame(frame: Frame): void;
  /** The byte stream broke the protocol, or the transport failed. Fatal for the worker. */
  error(err: Error): void;
  /** The peer closed its side. */
  close(): void;
}

export class FrameRelay {
  private handlers: RelayHandlers | null = null;
  private queued: Frame[] = [];
  private closed = false;
  /** The output is a pipe or socket with an fd: frames go to it by writeWhole, without the stream's bookkeeping. */
  private readonly outputSocket: net.Socket | null;

  constructor(
    readonly kind: 'pipes' | 'tcp' | 'unix',
    private readonly input: Readable,
    private readonly output: Writable,
    private readonly decoder: FrameDecoder = new FrameDecoder(),
    /** How the input's bytes reach the relay when they are not 'data' events (exec-pipes' onAnswerBytes). */
    readsFrom?: (receiver: (chunk: Buffer) => void) => void,
  ) {
    if (readsFrom) readsFrom((chunk) => this.onData(chunk));
    else input.on('data', (chunk: Buffer) => this.onData(chunk));
    input.on('end', () => this.onClose());
    input.on('close', () => this.onClose());
    input.on('error', (err) => this.onError(err));
    if (output !== (input as unknown)) output.on('error', (err) => this.onError(err));
    this.outputSocket = output instanceof net.Socket ? output : null;
  }

  /** Start delivering frames (frames that arrived before are delivered first). */
  attach(handlers: RelayHandlers): void {
    this.handlers = handlers;
    const early = this.queued;
    this.queued = [];
    for (const f of early) handlers.frame(f);
  }

  /** Write one whole frame. Returns false when the transport is closed. */
  send(frame: Buffer): boolean {
    if (this.closed || this.output.destroyed || this.output.writableEnded) return false;
    if (this.outputSocket !== null) writeWhole(this.outputSocket, frame);
    else this.output.write(frame);
    return true;
  }

  close(): void {
    this.closed = true;
    this.handlers = null;
    if (!this.output.destroyed) this.output.destroy();
    if (this.input !== (this.output as unknown) && !this.input.destroyed) this.input.destroy();
  }

  private onData(chunk: Buffer): void {
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      this.input.pause();
      for (const f of (err as { frames?: Frame[] }).frames ?? []) this.deliver(f);
      this.onError(err as Error);
      return;
    }
    for (const f of frames) this.deliver(f);
  }

  private deliver(f: Frame): void {
    if (this.handlers) this.handlers.frame(f);
    else this.queued.push(f);
  }

  private onError(err: Error): void {
    if (this.closed) return;
    this.handlers?.error(err);
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.handlers?.close();
  }
}
