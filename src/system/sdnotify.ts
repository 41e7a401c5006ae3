// systemd's notify protocol (docs/compatibility.md §3.10): with Type=notify, tell the manager READY=1 once every pool serves,
// STOPPING=1 when a stop begins, RELOADING=1 … READY=1 around a SIGHUP reset, and WATCHDOG=1 keep-alives. Datagrams
// go to $NOTIFY_SOCKET through the native addon (Node has no unix datagram sockets); without it, a warning, once.
import type { Logger } from 'pino';
import { loadNative, nativeUnavailableReason } from '../native/index.js';

type Send = (path: string, data: Buffer) => void;

export interface SdNotifyOptions {
  env?: NodeJS.ProcessEnv;
  /** endure.watchdog_sec, used when systemd did not set WATCHDOG_USEC */
  watchdogSec?: number;
  /** tests: replaces the native send */
  send?: Send | null;
}

/** CLOCK_MONOTONIC in µs, as RELOADING=1 wants it with MONOTONIC_USEC (Node's hrtime is that clock on Linux). */
export function monotonicUsec(): bigint {
  return process.hrtime.bigint() / 1000n;
}

export class SdNotifier {
  private readonly socket: string | null;
  private readonly send: Send | null;
  private warned = false;
  private watchdog: NodeJS.Timeout | null = null;
  private readonly watchdogMs: number;

  constructor(
    private readonly log: Logger,
    opts: SdNotifyOptions = {},
  ) {
    const env = opts.env ?? process.env;
    this.socket = env.NOTIFY_SOCKET || null;
    this.send = opts.send !== undefined ? opts.send : sendThroughAddon();
    // WATCHDOG_PID, when set, names the process systemd expects the pings from.
    const forUs = !env.WATCHDOG_PID || Number(env.WATCHDOG_PID) === process.pid;
    const usec = forUs ? Number(env.WATCHDOG_USEC ?? 0) : 0;
    this.watchdogMs = usec > 0 ? usec / 1000 : (opts.watchdogSec ?? 0) * 1000;
  }

  /** True when systemd (or a test) listens. */
  get enabled(): boolean {
    return this.socket !== null;
  }

  /** Every pool serves: READY=1 with our pid, and start the watchdog pings. */
  ready(): void {
    this.notify(`READY=1\nMAINPID=${process.pid}`);
    if (this.watchdogMs > 0 && this.enabled && !this.watchdog) {
      this.watchdog = setInterval(() => this.notify('WATCHDOG=1'), Math.max(1, this.watchdogMs / 2));
      this.watchdog.unref();
    }
  }

  reloading(): void {
    this.notify(`RELOADING=1\nMONOTONIC_USEC=${monotonicUsec()}`);
  }

  reloaded(): void {
    this.notify('READY=1');
  }

  stopping(): void {
    this.stopWatchdog();
    this.notify('STOPPING=1');
  }

  stopWatchdog(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = null;
  }

  /** Best effort: a lost notification must never stop the server. */
  notify(state: string): void {
    if (!this.socket) return;
    if (!this.send) {
      this.warnOnce(`NOTIFY_SOCKET is set but rrts cannot send to it: ${nativeUnavailableReason() ?? 'the native addon is not loaded'}`);
      return;
    }
    try {
      this.send(this.socket, Buffer.from(state));
    } catch (err) {
      this.warnOnce(`cannot notify systemd at ${this.socket}: ${(err as Error).message}`);
    }
  }

  private warnOnce(message: string): void {
    if (this.warned) return;
    this.warned = true;
    this.log.warn(message);
  }
}

function sendThroughAddon(): Send | null {
  const native = loadNative();
  return native ? (path, data) => native.sendUnixDatagram(path, data) : null;
}
