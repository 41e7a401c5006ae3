// A unix datagram receiver for the systemd tests (Node cannot bind one): python3 binds the socket and prints every
// datagram as one JSON string per line.
import { spawn, type ChildProcess } from 'node:child_process';
import { sleep } from '../support/sleep.js';

const RECEIVER = `
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
name = sys.argv[1]
s.bind("\\0" + name[1:] if name.startswith("@") else name)
print(json.dumps("bound"), flush=True)
while True:
    print(json.dumps(s.recv(65536).decode()), flush=True)
`;

export class NotifyReceiver {
  readonly messages: string[] = [];
  private buffered = '';
  private constructor(readonly proc: ChildProcess) {
    proc.stdout!.on('data', (c: Buffer) => {
      this.buffered += c.toString();
      let nl;
      while ((nl = this.buffered.indexOf('\n')) >= 0) {
        this.messages.push(JSON.parse(this.buffered.slice(0, nl)) as string);
        this.buffered = this.buffered.slice(nl + 1);
      }
    });
  }

  /** Bind `path` ('@name' for an abstract socket) and resolve once it listens. */
  static async bind(path: string): Promise<NotifyReceiver> {
    const proc = spawn('python3', ['-c', RECEIVER, path], { stdio: ['ignore', 'pipe', 'inherit'] });
    const r = new NotifyReceiver(proc);
    await r.waitFor((m) => m.includes('bound'), 'the receiver to bind');
    r.messages.length = 0;
    return r;
  }

  async waitFor(predicate: (messages: string[]) => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!predicate(this.messages)) {
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.messages)}`);
      await sleep(20);
    }
  }

  close(): void {
    this.proc.kill('SIGKILL');
  }
}
