// A free TCP port on loopback, for tests that start servers of their own (rrts, RabbitMQ).
import net from 'node:net';

// Below the kernel's ephemeral range (32768-60999 by default), so no client socket of a test takes the port between
// this check and the server's bind; and never the same port twice in one test process, which port 0 can give.
const FIRST = 20_000;
const COUNT = 12_000;
const ATTEMPTS = 50;
const handedOut = new Set<number>();

export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const port = FIRST + Math.floor(Math.random() * COUNT);
    if (handedOut.has(port)) continue;
    if (await bindable(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free loopback port in ${FIRST}-${FIRST + COUNT - 1} after ${ATTEMPTS} attempts`);
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}
