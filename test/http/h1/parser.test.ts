// Unit tests of src/http/h1/parser.ts: what each request head says (framing, keep-alive, Expect, target form),
// Go's limits and status codes, pipelining with pause/resume, and chunked bodies in pieces.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_MAX_HEADER_BYTES, H1Parser, H1_ERROR_STATUS, type H1ParseError, type RequestHead } from '../../../src/http/h1/parser.js';
import { parseWithRrts } from './recorders.js';

interface Events {
  heads: RequestHead[];
  log: string[];
  errors: H1ParseError[];
}

function collect(input: string | Buffer | readonly Buffer[], limits?: ConstructorParameters<typeof H1Parser>[1]): Events & { parser: H1Parser } {
  const events: Events = { heads: [], log: [], errors: [] };
  const parser = new H1Parser(
    {
      onRequest(head) {
        events.heads.push(head);
        events.log.push(`head ${head.method} ${head.target}`);
      },
      onBody(chunk) {
        events.log.push(`body ${chunk.toString('latin1')}`);
      },
      onRequestEnd(trailers) {
        events.log.push(`end${trailers === null ? '' : ' ' + trailers.join('|')}`);
      },
      onError(error) {
        events.errors.push(error);
        events.log.push(`error ${error.reason}`);
      },
    },
    limits,
  );
  const chunks = Array.isArray(input) ? input : [typeof input === 'string' ? Buffer.from(input, 'latin1') : (input as Buffer)];
  for (const chunk of chunks) parser.execute(chunk);
  return { ...events, parser };
}

function head(input: string): RequestHead {
  const { heads, errors } = collect(input);
  assert.deepEqual(
    errors.map((e) => e.message),
    [],
  );
  assert.equal(heads.length, 1);
  return heads[0]!;
}

function refusal(input: string, limits?: ConstructorParameters<typeof H1Parser>[1]): H1ParseError {
  const { errors } = collect(input, limits);
  assert.equal(errors.length, 1, `expected one refusal of ${JSON.stringify(input.slice(0, 80))}`);
  return errors[0]!;
}

describe('H1Parser request heads', () => {
  it('gives method, target, version and the header lines in order, values trimmed', () => {
    const h = head('GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nX-A:  one \t\r\nx-a: two\r\n\r\n');
    assert.equal(h.method, 'GET');
    assert.equal(h.target, '/a?b=1');
    assert.equal(h.targetForm, 'origin');
    assert.equal(`${h.versionMajor}.${h.versionMinor}`, '1.1');
    assert.deepEqual(h.rawHeaders, ['Host', 'example.com', 'X-A', 'one', 'x-a', 'two']);
    assert.equal(h.host, 'example.com');
    assert.equal(h.contentLength, 0);
    assert.equal(h.keepAlive, true);
    assert.equal(h.headBytes, 65);
  });

  it('names the four request-target forms', () => {
    assert.equal(head('OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n').targetForm, 'asterisk');
    assert.equal(head('GET http://h/p HTTP/1.1\r\nHost: h\r\n\r\n').targetForm, 'absolute');
    assert.equal(head('CONNECT h:443 HTTP/1.1\r\n\r\n').targetForm, 'authority');
    assert.equal(head('CONNECT /rpc HTTP/1.1\r\nHost: h\r\n\r\n').targetForm, 'origin');
  });

  it('decides keep-alive as Go does for HTTP/1.0 and 1.1', () => {
    assert.equal(head('GET / HTTP/1.0\r\n\r\n').keepAlive, false);
    assert.equal(head('GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n').keepAlive, true);
    assert.equal(head('GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n').keepAlive, false);
    assert.equal(head('GET / HTTP/1.1\r\nHost: h\r\n\r\n').keepAlive, true);
    assert.equal(head('GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nConnection: close\r\n\r\n').keepAlive, false);
    assert.equal(head('CONNECT h:443 HTTP/1.1\r\n\r\n').keepAlive, false);
  });

  it('surfaces Expect: 100-continue only when a body is to come on HTTP/1.1, and flags other expectations', () => {
    assert.equal(head('POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 5\r\n\r\n').expectContinue, true);
    assert.equal(head('POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n').expectContinue, true);
    assert.equal(head('POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n').expectContinue, false);
    assert.equal(head('POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello').expectContinue, false);
    const other = head('GET / HTTP/1.1\r\nHost: h\r\nExpect: something-else\r\n\r\n');
    assert.equal(other.expectContinue, false);
    assert.equal(other.expectUnsupported, true);
  });

  it('lets a chunked Transfer-Encoding override Content-Length, and ignores Transfer-Encoding on HTTP/1.0', () => {
    assert.equal(head('POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n').chunked, true);
    assert.equal(head('POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n').contentLength, 0);
    assert.equal(head('POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 7\r\nContent-Length: 7\r\n\r\n1234567').contentLength, 7);
  });
});

describe('H1Parser refusals and their statuses', () => {
  const cases: [string, string, string, number][] = [
    ['no version (HTTP/0.9)', 'GET /\r\n\r\n', 'HTTP_09', 400],
    ['bad version', 'GET / HTTP/x.1\r\nHost: h\r\n\r\n', 'INVALID_VERSION', 400],
    ['HTTP/2.0 request line', 'GET / HTTP/2.0\r\nHost: h\r\n\r\n', 'UNSUPPORTED_VERSION', 505],
    ['HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'H2_PREFACE', 505],
    ['method with a bad byte', 'G@T / HTTP/1.1\r\nHost: h\r\n\r\n', 'INVALID_METHOD', 400],
    ['bad escape', 'GET /%g0 HTTP/1.1\r\nHost: h\r\n\r\n', 'INVALID_TARGET', 400],
    ['bad name', 'GET / HTTP/1.1\r\nHost: h\r\nBad Name: v\r\n\r\n', 'INVALID_HEADER_NAME', 400],
    ['NUL in a value', 'GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n', 'INVALID_HEADER_VALUE', 400],
    ['obs-fold', 'GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n', 'OBS_FOLD', 400],
    ['bare CR', 'GET / HTTP/1.1\r\nHost: h\r\n\rX: a\r\n\r\n', 'BARE_CR', 400],
    ['no Host', 'GET / HTTP/1.1\r\n\r\n', 'MISSING_HOST', 400],
    ['two Hosts', 'GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n', 'DUPLICATE_HOST', 400],
    ['bad Host', 'GET / HTTP/1.1\r\nHost: a b\r\n\r\n', 'INVALID_HOST', 400],
    ['bad Content-Length', 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1e3\r\n\r\n', 'INVALID_CONTENT_LENGTH', 400],
    ['empty Content-Length', 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \r\n\r\n', 'INVALID_CONTENT_LENGTH', 400],
    ['two Content-Lengths', 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', 'CONFLICTING_CONTENT_LENGTH', 400],
    ['gzip transfer coding', 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n', 'UNSUPPORTED_TRANSFER_ENCODING', 501],
    ['bad chunk size', 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n', 'INVALID_CHUNK_SIZE', 400],
    ['chunk size line bare LF', 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\nx', 'INVALID_CHUNK_SIZE', 400],
    ['chunk data without CRLF', 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy', 'INVALID_CHUNK_END', 400],
    ['trailer with bare LF', 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: 1\n\r\n', 'INVALID_TRAILER', 400],
  ];
  for (const [name, input, reason, status] of cases) {
    it(`${name}: ${reason} -> ${status}`, () => {
      const error = refusal(input);
      assert.equal(error.reason, reason);
      assert.equal(error.status, status);
      assert.equal(error.code, `ERR_HTTP_${reason}`);
      assert.equal(H1_ERROR_STATUS[error.reason], status);
    });
  }

  it("allows a header section of exactly 1 MiB + 4096 bytes and answers 431 one byte over (Go's limit)", () => {
    const prefix = 'GET / HTTP/1.1\r\nHost: h\r\nX-Fill: ';
    const fill = DEFAULT_MAX_HEADER_BYTES - prefix.length - 4;
    const exact = `${prefix}${'f'.repeat(fill)}\r\n\r\n`;
    assert.equal(exact.length, DEFAULT_MAX_HEADER_BYTES);
    assert.equal(head(exact).headBytes, DEFAULT_MAX_HEADER_BYTES);
    const over = `${prefix}${'f'.repeat(fill + 1)}\r\n\r\n`;
    const error = refusal(over);
    assert.equal(error.reason, 'HEADERS_TOO_LARGE');
    assert.equal(error.status, 431);
  });

  it('answers 431 while the section is still arriving, without waiting for its end', () => {
    const reads = [Buffer.from('GET / HTTP/1.1\r\nHost: h\r\nX: '), Buffer.alloc(600, 'a'), Buffer.alloc(600, 'b')];
    const { errors, log } = collect(reads, { maxHeaderBytes: 1000 });
    assert.deepEqual(log, ['error HEADERS_TOO_LARGE']);
    assert.equal(errors[0]!.status, 431);
  });

  it('limits the number of header lines when asked (431)', () => {
    const lines = (n: number): string => `GET / HTTP/1.1\r\n${'X: 1\r\n'.repeat(n - 1)}Host: h\r\n\r\n`;
    assert.equal(head(lines(50)).rawHeaders.length, 100);
    assert.equal(collect(lines(50), { maxHeaderCount: 50 }).errors.length, 0);
    const error = refusal(lines(51), { maxHeaderCount: 50 });
    assert.equal(error.reason, 'TOO_MANY_HEADERS');
    assert.equal(error.status, 431);
  });

  it('refuses a chunk line of 4096 bytes (extensions included) as Go does, and accepts 4095', () => {
    const request = (ext: number): string => `POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1;${'e'.repeat(ext)}\r\nx\r\n0\r\n\r\n`;
    assert.deepEqual(collect(request(4093)).errors, []);
    assert.equal(refusal(request(4094)).reason, 'CHUNK_LINE_TOO_LONG');
  });

  it('refuses a chunked body that is mostly framing (Go\'s "too much non-data")', () => {
    const chunk = `1;${'e'.repeat(200)}\r\nx\r\n`;
    const error = refusal(`POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n${chunk.repeat(200)}0\r\n\r\n`);
    assert.equal(error.reason, 'CHUNK_OVERHEAD');
    // Small chunks with short lines are fine however many there are.
    assert.deepEqual(collect(`POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n${'1\r\nx\r\n'.repeat(5000)}0\r\n\r\n`).errors, []);
  });

  it('parses nothing more after a refusal', () => {
    const { log, parser } = collect('GET / HTTP/1.1\r\n\r\n');
    parser.execute(Buffer.from('GET / HTTP/1.1\r\nHost: h\r\n\r\n'));
    assert.deepEqual(log, ['error MISSING_HOST']);
    assert.equal(parser.finished, true);
  });
});

describe('H1Parser bodies and pipelining', () => {
  it('delivers Content-Length bodies as they arrive, then the next pipelined request', () => {
    const { log } = collect([
      Buffer.from('POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhel'),
      Buffer.from('lo wor'),
      Buffer.from('ldGET /b HTTP/1.1\r\nHost: h\r\n\r\n'),
    ]);
    assert.deepEqual(log, ['head POST /a', 'body hel', 'body lo wor', 'body ld', 'end', 'head GET /b', 'end']);
  });

  it('removes chunked framing and gives the trailers', () => {
    const { log } = collect('POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: 5 \r\nY: z\r\n\r\n');
    assert.deepEqual(log, ['head POST /', 'body abc', 'body de', 'end X-Sum|5|Y|z']);
  });

  it('stops after a request that closes the connection: what follows is not parsed', () => {
    const { log, parser } = collect('GET /1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n');
    assert.deepEqual(log, ['head GET /1', 'end']);
    assert.equal(parser.finished, true);
    assert.equal(parser.inRequest, false);
  });

  it('treats the bytes after a CONNECT head as tunnel data, not requests', () => {
    const { log, parser } = collect('CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n\x16\x03\x01garbage');
    assert.deepEqual(log, ['head CONNECT h:443', 'end']);
    assert.equal(parser.finished, true);
  });

  it('skips up to 4 CR/LF bytes after a POST only (old clients add CRLF after a body)', () => {
    const after = (method: string, extra: string): string[] =>
      collect(`${method} / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n${extra}GET /n HTTP/1.1\r\nHost: h\r\n\r\n`).log;
    assert.deepEqual(after('POST', '\r\n\r\n'), ['head POST /', 'end', 'head GET /n', 'end']);
    assert.deepEqual(after('POST', '\r\n\r\n\r\n'), ['head POST /', 'end', 'error INVALID_REQUEST_LINE']);
    assert.deepEqual(after('PUT', '\r\n'), ['head PUT /', 'end', 'error INVALID_REQUEST_LINE']);
  });

  it('holds pipelined input while paused and goes on at resume()', () => {
    const log: string[] = [];
    const parser: H1Parser = new H1Parser({
      onRequest(h) {
        log.push(`head ${h.target}`);
      },
      onBody(chunk) {
        log.push(`body ${chunk.toString()}`);
      },
      onRequestEnd() {
        log.push('end');
        parser.pause();
      },
      onError(error) {
        log.push(`error ${error.reason}`);
      },
    });
    parser.execute(Buffer.from('GET /1 HTTP/1.1\r\nHost: h\r\n\r\nPOST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok'));
    assert.deepEqual(log, ['head /1', 'end']);
    assert.equal(parser.isPaused, true);
    assert.ok(parser.heldBytes > 0);
    parser.execute(Buffer.from('GET /3 HTTP/1.1\r\nHost: h\r\n\r\n'));
    assert.deepEqual(log, ['head /1', 'end']);
    parser.resume();
    assert.deepEqual(log, ['head /1', 'end', 'head /2', 'body ok', 'end']);
    parser.resume();
    assert.deepEqual(log, ['head /1', 'end', 'head /2', 'body ok', 'end', 'head /3', 'end']);
    assert.equal(parser.heldBytes, 0);
  });

  it('reports a request cut short at the end of input', () => {
    for (const cut of [
      'GET / HTTP/1.1\r\nHo',
      'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nab',
      'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n',
    ]) {
      assert.equal(parseWithRrts([Buffer.from(cut)]).error, 'INCOMPLETE', cut);
    }
    assert.equal(parseWithRrts([Buffer.from('GET / HTTP/1.1\r\nHost: h\r\n\r\n')]).error, '');
  });

  it('gathers a head sent one byte per read in linear time (a 256 KiB head, 256 Ki reads)', () => {
    const big = Buffer.from(`GET / HTTP/1.1\r\nHost: h\r\nX-Big: ${'b'.repeat(256 * 1024)}\r\n\r\n`);
    let heads = 0;
    const parser = new H1Parser({
      onRequest() {
        heads++;
      },
      onBody() {},
      onRequestEnd() {},
      onError(error) {
        throw error;
      },
    });
    for (let i = 0; i < big.length; i++) parser.execute(big.subarray(i, i + 1));
    assert.equal(heads, 1);
  });
});
