// `http` (compat.md §1.9): address, error code, body limits, middleware list, uploads and the pool.
// Middleware settings (headers, static, ...) are read by the middleware from Config.raw.
import { tmpdir } from 'node:os';
import type { HttpConfig, UploadsConfig } from '../types.js';
import type { SectionReader } from '../reader.js';
import type { SectionContext } from './context.js';
import { readPool } from './pool.js';

const DEFAULT_INTERNAL_ERROR_CODE = 500;
const DEFAULT_MAX_REQUEST_SIZE = 1000 * 1024 * 1024;

/** null when there is no http section (the plugin is off). */
export function readHttp(root: SectionReader, ctx: SectionContext): HttpConfig | null {
  const http = root.section('http');
  if (!http) return null;
  return {
    address: readAddress(http),
    internalErrorCode: readInternalErrorCode(http),
    accessLogs: http.bool('access_logs'),
    maxRequestSize: http.megabytes('max_request_size') || DEFAULT_MAX_REQUEST_SIZE,
    rawBody: http.bool('raw_body'),
    middleware: http.list('middleware'),
    trustedSubnets: http.list('trusted_subnets'),
    uploads: readUploads(http.sectionOrEmpty('uploads')),
    pool: readPool(http.sectionOrEmpty('pool'), ctx),
  };
}

function readAddress(http: SectionReader): string {
  const address = http.string('address').trim();
  if (address === '') {
    http.fail('address', 'unable to run http service, no method has been specified: set address, e.g. address: 127.0.0.1:8080');
  }
  if (!address.includes(':')) http.fail('address', `expected host:port like "127.0.0.1:8080", got ${JSON.stringify(address)}`);
  return address;
}

function readInternalErrorCode(http: SectionReader): number {
  const code = http.uint('internal_error_code') || DEFAULT_INTERNAL_ERROR_CODE;
  if (code < 100 || code > 999) http.fail('internal_error_code', `expected an HTTP status code from 100 to 999, got ${code}`);
  return code;
}

function readUploads(uploads: SectionReader): UploadsConfig {
  return {
    dir: uploads.string('dir') || tmpdir(),
    forbid: normalizeExtensions(uploads.list('forbid')),
    allow: normalizeExtensions(uploads.list('allow')),
  };
}

/** `PHP` and `.php` both mean `.php`: uploads compare lower-cased extensions with their dot. */
function normalizeExtensions(extensions: readonly string[]): string[] {
  const normalized = extensions.map((ext) => ext.trim().toLowerCase()).filter((ext) => ext !== '' && ext !== '.');
  return [...new Set(normalized.map((ext) => (ext.startsWith('.') ? ext : `.${ext}`)))];
}
