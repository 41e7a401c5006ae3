// One owner per journal: a POSIX lock (lockf) on `<file>.lock` against other processes, which the kernel drops
// when the owner dies, even by kill -9, and a table of the files this process has open against its own pipelines.
import fs from 'node:fs';
import path from 'node:path';
import posixNode from 'posix-node';
import { JournalError } from '../../../errors.js';

// posix-node is CommonJS with `exports.default`; its functions are optional in its types.
const posix = posixNode.default;
const F_TLOCK = posix.constants?.F_TLOCK ?? 2;

/** journal path -> the pipeline that holds it in this process */
const heldHere = new Map<string, string>();

export interface JournalLock {
  readonly lockFile: string;
  release(): void;
}

/**
 * Takes the lock of `file` for `pipeline` or throws a JournalError naming the file and who holds it. The lock is
 * taken on a file of its own, never opened elsewhere: closing any descriptor of a file drops a process's POSIX
 * locks on it, and compaction replaces the journal's inode.
 */
export function lockJournal(file: string, pipeline: string, mode: number): JournalLock {
  const key = canonicalPath(file);
  const holder = heldHere.get(key);
  if (holder !== undefined) {
    throw new JournalError(`${file} is already used by the boltdb pipeline '${holder}' of this rrts: give each pipeline a file of its own`, 'locked');
  }
  const lockFile = `${file}.lock`;
  const lockf = posix.lockf;
  if (!lockf) throw new JournalError(`cannot lock ${lockFile}: posix-node has no lockf on this platform`, 'locked');
  let fd: number;
  try {
    fd = fs.openSync(lockFile, fs.constants.O_RDWR | fs.constants.O_CREAT, mode & 0o666);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? `the folder ${path.dirname(lockFile)} does not exist` : (error as Error).message;
    throw new JournalError(`cannot create ${lockFile}: ${reason}`, 'locked');
  }
  try {
    lockf(fd, F_TLOCK, 0n);
  } catch {
    const owner = readOwner(fd);
    fs.closeSync(fd);
    throw new JournalError(
      `${file} is in use by another process${owner ? ` (pid ${owner})` : ''}: two rrts cannot share a boltdb file (lock ${lockFile})`,
      'locked',
    );
  }
  // the pid is for the message above; the lock itself is what counts
  const pid = Buffer.from(`${process.pid}\n`);
  fs.ftruncateSync(fd, 0);
  fs.writeSync(fd, pid, 0, pid.length, 0);
  heldHere.set(key, pipeline);
  let released = false;
  return {
    lockFile,
    release() {
      if (released) return;
      released = true;
      heldHere.delete(key);
      fs.closeSync(fd);
    },
  };
}

function readOwner(fd: number): string | null {
  const buffer = Buffer.alloc(32);
  try {
    const read = fs.readSync(fd, buffer, 0, buffer.length, 0);
    const text = buffer.subarray(0, read).toString('latin1').trim();
    return /^\d+$/.test(text) ? text : null;
  } catch {
    return null;
  }
}

/** One name per file for the in-process table: two pipelines reaching one file through a symlinked folder collide. */
function canonicalPath(file: string): string {
  try {
    return path.join(fs.realpathSync(path.dirname(file)), path.basename(file));
  } catch {
    return file;
  }
}
