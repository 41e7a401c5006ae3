// A new connection's first message: the worker's pid answer (socket relay) or a fork master's hello (control socket).
import type net from 'node:net';
import type { Frame, FrameDecoder } from '../goridge/frame.js';

/**
 * Read `socket` until `decoder` has at least one whole frame, then stop listening and hand over every frame decoded
 * so far. Fails (once) with why: a malformed frame, or nothing whole within `timeoutMs` (`late` says it). With
 * `onClosed`, a socket that closes before a whole frame ends the wait at once and says how many bytes it sent.
 */
export function onFirstFrames(
  socket: net.Socket,
  decoder: FrameDecoder,
  timeoutMs: number,
  late: string,
  onFrames: (frames: Frame[]) => void,
  onFail: (why: string) => void,
  onClosed?: (bytesSent: number) => void,
): void {
  let bytesSent = 0;
  const stop = (): void => {
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('close', onClose);
  };
  const timer = setTimeout(() => {
    stop();
    onFail(late);
  }, timeoutMs);
  function onClose(): void {
    stop();
    onClosed?.(bytesSent);
  }
  function onData(chunk: Buffer): void {
    bytesSent += chunk.length;
    let frames: Frame[];
    try {
      frames = decoder.push(chunk);
    } catch (err) {
      stop();
      onFail((err as Error).message);
      return;
    }
    if (frames.length === 0) return;
    stop();
    onFrames(frames);
  }
  socket.on('data', onData);
  if (onClosed) socket.on('close', onClose);
}
