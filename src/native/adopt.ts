// An accepted socket's connection moved into a net.Socket rrts creates, so that its reads can use `onread` (one
// reused buffer, no Readable push, 'data' emit and read-more nextTick per read): Node offers `onread` only to the
// sockets it creates from an fd or a connect, never to the ones a net.Server accepts.
import net from 'node:net';
import { addonFunction, loadNative, socketFd, type NativeAddon } from './index.js';

/** What the adopted socket calls for each read: `bytesRead` bytes at the start of `buffer`; false pauses it. */
export type OnreadCallback = (bytesRead: number, buffer: Buffer) => boolean | void;

export interface Adopted {
  /** The connection's new socket: reads go to the callback, writes, 'end', 'close' and 'error' as on any socket. */
  socket: net.Socket;
  /** Bytes the accepted socket had read and not handed on, to be taken before the first callback's. */
  early: Buffer[];
}

let dupCloexec: NativeAddon['dupCloexec'] | null | undefined;

/** The addon's dupCloexec, looked up once; null where it cannot be used. */
function duplicator(): NativeAddon['dupCloexec'] | null {
  return dupCloexec === undefined ? (dupCloexec = addonFunction('dupCloexec')) : dupCloexec;
}

/** Whether adoptConnection can work here (the addon has dupCloexec). */
export function canAdopt(): boolean {
  return duplicator() !== null;
}

/**
 * Moves the connection of `accepted` (a plain TCP or unix socket, not TLS) into a new socket that reads into
 * `buffer` and calls `callback`: a close-on-exec dup of its fd opened by `new net.Socket({ fd, onread })`, then the
 * accepted socket destroyed, which closes only its fd (no shutdown: the peer sees nothing). All of it runs in one
 * turn of the loop, so no read happens on the old fd after the bytes it buffered are taken. The new socket keeps
 * the accepted one's allowHalfOpen; the accepted socket's listeners see its 'close'. One `buffer` may serve many
 * sockets: each read's callback runs before the next read. Returns null, leaving `accepted` as it was, when the
 * addon or the fd is missing or the dup fails (EMFILE): the caller then reads the accepted socket's stream.
 */
export function adoptConnection(accepted: net.Socket, buffer: Buffer, callback: OnreadCallback): Adopted | null {
  const dup = duplicator();
  const fd = dup === null || accepted.destroyed ? null : socketFd(accepted);
  if (dup === null || fd === null) return null;
  let copy: number;
  try {
    copy = dup(fd);
  } catch {
    return null; // EMFILE, ENFILE: the connection goes on through its stream
  }
  let socket: net.Socket;
  try {
    // `onread` is documented for net.Socket but missing from @types/node's constructor options.
    const options = { fd: copy, readable: true, writable: true, allowHalfOpen: accepted.allowHalfOpen, onread: { buffer, callback } };
    socket = new net.Socket(options);
  } catch {
    loadNative()!.closeFd(copy);
    return null;
  }
  accepted.pause();
  const early: Buffer[] = [];
  for (let chunk: Buffer | null = accepted.read() as Buffer | null; chunk !== null; chunk = accepted.read() as Buffer | null) early.push(chunk);
  accepted.destroy();
  return { socket, early };
}
