// A raw HTTP/1.1 client over node:net for the tests that must see the bytes on the wire: the exact answer to a
// refused request, a body cut at its Content-Length, what follows it on a keep-alive connection.
import net from 'node:net';

export interface RawHead {
  statusLine: string;
  status: number;
  /** Header lines in order, names lower-cased. */
  headers: Array<[string, string]>;
}

export class RawConnection {
  private buffer = Buffer.alloc(0);
  private ended = false;
  private wake: (() => void) | null = null;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.notify();
    });
    socket.on('end', () => this.finish());
    socket.on('close', () => this.finish());
    socket.on('error', () => this.finish());
  }

  static open(port: number): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new RawConnection(socket));
      });
      socket.once('error', reject);
    });
  }

  /** The server closed (or reset) the connection. */
  get closed(): boolean {
    return this.ended;
  }

  /** Bytes received and not read yet. */
  get unread(): Buffer {
    return this.buffer;
  }

  send(data: string | Buffer): void {
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(data);
  }

  /** Reads up to the blank line ending a response head; null if the connection ends first. */
  async readHead(timeoutMs = 10_000): Promise<RawHead | null> {
    await this.until(() => this.buffer.includes('\r\n\r\n'), timeoutMs);
    const end = this.buffer.indexOf('\r\n\r\n');
    if (end < 0) return null;
    const lines = this.buffer.subarray(0, end).toString('latin1').split('\r\n');
    this.buffer = this.buffer.subarray(end + 4);
    const statusLine = lines[0]!;
    const headers = lines.slice(1).map((line): [string, string] => {
      const colon = line.indexOf(':');
      return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()];
    });
    return { statusLine, status: Number(statusLine.split(' ')[1]), headers };
  }

  /** Reads `n` bytes, or fewer when the connection ends first. */
  async readBytes(n: number, timeoutMs = 10_000): Promise<Buffer> {
    await this.until(() => this.buffer.length >= n, timeoutMs);
    const out = this.buffer.subarray(0, n);
    this.buffer = this.buffer.subarray(out.length);
    return out;
  }

  /** Everything until the server closes; throws if it is still open after `timeoutMs` (a hang). */
  async readToClose(timeoutMs = 10_000): Promise<Buffer> {
    await this.until(() => false, timeoutMs);
    if (!this.ended) throw new Error(`the connection was still open after ${timeoutMs} ms: ${JSON.stringify(this.buffer.toString('latin1'))}`);
    const out = this.buffer;
    this.buffer = Buffer.alloc(0);
    return out;
  }

  /** Reads a chunked body (sizes, data, the last chunk and its CRLF); null if the connection ends first. */
  async readChunked(timeoutMs = 10_000): Promise<Buffer | null> {
    const parts: Buffer[] = [];
    for (let i = 0; i < 10_000; i++) {
      await this.until(() => this.buffer.includes('\r\n'), timeoutMs);
      const eol = this.buffer.indexOf('\r\n');
      if (eol < 0) return null;
      const size = parseInt(this.buffer.subarray(0, eol).toString('latin1'), 16);
      this.buffer = this.buffer.subarray(eol + 2);
      const data = await this.readBytes(size + 2, timeoutMs);
      if (data.length < size + 2) return null;
      if (size === 0) return Buffer.concat(parts);
      parts.push(data.subarray(0, size));
    }
    throw new Error('more than 10000 chunks');
  }

  close(): void {
    this.socket.destroy();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  private finish(): void {
    this.ended = true;
    this.notify();
  }

  /** Waits until `ready()`, the end of the connection, or the timeout, whichever comes first. */
  private async until(ready: () => boolean, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!ready() && !this.ended) {
      const left = deadline - Date.now();
      if (left <= 0) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }
}

/** One request on a fresh connection; everything the server sends until it closes. */
export async function exchangeToClose(port: number, request: string | Buffer, timeoutMs = 10_000): Promise<string> {
  const conn = await RawConnection.open(port);
  try {
    conn.send(request);
    return (await conn.readToClose(timeoutMs)).toString('latin1');
  } finally {
    conn.close();
  }
}

export function headerValues(head: RawHead, name: string): string[] {
  return head.headers.filter(([n]) => n === name).map(([, v]) => v);
}
