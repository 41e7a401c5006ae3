// The boltdb driver's file: an append-only journal of "put job" and "delete job" records, each length-prefixed
// with a CRC32, written in group commits that are fsynced before the callers' promises resolve, and compacted
// (rewritten with only the live jobs, then renamed over the old file) when dead records outweigh the live ones.
import fs from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
import { Packr } from 'msgpackr';
import { JournalError } from '../../../errors.js';
import type { JobHeaders } from '../../driver.js';

/** One job as the journal keeps it; `seq` is its key for the life of the job (a requeue rewrites the same seq). */
export interface StoredJob {
  seq: number;
  id: string;
  job: string;
  payload: Buffer;
  headers: JobHeaders;
  priority: number;
  autoAck: boolean;
  /** epoch ms when the job may run; 0 = at once */
  readyAt: number;
}

/** The file's first bytes: a name and a format version, so a bbolt file (or anything else) is refused, not parsed. */
const MAGIC = Buffer.from('RRTSJRNL', 'latin1');
const FORMAT_VERSION = 1;
const HEADER_BYTES = MAGIC.length + 4;
/** length (u32) + crc32 of the body (u32) */
const RECORD_HEAD_BYTES = 8;
/** A length beyond this is garbage, not a job (RPC frames are far smaller). */
const MAX_RECORD_BYTES = 512 * 1024 * 1024;
const READ_CHUNK_BYTES = 1024 * 1024;
const OP_PUT = 1;
const OP_DELETE = 2;

export const DEFAULT_COMPACT_MIN_BYTES = 8 * 1024 * 1024;

const packr = new Packr({ useRecords: false, mapsAsObjects: false });

// zlib.crc32 came with Node.js 20.15: checked when a journal opens, so an older Node fails only boltdb pipelines
const crc32 = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;

export interface JournalOptions {
  /** file mode of a new journal (before the umask) */
  mode: number;
  /** compact once the file is larger than this and more than twice the live records */
  compactMinBytes?: number;
}

/** What open() found besides the jobs. */
export interface ReplayReport {
  /** bytes cut off the end: a record torn by a crash in the middle of a write (kept aside in `tornCopy`) */
  tornBytes: number;
  tornOffset: number;
  tornCopy: string | null;
  /** records read */
  records: number;
}

interface PendingWrite {
  bytes: Buffer;
  resolve: () => void;
  reject: (error: Error) => void;
}

export function encodeRecord(body: Buffer): Buffer {
  const head = Buffer.allocUnsafe(RECORD_HEAD_BYTES);
  head.writeUInt32LE(body.length, 0);
  head.writeUInt32LE(crc32!(body), 4);
  return Buffer.concat([head, body]);
}

function putBody(job: StoredJob): Buffer {
  const headers = Object.entries(job.headers);
  return packr.pack([OP_PUT, job.seq, job.id, job.job, job.payload, headers, job.priority, job.autoAck, job.readyAt]);
}

function deleteBody(seq: number): Buffer {
  return packr.pack([OP_DELETE, seq]);
}

type Decoded = { op: 'put'; job: StoredJob } | { op: 'delete'; seq: number };

function isStringList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}

/** A record body back into its operation; null when it does not have the shape this format writes. */
function decodeBody(body: Buffer): Decoded | null {
  let value: unknown;
  try {
    value = packr.unpack(body);
  } catch {
    return null;
  }
  if (!Array.isArray(value)) return null;
  const [op, seq] = value as unknown[];
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq)) return null;
  if (op === OP_DELETE && value.length === 2) return { op: 'delete', seq };
  if (op !== OP_PUT || value.length !== 9) return null;
  const [, , id, job, payload, headerList, priority, autoAck, readyAt] = value as unknown[];
  if (typeof id !== 'string' || typeof job !== 'string' || !(payload instanceof Uint8Array)) return null;
  if (typeof priority !== 'number' || typeof autoAck !== 'boolean' || typeof readyAt !== 'number' || !Array.isArray(headerList)) return null;
  const entries: [string, string[]][] = [];
  for (const entry of headerList as unknown[]) {
    if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[0] !== 'string' || !isStringList(entry[1])) return null;
    entries.push([entry[0], entry[1]]);
  }
  const bytes = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  return { op: 'put', job: { seq, id, job, payload: bytes, headers: Object.fromEntries(entries), priority, autoAck, readyAt } };
}

function fileHeader(): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(header, 0);
  header.writeUInt32LE(FORMAT_VERSION, MAGIC.length);
  return header;
}

async function writeAll(handle: FileHandle, bytes: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position + done);
    done += bytesWritten;
  }
}

/** The directory entry of a new or renamed file is durable only once its directory is fsynced. */
async function syncDirectory(file: string): Promise<void> {
  const dir = await fs.open(path.dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

export class Journal {
  private pending: PendingWrite[] = [];
  private flushing: Promise<void> | null = null;
  private failure: Error | null = null;
  private closed = false;
  /** the live jobs with the size of their put record: what a compaction writes */
  private readonly live = new Map<number, { job: StoredJob; bytes: number }>();
  private liveBytes = 0;
  private compactions = 0;
  private readonly compactMinBytes: number;

  private constructor(
    readonly file: string,
    private handle: FileHandle,
    private size: number,
    options: JournalOptions,
  ) {
    this.compactMinBytes = options.compactMinBytes ?? DEFAULT_COMPACT_MIN_BYTES;
  }

  /**
   * Opens (or creates) the journal and replays it: the live jobs in seq order. A record torn by a crash at the end
   * of the file is cut off (and copied to `<file>.torn` first); anything that is not a journal is refused.
   */
  static async open(file: string, options: JournalOptions): Promise<{ journal: Journal; jobs: StoredJob[]; report: ReplayReport }> {
    if (!crc32) throw new JournalError(`the boltdb driver needs Node.js >= 20.15 (for zlib.crc32); this is ${process.version}`, 'node');
    // a compaction that died before its rename left this behind; the journal itself is whole
    await fs.rm(`${file}.compact`, { force: true });
    let handle: FileHandle;
    let created = false;
    try {
      handle = await fs.open(file, 'r+');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new JournalError(`cannot open ${file}: ${(error as Error).message}`);
      handle = await fs.open(file, 'wx+', options.mode);
      created = true;
    }
    try {
      const replay = await Journal.replay(file, handle);
      if (replay.empty) {
        await writeAll(handle, fileHeader(), 0);
        await handle.truncate(HEADER_BYTES);
        await handle.sync();
        if (created) await syncDirectory(file);
      }
      const journal = new Journal(file, handle, replay.empty ? HEADER_BYTES : replay.validEnd, options);
      for (const [seq, entry] of replay.live) {
        journal.live.set(seq, entry);
        journal.liveBytes += entry.bytes;
      }
      const report: ReplayReport = { tornBytes: 0, tornOffset: replay.validEnd, tornCopy: null, records: replay.records };
      if (!replay.empty && replay.fileSize > replay.validEnd) {
        report.tornBytes = replay.fileSize - replay.validEnd;
        report.tornCopy = `${file}.torn`;
        const torn = Buffer.alloc(report.tornBytes);
        await handle.read(torn, 0, torn.length, replay.validEnd);
        await fs.writeFile(report.tornCopy, torn, { mode: options.mode });
        await handle.truncate(replay.validEnd);
        await handle.sync();
      }
      const jobs = [...journal.live.values()].map((entry) => entry.job).sort((a, b) => a.seq - b.seq);
      if (journal.worthCompacting()) await journal.compact();
      return { journal, jobs, report };
    } catch (error) {
      await handle.close().catch(() => undefined);
      if (error instanceof JournalError) throw error;
      throw new JournalError(`cannot read ${file}: ${(error as Error).message}`, 'io', { cause: error });
    }
  }

  /** Reads every whole record; stops at the first short or corrupt one (the torn end of a crashed write). */
  private static async replay(
    file: string,
    handle: FileHandle,
  ): Promise<{ empty: boolean; live: Map<number, { job: StoredJob; bytes: number }>; validEnd: number; fileSize: number; records: number }> {
    const fileSize = (await handle.stat()).size;
    const live = new Map<number, { job: StoredJob; bytes: number }>();
    if (fileSize === 0) return { empty: true, live, validEnd: 0, fileSize, records: 0 };
    const header = Buffer.alloc(HEADER_BYTES);
    const { bytesRead } = await handle.read(header, 0, HEADER_BYTES, 0);
    if (bytesRead < HEADER_BYTES && MAGIC.subarray(0, bytesRead).equals(header.subarray(0, bytesRead))) {
      // a crash between creating the file and writing its header
      return { empty: true, live, validEnd: 0, fileSize, records: 0 };
    }
    if (bytesRead < HEADER_BYTES || !header.subarray(0, MAGIC.length).equals(MAGIC)) {
      throw new JournalError(
        `${file} is not an rrts jobs journal (RoadRunner's bbolt files cannot be read by rrts: give the boltdb pipeline a file of its own)`,
        'format',
      );
    }
    const version = header.readUInt32LE(MAGIC.length);
    if (version !== FORMAT_VERSION) {
      throw new JournalError(`${file} is an rrts jobs journal of format ${version}; this rrts reads format ${FORMAT_VERSION}`, 'format');
    }
    let position = HEADER_BYTES;
    let records = 0;
    let carry = Buffer.alloc(0);
    let carryStart = position;
    let readAt = position;
    for (;;) {
      // parse whole records out of what was read so far
      let at = 0;
      let corrupt = false;
      /** bytes the next record still needs beyond what was read */
      let missing = 0;
      while (carry.length - at >= RECORD_HEAD_BYTES) {
        const length = carry.readUInt32LE(at);
        if (length > MAX_RECORD_BYTES) {
          corrupt = true;
          break;
        }
        if (carry.length - at < RECORD_HEAD_BYTES + length) {
          missing = RECORD_HEAD_BYTES + length - (carry.length - at);
          break;
        }
        const body = carry.subarray(at + RECORD_HEAD_BYTES, at + RECORD_HEAD_BYTES + length);
        const decoded = crc32!(body) === carry.readUInt32LE(at + 4) ? decodeBody(body) : null;
        if (!decoded) {
          corrupt = true;
          break;
        }
        if (decoded.op === 'put') {
          live.set(decoded.job.seq, { job: { ...decoded.job, payload: Buffer.from(decoded.job.payload) }, bytes: RECORD_HEAD_BYTES + length });
        } else {
          live.delete(decoded.seq);
        }
        records += 1;
        at += RECORD_HEAD_BYTES + length;
      }
      position = carryStart + at;
      if (corrupt || readAt >= fileSize) break;
      // a record larger than a chunk is read whole in one go, not grown a chunk at a time
      const chunk = Buffer.alloc(Math.min(Math.max(READ_CHUNK_BYTES, missing), fileSize - readAt));
      const read = await handle.read(chunk, 0, chunk.length, readAt);
      if (read.bytesRead === 0) break;
      readAt += read.bytesRead;
      carry = Buffer.concat([carry.subarray(at), chunk.subarray(0, read.bytesRead)]);
      carryStart = position;
    }
    return { empty: false, live, validEnd: position, fileSize, records };
  }

  /** Adds or replaces a job (push, requeue); resolves once it is on disk. */
  put(job: StoredJob): Promise<void> {
    const bytes = encodeRecord(putBody(job));
    const previous = this.live.get(job.seq);
    this.liveBytes += bytes.length - (previous?.bytes ?? 0);
    this.live.set(job.seq, { job, bytes: bytes.length });
    return this.enqueue(bytes);
  }

  /** Forgets a job (ack); resolves once that is on disk. */
  delete(seq: number): Promise<void> {
    const previous = this.live.get(seq);
    if (previous) {
      this.liveBytes -= previous.bytes;
      this.live.delete(seq);
    }
    return this.enqueue(encodeRecord(deleteBody(seq)));
  }

  get liveJobs(): number {
    return this.live.size;
  }

  get fileBytes(): number {
    return this.size;
  }

  get compactionCount(): number {
    return this.compactions;
  }

  /** Why the journal stopped writing (a failed write or fsync), or null. */
  get error(): Error | null {
    return this.failure;
  }

  private enqueue(bytes: Buffer): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new JournalError(`${this.file} is closed`, 'closed'));
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ bytes, resolve, reject });
      this.flushing ??= this.flushLoop();
    });
  }

  /** Group commit: whatever was queued while the last batch was written and fsynced goes out as the next batch. */
  private async flushLoop(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const batch = this.pending;
        this.pending = [];
        try {
          if (this.failure) throw this.failure;
          const bytes = batch.length === 1 ? batch[0]!.bytes : Buffer.concat(batch.map((write) => write.bytes));
          await writeAll(this.handle, bytes, this.size);
          this.size += bytes.length;
          await this.handle.datasync();
        } catch (error) {
          // a failed write or fsync leaves the file's end unknown (fsync errors are not retried, as databases learned)
          this.failure ??= new JournalError(`cannot write ${this.file}: ${(error as Error).message}`, 'write', { cause: error });
          for (const write of batch) write.reject(this.failure);
          continue;
        }
        for (const write of batch) write.resolve();
        if (this.worthCompacting()) {
          try {
            await this.compact();
          } catch (error) {
            this.failure ??= new JournalError(`cannot compact ${this.file}: ${(error as Error).message}`, 'write', { cause: error });
          }
        }
      }
    } finally {
      this.flushing = null;
    }
  }

  private worthCompacting(): boolean {
    return this.size > this.compactMinBytes && this.size > 2 * (HEADER_BYTES + this.liveBytes);
  }

  /**
   * Writes the live jobs to `<file>.compact`, fsyncs it and renames it over the journal: a crash at any point
   * leaves either the old journal or the new one whole. Runs between batches, so no record is written meanwhile.
   */
  private async compact(): Promise<void> {
    const next = `${this.file}.compact`;
    // the mode the file has now: an operator's chmod outlives the compaction
    const mode = (await this.handle.stat()).mode & 0o7777;
    const handle = await fs.open(next, 'w+', mode);
    try {
      let parts: Buffer[] = [fileHeader()];
      let written = 0;
      const ordered = [...this.live.values()].sort((a, b) => a.job.seq - b.job.seq);
      for (let i = 0; i <= ordered.length; i++) {
        const entry = ordered[i];
        if (entry) parts.push(encodeRecord(putBody(entry.job)));
        if (parts.length < 1024 && entry) continue;
        // out in slices, so a large live set is not one more copy of itself in memory
        const chunk = Buffer.concat(parts);
        parts = [];
        await writeAll(handle, chunk, written);
        written += chunk.length;
      }
      await handle.sync();
      await fs.rename(next, this.file);
      await syncDirectory(this.file);
    } catch (error) {
      await handle.close().catch(() => undefined);
      await fs.rm(next, { force: true }).catch(() => undefined);
      throw error;
    }
    const old = this.handle;
    this.handle = handle;
    this.size = (await handle.stat()).size;
    this.compactions += 1;
    await old.close();
  }

  /** Waits for queued writes, then closes the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.flushing) await this.flushing;
    await this.handle.close();
  }
}
