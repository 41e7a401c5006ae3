// A small HTTP client over node:http for the integration tests: raw headers kept, body as a Buffer, timings.
import http from 'node:http';
import crypto from 'node:crypto';

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
  /** ms from the request until the first body byte, and until the end */
  firstByteMs: number;
  totalMs: number;
  informational: Array<{ status: number; headers: http.IncomingHttpHeaders }>;
}

export interface RequestOptions {
  method?: string;
  headers?: http.OutgoingHttpHeaders;
  body?: Buffer | string;
  agent?: http.Agent;
  timeoutMs?: number;
}

export function request(url: string, opts: RequestOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const informational: Reply['informational'] = [];
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: opts.agent }, (res) => {
      const chunks: Buffer[] = [];
      let firstByteMs = -1;
      res.on('data', (c: Buffer) => {
        if (firstByteMs < 0) firstByteMs = performance.now() - started;
        chunks.push(c);
      });
      res.on('end', () =>
        resolve({
          status: res.statusCode!,
          headers: res.headers,
          rawHeaders: res.rawHeaders,
          body: Buffer.concat(chunks),
          firstByteMs,
          totalMs: performance.now() - started,
          informational,
        }),
      );
      res.on('error', reject);
    });
    req.on('information', (info) => informational.push({ status: info.statusCode, headers: info.headers }));
    req.setTimeout(opts.timeoutMs ?? 30_000, () => req.destroy(new Error(`request to ${url} timed out`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

export function sha256(data: Buffer | string): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

/** The body /big?size=N sends: `0123456789abcdef` repeated, cut to N bytes. */
export function bigBody(size: number): Buffer {
  return Buffer.from('0123456789abcdef'.repeat(Math.ceil(size / 16)).slice(0, size));
}

/** Build a multipart/form-data body. */
export function multipart(parts: Array<{ name: string; value?: string; filename?: string; type?: string; data?: Buffer }>): {
  body: Buffer;
  contentType: string;
} {
  const boundary = `----rrtsboundary${crypto.randomBytes(8).toString('hex')}`;
  const pieces: Buffer[] = [];
  for (const p of parts) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"`;
    if (p.filename !== undefined) head += `; filename="${p.filename}"\r\nContent-Type: ${p.type ?? 'application/octet-stream'}`;
    pieces.push(Buffer.from(`${head}\r\n\r\n`), p.data ?? Buffer.from(p.value ?? ''), Buffer.from('\r\n'));
  }
  pieces.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(pieces), contentType: `multipart/form-data; boundary=${boundary}` };
}

export interface TrafficResult {
  ok: number;
  failed: number;
  failures: string[];
}

/** Keep requests flowing on 4 keep-alive connections (GET /sleep?ms=5) until stop(); count the failures. */
export function backgroundTraffic(url: string): { stop(): Promise<TrafficResult> } {
  let running = true;
  const result: TrafficResult = { ok: 0, failed: 0, failures: [] };
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const loops = Array.from({ length: 4 }, async () => {
    while (running) {
      const r = await request(`${url}/sleep?ms=5`, { agent }).catch((e: Error) => e);
      if (r instanceof Error || r.status !== 200) {
        result.failed++;
        result.failures.push(r instanceof Error ? r.message : `status ${r.status}`);
      } else result.ok++;
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      agent.destroy();
      return result;
    },
  };
}
