// http2.h2c: one port for cleartext HTTP/2 with prior knowledge and HTTP/1.1. Node cannot do both on one server,
// so a plain TCP server looks at the first bytes of each connection: the HTTP/2 client preface goes to the HTTP/2
// server, anything else to the HTTP/1.1 server. `Upgrade: h2c` is not supported (as with Go's h2c, prior knowledge
// is what clients such as curl --http2-prior-knowledge and gRPC use).
import type http2 from 'node:http2';
import net from 'node:net';
import { Duplex } from 'node:stream';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/**
 * `http1` serves the HTTP/1.1 connections (their first bytes are put back in the socket). `firstBytesTimeoutMs`: a
 * connection that sends too little to be routed within it is closed.
 */
export function h2cOrHttp1(http1: (socket: net.Socket) => void, h2: http2.Http2Server, firstBytesTimeoutMs: number): net.Server {
  return net.createServer((socket) => {
    let seen: Buffer = Buffer.alloc(0);
    const onTimeout = (): void => {
      socket.destroy();
    };
    socket.setTimeout(firstBytesTimeoutMs, onTimeout);
    const detach = (): void => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.setTimeout(0);
      socket.off('timeout', onTimeout);
      socket.pause();
    };
    const onData = (chunk: Buffer): void => {
      seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, PREFACE.length);
      if (!seen.subarray(0, n).equals(PREFACE.subarray(0, n))) {
        // The HTTP/1.1 server reads what was put back in the socket's buffer.
        detach();
        socket.unshift(seen);
        http1(socket);
        socket.resume();
      } else if (seen.length >= PREFACE.length) {
        // The HTTP/2 server reads the socket's native handle and would miss bytes put back: give it a stream
        // that replays them first.
        detach();
        h2.emit('connection', new ReplayedSocket(socket, seen));
      }
    };
    const onEnd = (): void => {
      socket.destroy();
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
  });
}

/** A socket whose first bytes were already read: they are read again, then the rest of the socket. */
class ReplayedSocket extends Duplex {
  constructor(
    private readonly socket: net.Socket,
    head: Buffer,
  ) {
    super();
    this.push(head);
    socket.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) socket.pause();
    });
    socket.on('end', () => this.push(null));
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => this.destroy());
  }

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }
  get remotePort(): number | undefined {
    return this.socket.remotePort;
  }
  get remoteFamily(): string | undefined {
    return this.socket.remoteFamily;
  }
  get localAddress(): string | undefined {
    return this.socket.localAddress;
  }
  get localPort(): number | undefined {
    return this.socket.localPort;
  }
  address(): ReturnType<net.Socket['address']> {
    return this.socket.address();
  }
  setNoDelay(noDelay?: boolean): this {
    this.socket.setNoDelay(noDelay);
    return this;
  }
  setKeepAlive(enable?: boolean, delay?: number): this {
    this.socket.setKeepAlive(enable, delay);
    return this;
  }
  setTimeout(ms: number, callback?: () => void): this {
    this.socket.setTimeout(ms, callback);
    return this;
  }

  override _read(): void {
    this.socket.resume();
  }
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.socket.write(chunk, callback);
  }
  override _final(callback: (error?: Error | null) => void): void {
    this.socket.end(callback);
  }
  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.socket.destroy(error ?? undefined);
    callback(error);
  }
}
