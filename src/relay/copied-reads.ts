// A relay socket's reads into one reused buffer (net.Socket's `onread`), each read copied out and handed to one
// receiver in order: the decoder keeps partial frames and hands out frames as views of the chunks it got.

/** What one read takes at most: a pipe holds 64 KiB, and libuv's own reads ask for as much. */
export const RELAY_READ_BUFFER = 64 * 1024;

export class CopiedReads {
  /** The buffer the socket reads into, again and again. */
  readonly buffer: Buffer = Buffer.allocUnsafe(RELAY_READ_BUFFER);
  private receiver: ((chunk: Buffer) => void) | null = null;
  private early: Buffer[] = [];

  /** The socket's `onread` callback. */
  readonly callback = (bytesRead: number, buffer: Uint8Array): boolean => {
    // A copy: the buffer is read into again before a frame's body is written to its client.
    const chunk = Buffer.from(buffer.subarray(0, bytesRead));
    if (this.receiver !== null) this.receiver(chunk);
    else this.early.push(chunk);
    return true;
  };

  /** Bytes read before the socket was made (its accepted predecessor's): handed over before any read's. */
  prepend(chunks: Buffer[]): void {
    this.early = [...chunks, ...this.early];
  }

  /** Where the bytes go from now on; those read before it is set are handed over first, in order. */
  onBytes(receiver: (chunk: Buffer) => void): void {
    this.receiver = receiver;
    const before = this.early;
    this.early = [];
    for (const chunk of before) receiver(chunk);
  }
}
