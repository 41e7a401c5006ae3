// Real pipes for an exec worker's stdin and stdout, the `pipes` relay: what Go's os/exec gives RoadRunner's workers,
// where Node's stdio 'pipe' is an AF_UNIX socketpair that costs both sides more per frame (docs/benchmarks.md).
import fs from 'node:fs';
import net from 'node:net';
import posixNode from 'posix-node';
import { CopiedReads } from '../relay/copied-reads.js';

const posix = posixNode.default;

/** The two pipes of one worker: the fds its stdin and stdout get, and Node's ends as sockets of the loop. */
export interface WorkerPipes {
  /** The read end of the jobs pipe, for the child's stdin (blocking: PHP reads it with fread). */
  readonly childStdin: number;
  /** The write end of the answers pipe, for the child's stdout (blocking, as a pipe from Go's os/exec is). */
  readonly childStdout: number;
  /** Node's write end of the jobs pipe: EPIPE once the worker is gone, as with the socketpair. */
  readonly jobs: net.Socket;
  /**
   * Node's read end of the answers pipe: end of file once every holder of the write end (the worker) exited. Its
   * bytes come through onAnswerBytes, not as 'data' events.
   */
  readonly answers: net.Socket;
  /**
   * Where the answers' bytes go from now on (each a copy the receiver may keep); bytes read before it is set are
   * handed over first, in order. The socket reads them into one reused buffer (net.Socket's `onread`), which spares
   * the Readable stream's bookkeeping on every read.
   */
  onAnswerBytes(receiver: (chunk: Buffer) => void): void;
  /** Close the child's ends in rrts: once the child holds them (after the spawn), or when the spawn failed. */
  closeChildEnds(): void;
  /** Close every end rrts holds, the child's and its own: the pipes are not used (a failed spawn or hand-over). */
  close(): void;
}

/** Why real pipes cannot be made here (the posix-node build has no pipe2), or null. */
export function workerPipesUnavailableReason(): string | null {
  return typeof posix.pipe2 === 'function' && posix.constants?.O_CLOEXEC !== undefined ? null : 'posix-node has no pipe2 on this platform';
}

/**
 * Two pipe2(O_CLOEXEC) pipes: close-on-exec, so no other child inherits them (the spawn dup2()s the child's ends onto
 * its fds 0 and 1, which clears the flag there). Each end is its own file description: libuv makes Node's ends
 * non-blocking, the child's stay blocking.
 */
export function openWorkerPipes(): WorkerPipes {
  const cloexec = posix.constants!.O_CLOEXEC!;
  const jobsPipe = posix.pipe2!(cloexec);
  let answersPipe: { readfd: number; writefd: number };
  try {
    answersPipe = posix.pipe2!(cloexec);
  } catch (err) {
    fs.closeSync(jobsPipe.readfd);
    fs.closeSync(jobsPipe.writefd);
    throw err;
  }
  const jobs = new net.Socket({ fd: jobsPipe.writefd, readable: false, writable: true });
  const reads = new CopiedReads();
  // `onread` is documented for sockets (net.Socket, socket.connect) but missing from @types/node's constructor type.
  const answersOptions = { fd: answersPipe.readfd, readable: true, writable: false, onread: { buffer: reads.buffer, callback: reads.callback } };
  const answers = new net.Socket(answersOptions);
  let childEndsOpen = true;
  return {
    childStdin: jobsPipe.readfd,
    childStdout: answersPipe.writefd,
    jobs,
    answers,
    onAnswerBytes(next) {
      reads.onBytes(next);
    },
    closeChildEnds() {
      if (!childEndsOpen) return;
      childEndsOpen = false;
      fs.closeSync(jobsPipe.readfd);
      fs.closeSync(answersPipe.writefd);
    },
    close() {
      this.closeChildEnds();
      jobs.destroy();
      answers.destroy();
    },
  };
}
