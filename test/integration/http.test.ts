// HTTP behaviour with real workers: uploads, raw bodies, big and streamed responses, 103, concurrency, 413.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { MODES, startRrts, type RrtsInstance } from './harness.js';
import { bigBody, multipart, request, sha256 } from './client.js';

for (const mode of MODES) {
  describe(`http over pipes with 4 workers (${mode})`, () => {
    let rr: RrtsInstance;
    before(async () => {
      rr = await startRrts({ mode, workers: 4 });
    });
    after(async () => {
      await rr?.stop();
    });

    it('delivers a 10 MiB multipart upload byte for byte and removes the temp file afterwards', async () => {
      const file = crypto.randomBytes(10 * 1024 * 1024);
      const { body, contentType } = multipart([
        { name: 'title', value: 'holiday' },
        { name: 'photo', filename: 'photo.jpg', type: 'image/jpeg', data: file },
      ]);
      const r = await request(`${rr.url}/echo`, { method: 'POST', headers: { 'Content-Type': contentType }, body });
      assert.equal(r.status, 200);
      const echo = JSON.parse(r.body.toString());
      assert.deepEqual(echo.parsed, { title: 'holiday' });
      const photo = echo.uploads.photo;
      assert.equal(photo.name, 'photo.jpg');
      assert.equal(photo.mime, 'image/jpeg');
      assert.equal(photo.size, file.length);
      assert.equal(photo.error, 0);
      assert.equal(photo.exists, true);
      assert.equal(photo.sha256, sha256(file));
      await rr.waitFor(() => !fs.existsSync(photo.tmpName), 'the upload temp file to be removed', 5000);
    });

    it('passes a raw JSON body untouched', async () => {
      const json = '{"a": [1, 2, {"b": "ü"}],   "c": null}';
      const r = await request(`${rr.url}/echo`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: json });
      const echo = JSON.parse(r.body.toString());
      assert.equal(Buffer.from(echo.body, 'base64').toString(), json);
      assert.equal(echo.ctx.parsed, false);
    });

    it('sends a 50 MiB response intact', async () => {
      const size = 50 * 1024 * 1024;
      const r = await request(`${rr.url}/big?size=${size}`);
      assert.equal(r.status, 200);
      assert.equal(r.body.length, size);
      assert.equal(sha256(r.body), sha256(bigBody(size)));
    });

    it('streams: the first chunk arrives long before the end', async () => {
      const r = await request(`${rr.url}/stream?chunks=5&delay_ms=300`);
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), [0, 1, 2, 3, 4].map((i) => `chunk ${i}\n`).join(''));
      assert.ok(r.totalMs >= 1100, `the stream took ${r.totalMs} ms`);
      assert.ok(r.firstByteMs < r.totalMs - 800, `first byte at ${r.firstByteMs} ms, end at ${r.totalMs} ms`);
    });

    it('sends 103 Early Hints, then 200', async () => {
      const r = await request(`${rr.url}/early-hints`);
      assert.equal(r.informational.length, 1);
      assert.equal(r.informational[0]!.status, 103);
      assert.match(String(r.informational[0]!.headers.link), /style\.css/);
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'after hints');
    });

    it('spreads 200 requests over 16 connections across the 4 workers', async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
      try {
        const replies = await Promise.all(Array.from({ length: 200 }, () => request(`${rr.url}/sleep?ms=5`, { agent })));
        assert.ok(replies.every((r) => r.status === 200));
        const pids = await Promise.all(Array.from({ length: 40 }, () => request(`${rr.url}/pid`, { agent })));
        const distinct = new Set(pids.map((r) => r.body.toString()));
        assert.equal(distinct.size, 4, `workers used: ${[...distinct].join(',')}`);
      } finally {
        agent.destroy();
      }
    });
  });
}

for (const mode of MODES) {
  describe(`max_request_size (${mode})`, () => {
    let rr: RrtsInstance;
    before(async () => {
      rr = await startRrts({ mode, workers: 1, config: { http: { max_request_size: 1 } } });
    });
    after(async () => {
      await rr?.stop();
    });

    it('answers 413 to a 2 MB body', async () => {
      const r = await request(`${rr.url}/echo`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/octet-stream' },
        body: Buffer.alloc(2_000_000, 1),
      }).catch((err: Error) => err);
      assert.ok(!(r instanceof Error), `request failed: ${(r as Error).message}`);
      assert.equal(r.status, 413);
      assert.equal(r.body.toString(), 'serve_http: http: request body too large\n', 'the body RoadRunner writes (Go http.Error)');
      assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8');
      assert.equal(r.headers['x-content-type-options'], 'nosniff');
      const ok = await request(`${rr.url}/hello`);
      assert.equal(ok.status, 200);
    });
  });
}
