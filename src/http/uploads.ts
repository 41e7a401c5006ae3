// Multipart bodies (docs/protocol.md §4.4): streams each file part into its own temp file in uploads.dir (`upload` +
// random digits, mode 0600), collects the other fields, and owns those temp files until cleanup().

import { randomInt } from 'node:crypto';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import type { WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { Dicer } from '@fastify/busboy';
import type { UploadsConfig } from '../config/types.js';
import { MultipartError, MultipartTooLargeError } from '../errors.js';
import { addField } from './form-tree.js';
import { latin1ToUtf8, parseMediaType } from './headers.js';

/** PHP's UPLOAD_ERR_* values RoadRunner uses. */
export const UploadError = {
  OK: 0,
  /** the part could not be opened (not produced by streaming, kept for completeness) */
  NO_FILE: 4,
  /** the temp file could not be created */
  NO_TMP_DIR: 6,
  /** writing the temp file failed */
  CANT_WRITE: 7,
  /** extension forbidden or not allowed */
  EXTENSION: 8,
} as const;

/** One entry of the uploads tree; the key order is the wire format. */
export interface FileUpload {
  name: string;
  mime: string;
  size: number;
  error: number;
  tmpName: string;
}

export interface MultipartForm {
  /** Non-file field name -> values, in the order names first appeared. */
  values: Map<string, string[]>;
  /** File field name -> uploads, in the order names first appeared. */
  files: Map<string, FileUpload[]>;
}

// Go's multipart.Reader.ReadForm limits (RoadRunner calls ParseMultipartForm(32 MiB)): at most 1000 parts, and
// non-file values may use 32 MiB + 10 MiB of memory, counting 200 bytes plus the name for every part.
const MAX_PARTS = 1000;
const MAX_VALUE_BYTES = 32 * 1024 * 1024 + 10 * 1024 * 1024;
const PART_OVERHEAD = 200;
const TEMP_NAME_ATTEMPTS = 100;
const MESSAGE_TOO_LARGE = 'multipart: message too large';

/** Go's path.Ext: the suffix from the last '.' of the name, '' when there is none. */
export function fileExtension(name: string): string {
  for (let i = name.length - 1; i >= 0; i--) {
    const c = name.charCodeAt(i);
    if (c === 47 /* '/' */) break;
    if (c === 46 /* '.' */) return name.slice(i);
  }
  return '';
}

/** Go's filepath.Base on Unix (only '/' separates; a backslash is part of the name). */
function baseName(path: string): string {
  let end = path.length;
  while (end > 0 && path.charCodeAt(end - 1) === 47) end--;
  if (end === 0) return '/';
  const slash = path.lastIndexOf('/', end - 1);
  return path.slice(slash + 1, end);
}

/**
 * The temp files of one request. Every file created through it is deleted by cleanup(), which may run at any time
 * (also while files are still being written: it stops them first) and any number of times.
 */
export class UploadSession {
  private readonly dir: string;
  private readonly forbid: ReadonlySet<string>;
  private readonly allow: ReadonlySet<string>;
  private readonly created: string[] = [];
  private readonly streams = new Set<WriteStream>();
  private readonly pending = new Set<Promise<void>>();
  private closed = false;
  private cleaning: Promise<void> | null = null;

  constructor(
    config: UploadsConfig,
    /** server.user's uid/gid: temp files are given to the workers' user, as RoadRunner does (not when either is 0). */
    private readonly owner: { uid: number; gid: number } | null = null,
  ) {
    this.dir = config.dir || tmpdir();
    this.forbid = new Set(config.forbid);
    this.allow = new Set(config.allow);
  }

  /** Forbid wins; an empty allow list allows everything not forbidden. */
  extensionAllowed(fileName: string): boolean {
    const ext = fileExtension(fileName).toLowerCase();
    if (this.forbid.has(ext)) return false;
    return this.allow.size === 0 || this.allow.has(ext);
  }

  /** Streams `part` into a new temp file and fills in `upload`; never rejects (failures become upload errors). */
  receive(part: Readable, upload: FileUpload): void {
    const task = this.write(part, upload)
      .catch(() => {
        if (upload.error === UploadError.OK) upload.error = UploadError.CANT_WRITE;
        part.resume();
      })
      .finally(() => this.pending.delete(task));
    this.pending.add(task);
  }

  /** Resolves when every file handed to receive() is completely written (or has failed). */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.all(this.pending);
  }

  /** Stops files still being written and deletes every temp file. Best effort: it never rejects. */
  cleanup(): Promise<void> {
    this.cleaning ??= this.removeAll();
    return this.cleaning;
  }

  private async removeAll(): Promise<void> {
    this.closed = true;
    for (const stream of this.streams) stream.destroy();
    await this.settled();
    await Promise.all(this.created.map((path) => unlink(path).catch(() => {})));
  }

  private async write(part: Readable, upload: FileUpload): Promise<void> {
    let file: { handle: FileHandle; path: string };
    try {
      file = await this.createTempFile();
    } catch {
      upload.error = UploadError.NO_TMP_DIR;
      part.resume();
      return;
    }
    upload.tmpName = file.path;
    const owner = this.owner;
    if (owner && owner.uid !== 0 && owner.gid !== 0) {
      try {
        await file.handle.chown(owner.uid, owner.gid);
      } catch {
        upload.error = UploadError.CANT_WRITE;
        await file.handle.close().catch(() => {});
        part.resume();
        return;
      }
    }
    if (this.closed) {
      await file.handle.close().catch(() => {});
      part.resume();
      return;
    }
    const stream = file.handle.createWriteStream();
    this.streams.add(stream);
    await new Promise<void>((resolve) => {
      let failed = false;
      stream.on('error', () => {
        if (failed) return;
        failed = true;
        upload.error = UploadError.CANT_WRITE;
        part.unpipe(stream);
        part.resume();
      });
      stream.on('close', () => {
        this.streams.delete(stream);
        upload.size = stream.bytesWritten;
        resolve();
      });
      part.pipe(stream);
    });
  }

  /** Go's os.CreateTemp(dir, "upload"): O_EXCL, mode 0600, a new random number on a name clash. */
  private async createTempFile(): Promise<{ handle: FileHandle; path: string }> {
    for (let attempt = 0; ; attempt++) {
      const path = join(this.dir, `upload${randomInt(0x100000000)}`);
      try {
        const handle = await open(path, 'wx', 0o600);
        this.created.push(path);
        return { handle, path };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= TEMP_NAME_ATTEMPTS) throw error;
      }
    }
  }
}

export interface MultipartReceiver {
  /** Write the request body here, then end() it. */
  readonly sink: Writable;
  /** The fields and files once the closing boundary was seen and every file is written. */
  readonly done: Promise<MultipartForm>;
  /** Stops parsing (limit hit, client gone). Temp files are removed by the session's cleanup(). */
  abort(): void;
}

/**
 * A multipart/form-data parser (busboy's Dicer) that follows Go's multipart.Reader.ReadForm: parts without
 * `Content-Disposition: form-data; name=...` are skipped; a part with a non-empty `filename` is a file, anything
 * else (also `filename=""`) a value; the file name is its base name; `mime` is the part's Content-Type as sent.
 */
export function receiveMultipart(boundary: string, session: UploadSession): MultipartReceiver {
  const dicer = new Dicer({ boundary });
  const values = new Map<string, string[]>();
  const files = new Map<string, FileUpload[]>();
  let parts = 0;
  let openValues = 0; // value parts whose 'end' has not fired yet
  let finished = false; // the parser saw the closing boundary
  let valueBudget = MAX_VALUE_BYTES;
  let failure: Error | null = null;
  let resolveDone!: (form: MultipartForm) => void;
  let rejectDone!: (error: Error) => void;
  const done = new Promise<MultipartForm>((resolve, reject) => {
    resolveDone = resolve;
    rejectDone = reject;
  });
  done.catch(() => {}); // a caller that already gave up must not see an unhandled rejection

  const fail = (error: Error): void => {
    if (failure !== null) return;
    failure = error;
    rejectDone(error);
  };

  // The parser may report the end before the 'end' of an empty last part has fired, so count those ourselves.
  const maybeDone = (): void => {
    if (!finished || openValues > 0 || failure !== null) return;
    session.settled().then(() => {
      if (failure === null) resolveDone({ values, files });
    }, fail);
  };

  const onHeader = (part: Readable, header: Record<string, string[] | undefined>): void => {
    const disposition = header['content-disposition']?.[0];
    const parsed = disposition === undefined ? null : parseMediaType(latin1ToUtf8(disposition));
    const name = parsed !== null && parsed.type === 'form-data' && parsed.params !== null ? (parsed.params['name'] ?? '') : '';
    if (failure !== null || name === '') {
      part.resume();
      return;
    }
    valueBudget -= Buffer.byteLength(name) + PART_OVERHEAD;
    if (valueBudget < 0) {
      fail(new MultipartTooLargeError(MESSAGE_TOO_LARGE));
      part.resume();
      return;
    }
    const fileName = parsed!.params!['filename'] ?? '';
    if (fileName === '') {
      const chunks: Buffer[] = [];
      let size = 0;
      openValues++;
      part.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > valueBudget) fail(new MultipartTooLargeError(MESSAGE_TOO_LARGE));
        else chunks.push(chunk);
      });
      part.on('end', () => {
        valueBudget -= size;
        openValues--;
        if (failure === null) addField(values, name, Buffer.concat(chunks, size).toString('utf8'));
        maybeDone();
      });
      return;
    }
    const upload: FileUpload = {
      name: baseName(fileName),
      mime: latin1ToUtf8(header['content-type']?.[0] ?? '').trim(),
      size: 0,
      error: UploadError.OK,
      tmpName: '',
    };
    addField(files, name, upload);
    if (!session.extensionAllowed(upload.name)) {
      upload.error = UploadError.EXTENSION;
      part.resume();
      return;
    }
    session.receive(part, upload);
  };

  dicer.on('part', (part) => {
    part.on('error', () => {}); // reported once, by the parser itself
    if (failure !== null) {
      part.resume();
      return;
    }
    if (++parts > MAX_PARTS) {
      fail(new MultipartTooLargeError(MESSAGE_TOO_LARGE));
      part.resume();
      return;
    }
    part.once('header', (header) => onHeader(part, header as Record<string, string[] | undefined>));
  });
  dicer.on('error', (error: Error) => fail(new MultipartError(`multipart: ${error.message}`)));
  dicer.on('finish', () => {
    finished = true;
    maybeDone();
  });

  return {
    sink: dicer,
    done,
    abort(): void {
      fail(new MultipartError('multipart: parsing aborted'));
      dicer.destroy();
    },
  };
}

/** The boundary of a multipart/form-data Content-Type; a MultipartError with the text Go's ParseMultipartForm reports. */
export function multipartBoundary(contentType: string): string {
  const media = parseMediaType(contentType);
  if (media.params === null || media.type !== 'multipart/form-data') throw new MultipartError("request Content-Type isn't multipart/form-data");
  const boundary = media.params['boundary'];
  if (boundary === undefined) throw new MultipartError('no multipart boundary param in Content-Type');
  return boundary;
}
