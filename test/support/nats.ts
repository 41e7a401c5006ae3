// A private nats-server for tests (test/support/private-server.ts): JetStream (-js) with its own store directory.
import { PrivateServer, type ServerKind } from './private-server.js';

const NATS_SERVER: ServerKind = {
  binary: 'nats-server',
  versionArgs: ['--version'],
  neededBy: 'the nats jobs tests',
  // no http monitor, no cluster: only the client port on loopback
  args: (port, dir) => ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir],
};

export class NatsServer extends PrivateServer {
  /** nats://127.0.0.1:<port>, the `nats.addr` of a config */
  get addr(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<NatsServer> {
    return PrivateServer.startOf(NATS_SERVER, (dir, port) => new NatsServer(NATS_SERVER, dir, port));
  }
}
