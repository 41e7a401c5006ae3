// Upload rules end to end: uploads.forbid gives error 8 and still reaches PHP; temp files in uploads.dir are
// removed after the request, also when the worker dies in the middle of it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRrts, type RrtsInstance } from './harness.js';
import { multipart, request, sha256 } from './client.js';

describe('http.uploads', () => {
  let rr: RrtsInstance;
  let uploadsDir: string;
  before(async () => {
    uploadsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-uploads-'));
    rr = await startRrts({ workers: 1, config: { http: { uploads: { dir: uploadsDir, forbid: ['.php', 'EXE'] } } } });
  });
  after(async () => {
    await rr?.stop();
    fs.rmSync(uploadsDir, { recursive: true, force: true });
  });

  it('marks a forbidden extension with error 8 (UPLOAD_ERR_EXTENSION) and still calls PHP', async () => {
    const ok = crypto.randomBytes(2048);
    const { body, contentType } = multipart([
      { name: 'evil', filename: 'shell.PHP', data: Buffer.from('<?php system($_GET["c"]);') },
      { name: 'tool', filename: 'setup.exe', data: Buffer.from('MZ') },
      { name: 'doc', filename: 'notes.txt', data: ok },
    ]);
    const r = await request(`${rr.url}/echo`, { method: 'POST', headers: { 'Content-Type': contentType }, body });
    assert.equal(r.status, 200);
    const { uploads } = JSON.parse(r.body.toString());
    assert.equal(uploads.evil.error, 8);
    assert.equal(uploads.evil.exists, false);
    assert.equal(uploads.tool.error, 8);
    assert.equal(uploads.doc.error, 0);
    assert.equal(uploads.doc.sha256, sha256(ok));
    assert.equal(path.dirname(uploads.doc.tmpName), uploadsDir);
    await rr.waitFor(() => !fs.existsSync(uploads.doc.tmpName), 'the temp file to be removed', 5000);
  });

  it('removes the temp files when the worker crashes mid-request', async () => {
    const { body, contentType } = multipart([
      { name: 'a', filename: 'a.bin', data: crypto.randomBytes(300_000) },
      { name: 'b', filename: 'b.bin', data: crypto.randomBytes(1000) },
    ]);
    const r = await request(`${rr.url}/exit?code=1`, { method: 'POST', headers: { 'Content-Type': contentType }, body });
    assert.equal(r.status, 500);
    await rr.waitFor(() => fs.readdirSync(uploadsDir).length === 0, `uploads dir to be empty (has ${fs.readdirSync(uploadsDir).join(',')})`, 5000);
    // and the replacement worker answers
    const next = await request(`${rr.url}/hello`);
    assert.equal(next.status, 200);
  });
});
