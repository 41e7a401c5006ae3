// A beanstalkd connection (protocol.txt): commands written at once, answers matched in order. rrts does not use the
// jackd client (2.2.2) because a dropped connection leaves its pending commands unsettled (a reserve waits forever,
// so a dead beanstalkd is never noticed and never redialed) and its body framing takes every byte after a RESERVED
// line as the body, which breaks as soon as two answers arrive in one read.
import net from 'node:net';

/** The connection is gone (refused, reset, closed): the driver redials. */
export class BeanstalkConnectionError extends Error {}

/** beanstalkd answered with something other than success (NOT_FOUND, TIMED_OUT, BAD_FORMAT, ...). */
export class BeanstalkReplyError extends Error {
  constructor(
    readonly command: string,
    readonly reply: string,
  ) {
    super(`beanstalkd answered ${reply} to ${command}`);
  }
}

export interface Reply {
  /** the answer line's words: ["RESERVED", "12", "34"] */
  words: string[];
  /** the data block of RESERVED, FOUND and OK */
  body?: Buffer;
}

interface Pending {
  command: string;
  resolve: (reply: Reply) => void;
  reject: (err: Error) => void;
}

const CRLF = Buffer.from('\r\n');
/** Answers carrying a data block, and the word giving its length. */
const WITH_BODY: Readonly<Record<string, number>> = { RESERVED: 2, FOUND: 2, OK: 1 };

export class BeanstalkConnection {
  private readonly pending: Pending[] = [];
  private buffer: Buffer = Buffer.alloc(0);
  private closedBy: Error | null = null;
  /** Called once when the connection breaks on beanstalkd's side (not when rrts closes it). */
  onLost: ((err: Error) => void) | null = null;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(new BeanstalkConnectionError(`the connection to beanstalkd was lost: ${err.message}`)));
    socket.on('close', () => this.fail(new BeanstalkConnectionError('the connection to beanstalkd closed')));
  }

  /** Dials `tcp://host:port` or `unix://path`, giving up after `timeoutMs`. */
  static connect(network: 'tcp' | 'unix', address: string, timeoutMs: number): Promise<BeanstalkConnection> {
    return new Promise((resolve, reject) => {
      let socket: net.Socket;
      if (network === 'unix') socket = net.connect(address);
      else {
        const at = address.lastIndexOf(':');
        const host = address.slice(0, at).replace(/^\[(.*)\]$/, '$1') || '127.0.0.1';
        socket = net.connect(Number(address.slice(at + 1)), host);
      }
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new BeanstalkConnectionError(`dial ${network} ${address}: no connection within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(new BeanstalkConnectionError(`dial ${network} ${address}: ${err.message}`));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        socket.setNoDelay(true);
        resolve(new BeanstalkConnection(socket));
      });
    });
  }

  get closed(): boolean {
    return this.closedBy !== null;
  }

  /** Sends one command (and its data block) and resolves with the answer; `ok` lists the success words. */
  async command(line: string, ok: readonly string[], body?: Buffer): Promise<Reply> {
    if (this.closedBy) throw this.closedBy;
    const reply = await new Promise<Reply>((resolve, reject) => {
      this.pending.push({ command: line.split(' ')[0]!, resolve, reject });
      this.socket.write(body ? Buffer.concat([Buffer.from(`${line}\r\n`), body, CRLF]) : `${line}\r\n`);
    });
    if (!ok.includes(reply.words[0]!)) throw new BeanstalkReplyError(line.split(' ')[0]!, reply.words.join(' '));
    return reply;
  }

  close(): void {
    this.onLost = null;
    this.fail(new BeanstalkConnectionError('the connection to beanstalkd was closed by rrts'));
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    for (;;) {
      const eol = this.buffer.indexOf(CRLF);
      if (eol === -1) return;
      const words = this.buffer.subarray(0, eol).toString('latin1').split(' ');
      const lengthAt = WITH_BODY[words[0]!];
      let consumed = eol + 2;
      let body: Buffer | undefined;
      if (lengthAt !== undefined) {
        const length = Number(words[lengthAt]);
        if (!Number.isSafeInteger(length) || length < 0) return this.protocolError(`a ${words[0]} answer without a length`);
        if (this.buffer.length < consumed + length + 2) return;
        body = Buffer.from(this.buffer.subarray(consumed, consumed + length));
        consumed += length + 2;
      }
      this.buffer = this.buffer.subarray(consumed);
      const waiter = this.pending.shift();
      if (!waiter) return this.protocolError(`an answer nobody asked for: ${words.join(' ')}`);
      waiter.resolve({ words, body });
    }
  }

  private protocolError(what: string): void {
    this.fail(new BeanstalkConnectionError(`beanstalkd sent ${what}`));
  }

  private fail(err: Error): void {
    const first = this.closedBy === null;
    if (first) {
      this.closedBy = err;
      this.socket.destroy();
    }
    for (const waiter of this.pending.splice(0)) waiter.reject(this.closedBy!);
    if (first) this.onLost?.(err);
  }
}

/** The `key: value` lines of a stats answer (a YAML map of scalars). */
export function parseStats(body: Buffer | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of (body ?? Buffer.alloc(0)).toString('utf8').split('\n')) {
    const match = /^([\w-]+):\s*"?(.*?)"?\s*$/.exec(line);
    if (match) out[match[1]!] = match[2]!;
  }
  return out;
}
