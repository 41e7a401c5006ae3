// A private beanstalkd for tests (test/support/private-server.ts): its own binlog directory, fsynced on every write.
import { PrivateServer, type ServerKind } from './private-server.js';

const BEANSTALKD: ServerKind = {
  binary: 'beanstalkd',
  versionArgs: ['-v'],
  neededBy: 'the beanstalk jobs tests',
  // -f 0: fsync every binlog write, so a SIGKILL loses nothing the server answered
  args: (port, dir) => ['-l', '127.0.0.1', '-p', String(port), '-b', dir, '-f', '0'],
};

export class Beanstalkd extends PrivateServer {
  /** tcp://127.0.0.1:<port>, the `beanstalk.addr` of a config */
  get addr(): string {
    return `tcp://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<Beanstalkd> {
    return PrivateServer.startOf(BEANSTALKD, (dir, port) => new Beanstalkd(BEANSTALKD, dir, port));
  }
}
