// A new connection's first message: the worker's pid answer (socket relay) or a fork master's hello (control socket).
import type net from 'node:net';
import type { Frame, FrameDecoder } from '../goridge/frame.js';

/**
 * Read `socket` until `decoder` has at least one whole frame, then stop listening and hand over every frame decoded
 * so far. Fails (once) with why: a malformed frame, or nothing whole within `timeoutMs` (`late` says it).
 */
export function onFirstFrames(
  socket: net.Socket,
  decoder: FrameDecoder,
  timeoutMs: number,
  late: string,
  onFrames: (frames: Frame[]) => void,
  onFail: (why: string) => void,
): void {
  const timer = setTimeout(() => {
    socket.off('data', onData);
    onFail(late);
  }, timeoutMs);
  function onData(chunk: Buffer): void {
    let frames: Frame[];
    try {
      frames = decoder.push(chunk);
    } catch (err) {
      clearTimeout(timer);
      socket.off('data', onData);
      onFail((err as Error).message);
      return;
    }
    if (frames.length === 0) return;
    clearTimeout(timer);
    socket.off('data', onData);
    onFrames(frames);
  }
  socket.on('data', onData);
}
