// A worker's side of a socket relay for the listener's tests, in a process of its own: connects, answers the pid
// handshake (with its own pid, or the one it is told to claim), then answers each frame rrts sends as its JSON
// payload asks, in the ways a PHP worker's writes can reach rrts (one big write, many frames in one write, one
// frame in pieces). Run as a script; it prints `closed` on stdout when rrts closes the connection.
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { encodeFrame, FrameDecoder } from '../../src/goridge/frame.js';
import { Flag } from '../../src/goridge/flags.js';

/** What a test asks of the client in a frame's payload. */
export type ClientOrder =
  /** one frame of `bytes` payload bytes (pattern `seed`), written in `pieces` writes a few ms apart */
  | { reply: 'frame'; bytes: number; seed: number; pieces: number }
  /** `count` frames of `bytes` bytes (seeds 0..count-1), all in one write */
  | { reply: 'many'; bytes: number; count: number }
  /** exit at once: rrts sees the end of the connection */
  | { reply: 'exit' };

/** The payload the client sends for (`bytes`, `seed`): every byte depends on both, so a misplaced byte shows. */
export function patternPayload(bytes: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(bytes);
  for (let k = 0; k < bytes; k++) out[k] = (k * 7 + seed * 13 + (k >>> 11)) & 0xff;
  return out;
}

function frameOf(bytes: number, seed: number): Buffer {
  return encodeFrame({ flags: Flag.CODEC_RAW, payload: patternPayload(bytes, seed) });
}

function run(target: string, claimedPid: number): void {
  const socket = target.startsWith('unix:') ? net.connect(target.slice('unix:'.length)) : net.connect(Number(target.split(':')[1]), '127.0.0.1');
  const decoder = new FrameDecoder({ maxPayload: 1 << 30 });
  let answered = false;
  socket.on('data', (chunk: Buffer) => {
    for (const frame of decoder.push(chunk)) {
      if (!answered) {
        answered = true;
        socket.write(encodeFrame({ flags: Flag.CONTROL | Flag.CODEC_JSON, payload: JSON.stringify({ pid: claimedPid }) }));
        continue;
      }
      const order = JSON.parse(frame.payload.toString('utf8')) as ClientOrder;
      if (order.reply === 'exit') process.exit(0);
      if (order.reply === 'many') {
        socket.write(Buffer.concat(Array.from({ length: order.count }, (_, seed) => frameOf(order.bytes, seed))));
        continue;
      }
      const whole = frameOf(order.bytes, order.seed);
      const size = Math.ceil(whole.length / order.pieces);
      for (let i = 0; i < order.pieces; i++) setTimeout(() => socket.write(whole.subarray(i * size, (i + 1) * size)), i * 5);
    }
  });
  socket.on('error', () => {});
  socket.on('close', () => {
    process.stdout.write('closed\n');
    process.exit(0);
  });
  setTimeout(() => process.exit(2), 60_000).unref(); // never outlives a stuck test by much
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  run(process.argv[2]!, Number(process.argv[3] ?? process.pid));
}
