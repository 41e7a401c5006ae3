// sendFds (sendmsg with SCM_RIGHTS) against a real php process at the other end of a socketpair: the fds it receives
// are the same pipes (what Node writes into one comes out of the php's copy, and back), and bad arguments are named.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { addonFunction, socketFd } from '../../src/native/index.js';
import { openWorkerPipes } from '../../src/spawn/exec-pipes.js';
import { killQuietly } from '../support/processes.js';

const sendFds = addonFunction('sendFds');
const children: ChildProcess[] = [];
after(() => {
  for (const child of children) if (child.pid !== undefined && child.exitCode === null) killQuietly(child.pid);
});

// fd 3 is its end of the socketpair: receive a message with two fds, read a line from the first and write it back,
// upper-cased, into the second; print what it received.
const RECEIVE_AND_ECHO = `
$socket = socket_import_stream(fopen('php://fd/3', 'r+'));
$message = ['name' => [], 'buffer_size' => 256, 'controllen' => socket_cmsg_space(SOL_SOCKET, SCM_RIGHTS, 2)];
$bytes = socket_recvmsg($socket, $message, 0);
$fds = $message['control'][0]['data'] ?? [];
$kinds = array_map(fn ($s) => match (fstat($s)['mode'] & 0170000) { 0010000 => 'fifo', default => 'other' }, $fds);
fwrite(STDOUT, json_encode(['bytes' => $bytes, 'data' => $message['iov'][0] ?? null, 'kinds' => $kinds]) . "\\n");
if (count($fds) === 2) {
    fwrite($fds[1], strtoupper((string) fgets($fds[0])));
}
`;

describe('sendFds', { timeout: 30_000 }, () => {
  it('hands a php process over a socketpair the same two pipes, in one message with the data', async () => {
    assert.ok(sendFds, 'the addon has sendFds');
    const php = spawn('php', ['-r', RECEIVE_AND_ECHO], { stdio: ['ignore', 'pipe', 'inherit', 'pipe'] });
    children.push(php);
    const pair = php.stdio[3] as net.Socket; // Node's stdio 'pipe' is an AF_UNIX socketpair
    const pipes = openWorkerPipes();
    try {
      sendFds(socketFd(pair)!, [pipes.childStdin, pipes.childStdout], Buffer.from('{"pid":1,"pipes":true}'));
    } finally {
      pipes.closeChildEnds(); // the php holds its own copies now: end of file comes when it exits
    }
    const answer = new Promise<string>((resolve) => {
      const chunks: Buffer[] = [];
      pipes.onAnswerBytes((chunk) => chunks.push(chunk));
      pipes.answers.once('end', () => resolve(Buffer.concat(chunks).toString()));
    });
    pipes.jobs.end('through the pipe\n');
    let report = '';
    php.stdout!.on('data', (chunk: Buffer) => (report += chunk.toString()));
    const [code] = (await once(php, 'exit')) as [number | null];
    pair.destroy();
    assert.equal(code, 0);
    assert.deepEqual(JSON.parse(report), { bytes: 22, data: '{"pid":1,"pipes":true}', kinds: ['fifo', 'fifo'] });
    assert.equal(await answer, 'THROUGH THE PIPE\n');
  });

  it('names the failure: an fd that is no socket, an empty list, no data', () => {
    assert.ok(sendFds);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-sendfds-'));
    const fd = fs.openSync(path.join(dir, 'plain'), 'w');
    try {
      assert.throws(
        () => sendFds(fd, [fd], Buffer.from('x')),
        (err: NodeJS.ErrnoException) => err.code === 'ENOTSOCK' && /sendmsg\(fd \d+, SCM_RIGHTS\)/.test(err.message),
      );
      assert.throws(() => sendFds(fd, [], Buffer.from('x')), { code: 'ERR_INVALID_ARG_TYPE' });
      assert.throws(() => sendFds(fd, [fd], Buffer.alloc(0)), { code: 'ERR_INVALID_ARG_TYPE' });
    } finally {
      fs.closeSync(fd);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
