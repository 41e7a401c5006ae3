// Starting listeners the same way everywhere: resolve once listening (reject on EADDRINUSE and the like), and answer
// malformed HTTP with a 400 instead of letting Node drop the connection silently.
import type http from 'node:http';
import type net from 'node:net';
import type { Logger } from 'pino';
import { splitAddress } from './address.js';

export function listenOn(server: net.Server, options: net.ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Listen on a RoadRunner `host:port` address (`:port` = every interface). */
export function listenOnAddress(server: net.Server, address: string): Promise<void> {
  const { host, port } = splitAddress(address);
  return listenOn(server, { host, port });
}

/** Stop listening and drop every connection at once (the metrics and status endpoints: nothing to finish). */
export function closeNow(server: http.Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  return closed;
}

/** Answer malformed HTTP with 400 and close, logging at debug. */
export function refuseMalformedRequests(server: http.Server, log: Logger, what: string): void {
  server.on('clientError', (err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else socket.destroy();
    log.debug({ err: err.message }, `malformed ${what} request refused`);
  });
}
