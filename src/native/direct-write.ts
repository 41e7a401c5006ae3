// Whole buffers written on a socket's fd with one write(2) (the native addon's writeSome), for the hot path's job
// frames and answers: the stream layer's bookkeeping per write costs more than the syscall's own JS side. What the
// kernel does not take, and every write while the stream still holds bytes, goes through the stream, in order.
import type { Socket } from 'node:net';
import { getSystemErrorName } from 'node:util';
import { addonFunction, type NativeAddon } from './index.js';

/** The addon's writeSome once looked up (null: the stream only); kept here, not behind a call, for the hot path. */
let writeSome: NativeAddon['writeSome'] | null | undefined;

/**
 * Writes `bytes` on `socket` as `socket.write(bytes)` would, keeping the order of everything written on it: straight
 * to the fd when the stream holds nothing (not TLS, not connecting, not ended), the rest through the stream when
 * the kernel takes only part of it (EAGAIN included). A failed write destroys the socket with the error the stream
 * would have raised (`write EPIPE`, `write ECONNRESET`, ...), so its listeners see what they saw before.
 */
export function writeWhole(socket: Socket, bytes: Uint8Array): void {
  const write = writeSome === undefined ? (writeSome = addonFunction('writeSome')) : writeSome;
  if (write !== null && socket.writableLength === 0 && !socket.destroyed && !socket.writableEnded && !socket.connecting && !isTls(socket)) {
    // The fd is read from the live handle each time: a cached one could be a newer connection's after a close.
    const fd = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd;
    if (typeof fd === 'number' && fd >= 0) {
      const written = write(fd, bytes);
      if (written === bytes.length) return;
      if (written < 0) {
        const code = getSystemErrorName(written);
        socket.destroy(Object.assign(new Error(`write ${code}`), { errno: written, code, syscall: 'write' }));
        return;
      }
      if (written > 0) bytes = bytes.subarray(written);
    }
  }
  socket.write(bytes);
}

function isTls(socket: Socket): boolean {
  return (socket as Socket & { encrypted?: boolean }).encrypted === true;
}
