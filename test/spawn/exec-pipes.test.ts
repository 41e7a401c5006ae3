// openWorkerPipes (pipe2) with real php children: the child's stdin and stdout are real pipes in blocking mode, frames of
// any size cross them, and each side sees end of file (or EPIPE) when the other goes, as over the socketpair.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { openWorkerPipes, type WorkerPipes } from '../../src/spawn/exec-pipes.js';
import { killQuietly } from '../support/processes.js';

const O_NONBLOCK = 0o4000;

// Prints how its fds 0 and 1 are (kind, flags), then the number of stdin bytes up to end of file.
const REPORT_THEN_COUNT = `
$kind = fn ($stream): string => match (fstat($stream)['mode'] & 0170000) { 0010000 => 'fifo', 0140000 => 'socket', default => 'other' };
$flags = fn (int $fd): int => intval(explode("\\t", explode("\\n", file_get_contents("/proc/self/fdinfo/$fd"))[1])[1], 8);
fwrite(STDOUT, json_encode(['stdin' => $kind(STDIN), 'stdout' => $kind(STDOUT), 'stdinFlags' => $flags(0), 'stdoutFlags' => $flags(1)]) . "\\n");
$n = 0;
while (($got = fread(STDIN, 65536)) !== false && $got !== '') $n += strlen($got);
fwrite(STDOUT, "$n\\n");
`;

const children: ChildProcess[] = [];

function startPhp(pipes: WorkerPipes, code: string): ChildProcess {
  try {
    const child = spawn('php', ['-r', code], { stdio: [pipes.childStdin, pipes.childStdout, 'inherit'] });
    children.push(child);
    return child;
  } finally {
    pipes.closeChildEnds();
  }
}

/** Everything the child writes to its stdout until end of file (the answers' bytes come by onAnswerBytes). */
function readAll(pipes: WorkerPipes): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    pipes.onAnswerBytes((chunk) => chunks.push(chunk));
    pipes.answers.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    pipes.answers.once('error', reject);
  });
}

describe('exec workers over real pipes (openWorkerPipes)', () => {
  after(() => {
    for (const child of children) if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) killQuietly(child.pid);
  });

  it("gives the child blocking pipes, carries 3 MiB, and each side's close is the other's end of file", async () => {
    const pipes = openWorkerPipes();
    const child = startPhp(pipes, REPORT_THEN_COUNT);
    const answer = readAll(pipes);
    const payload = Buffer.alloc(3 * 1024 * 1024, 'x'); // far over a pipe's 64 KiB: many partial writes
    pipes.jobs.end(payload);
    const [report, count] = (await answer).trim().split('\n');
    const fds = JSON.parse(report!) as { stdin: string; stdout: string; stdinFlags: number; stdoutFlags: number };
    assert.equal(fds.stdin, 'fifo', 'stdin is a pipe, not a socket');
    assert.equal(fds.stdout, 'fifo', 'stdout is a pipe, not a socket');
    assert.equal(fds.stdinFlags & O_NONBLOCK, 0, "the child's stdin blocks, as PHP's fread expects");
    assert.equal(fds.stdoutFlags & O_NONBLOCK, 0, "the child's stdout blocks");
    assert.equal(count, String(payload.length), 'every byte arrived, then end of file');
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0);
  });

  it('hands over the bytes read before a receiver was set first, and every chunk as a copy that later reads leave alone', async () => {
    const pipes = openWorkerPipes();
    // Three writes apart in time: three reads into the socket's one buffer, each overwriting the last.
    const child = startPhp(pipes, `foreach (['a', 'b', 'c'] as $c) { fwrite(STDOUT, str_repeat($c, 1000)); fflush(STDOUT); usleep(100000); }`);
    const kept: Buffer[] = [];
    const ended = once(pipes.answers, 'end');
    await once(child, 'exit'); // everything was written before the receiver is set: read into the early list
    for (let i = 0; i < 100 && pipes.answers.bytesRead < 3000; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    pipes.onAnswerBytes((chunk) => kept.push(chunk));
    await ended;
    assert.equal(Buffer.concat(kept).toString('latin1'), 'a'.repeat(1000) + 'b'.repeat(1000) + 'c'.repeat(1000), 'every byte, in order');
    assert.ok(kept.length >= 2, `several reads (${kept.length})`);
    assert.equal(kept[0]!.toString('latin1', 0, 1000), 'a'.repeat(1000), 'the first chunk still holds its own bytes');
  });

  it('a write to a worker that is gone fails with EPIPE, and its stdout reads as end of file', async () => {
    const pipes = openWorkerPipes();
    const child = startPhp(pipes, 'exit(0);');
    const answer = readAll(pipes);
    await once(child, 'exit');
    assert.equal(await answer, '', 'end of file once the only writer exited');
    const failed = once(pipes.jobs, 'error') as Promise<[NodeJS.ErrnoException]>;
    pipes.jobs.write(Buffer.alloc(16));
    const [err] = await failed;
    assert.equal(err.code, 'EPIPE');
    pipes.jobs.destroy();
  });
});
