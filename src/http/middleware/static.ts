// The `static` middleware (http.static): GET and HEAD of an existing regular file inside `dir` are answered from
// disk with Last-Modified, an ETag (calculate_etag), 304 for If-None-Match / If-Modified-Since and single byte
// ranges (206, 416). Nothing outside `dir` is ever served: a `..` segment or a symlink leading out is refused with
// 403 (checked on the real path). Forbidden or not-allowed extensions, directories and missing files go to PHP.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import mime from 'mime-types';
import type { StaticConfig } from '../../config/types.js';
import { addRequestHeader, type AnyRequest, type AnyResponse, type Middleware } from './types.js';

// Go's built-in table (mime.TypeByExtension), which RoadRunner's static files answer with; mime-types covers the rest.
const GO_MIME: Record<string, string> = {
  '.avif': 'image/avif',
  '.css': 'text/css; charset=utf-8',
  '.gif': 'image/gif',
  '.htm': 'text/html; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.jpeg': 'image/jpeg',
  '.jpg': 'image/jpeg',
  '.js': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.mjs': 'text/javascript; charset=utf-8',
  '.pdf': 'application/pdf',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.wasm': 'application/wasm',
  '.webp': 'image/webp',
  '.xml': 'text/xml; charset=utf-8',
};

/** The Content-Type of a static file, by its extension. */
export function contentTypeOf(file: string): string {
  const ext = path.extname(file).toLowerCase();
  const known = GO_MIME[ext] ?? (ext === '' ? false : mime.contentType(ext));
  return known || 'application/octet-stream';
}

type Lookup = { kind: 'file'; file: string; stat: fs.Stats } | { kind: 'refused' } | { kind: 'none' };

export function staticFiles(config: StaticConfig): Middleware {
  const etags = new EtagCache(config.weak);
  const requestHeaders = Object.entries(config.request);
  return (next) => async (req, res, state) => {
    for (const [name, value] of requestHeaders) addRequestHeader(req, name, value);
    if (req.method !== 'GET' && req.method !== 'HEAD') return next(req, res, state);
    const found = await lookup(config, req.url ?? '/');
    if (found.kind === 'none') return next(req, res, state);
    if (found.kind === 'refused') {
      res.writeHead(403, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': 9 });
      res.end('forbidden');
      return;
    }
    for (const [name, value] of Object.entries(config.response)) res.setHeader(name, value);
    const etag = config.calculateEtag ? await etags.get(found.file, found.stat) : null;
    await sendFile(req, res, found.file, found.stat, etag);
  };
}

/** Maps the URL path to a file inside config.dir. */
export async function lookup(config: StaticConfig, url: string): Promise<Lookup> {
  const q = url.indexOf('?');
  let decoded: string;
  try {
    decoded = decodeURIComponent(q === -1 ? url : url.slice(0, q));
  } catch {
    return { kind: 'none' };
  }
  if (decoded.includes('\0')) return { kind: 'refused' };
  const segments = decoded.split(/[/\\]/);
  if (segments.includes('..')) return { kind: 'refused' };
  const ext = path.extname(decoded).toLowerCase();
  if (config.forbid.includes(ext)) return { kind: 'none' };
  if (config.allow.length > 0 && !config.allow.includes(ext)) return { kind: 'none' };
  const candidate = path.join(config.dir, ...segments.filter((s) => s !== '' && s !== '.'));
  let real: string;
  try {
    real = await fs.promises.realpath(candidate);
  } catch {
    return { kind: 'none' };
  }
  if (real !== config.dir && !real.startsWith(config.dir + path.sep)) return { kind: 'refused' };
  const stat = await fs.promises.stat(real).catch(() => null);
  if (!stat || !stat.isFile()) return { kind: 'none' };
  return { kind: 'file', file: real, stat };
}

async function sendFile(req: AnyRequest, res: AnyResponse, file: string, stat: fs.Stats, etag: string | null): Promise<void> {
  const lastModified = new Date(Math.floor(stat.mtimeMs / 1000) * 1000);
  res.setHeader('Last-Modified', lastModified.toUTCString());
  res.setHeader('Accept-Ranges', 'bytes');
  if (etag) res.setHeader('ETag', etag);
  if (!res.hasHeader('content-type')) res.setHeader('Content-Type', contentTypeOf(file));
  if (notModified(req, etag, lastModified)) {
    res.removeHeader('content-type');
    res.writeHead(304);
    res.end();
    return;
  }
  const size = stat.size;
  let start = 0;
  let end = size - 1;
  let status = 200;
  const range = req.headers.range;
  if (range !== undefined && ifRangeMatches(req, etag, lastModified)) {
    const parsed = parseRange(String(range), size);
    if (parsed === 'unsatisfiable') {
      res.writeHead(416, { 'Content-Range': `bytes */${size}`, 'Content-Length': 0 });
      res.end();
      return;
    }
    if (parsed !== null) {
      [start, end] = parsed;
      status = 206;
      res.setHeader('Content-Range', `bytes ${start}-${end}/${size}`);
    }
  }
  const length = size === 0 ? 0 : end - start + 1;
  res.writeHead(status, { 'Content-Length': length });
  if (req.method === 'HEAD' || length === 0) {
    res.end();
    return;
  }
  await copyFile(fs.createReadStream(file, { start, end }), res);
}

/** The file into the response, waiting for 'drain' when the client reads slower than the disk (any response kind). */
async function copyFile(source: fs.ReadStream, res: AnyResponse): Promise<void> {
  try {
    for await (const chunk of source) {
      if (res.destroyed) return;
      if (!res.write(chunk as Buffer)) await drainedOrClosed(res);
    }
    res.end();
  } catch {
    res.destroy();
  } finally {
    source.destroy();
  }
}

function drainedOrClosed(res: AnyResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

function notModified(req: AnyRequest, etag: string | null, lastModified: Date): boolean {
  const inm = req.headers['if-none-match'];
  if (inm !== undefined) {
    if (etag === null) return false;
    const bare = (tag: string): string => tag.trim().replace(/^W\//, '');
    return (
      String(inm).trim() === '*' ||
      String(inm)
        .split(',')
        .some((tag) => bare(tag) === bare(etag))
    );
  }
  const ims = req.headers['if-modified-since'];
  if (ims !== undefined) {
    const since = Date.parse(String(ims));
    return !Number.isNaN(since) && lastModified.getTime() <= since;
  }
  return false;
}

function ifRangeMatches(req: AnyRequest, etag: string | null, lastModified: Date): boolean {
  const ifRange = req.headers['if-range'];
  if (ifRange === undefined) return true;
  const value = String(ifRange).trim();
  if (value.startsWith('"') || value.startsWith('W/')) return etag !== null && !etag.startsWith('W/') && value === etag;
  return Date.parse(value) === lastModified.getTime();
}

/** One `bytes=` range as [start, end] inclusive; null (ignore, send all) for several or garbled ranges. */
export function parseRange(header: string, size: number): [number, number] | 'unsatisfiable' | null {
  const m = /^bytes=\s*(\d*)\s*-\s*(\d*)\s*$/.exec(header.trim());
  if (!m) return null;
  const [, from = '', to = ''] = m;
  if (from === '' && to === '') return null;
  if (from === '') {
    const suffix = Number(to);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return [Math.max(0, size - suffix), size - 1];
  }
  const start = Number(from);
  if (start >= size) return 'unsatisfiable';
  const end = to === '' ? size - 1 : Math.min(Number(to), size - 1);
  if (end < start) return null;
  return [start, end];
}

/** Content hashes, recomputed only when a file's size or mtime changes. */
class EtagCache {
  private readonly entries = new Map<string, { key: string; etag: string }>();
  constructor(private readonly weak: boolean) {}

  async get(file: string, stat: fs.Stats): Promise<string> {
    const key = `${stat.size}-${stat.mtimeMs}`;
    const cached = this.entries.get(file);
    if (cached?.key === key) return cached.etag;
    const hash = crypto.createHash('sha1');
    for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
    const tag = `"${hash.digest('base64url').slice(0, 22)}"`;
    const etag = this.weak ? `W/${tag}` : tag;
    if (this.entries.size > 10_000) this.entries.clear();
    this.entries.set(file, { key, etag });
    return etag;
  }
}
