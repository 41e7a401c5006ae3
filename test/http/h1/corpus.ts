// Requests for the differential test of src/http/h1/parser.ts against llhttp: valid ones, the hostile ones request
// smuggling and parser-confusion attacks use, and generated variants (every control byte in each place).
// A case marked `go` is a deliberate difference: llhttp decides otherwise and rrts follows Go's net/http, whose rule
// is named.

export interface Case {
  name: string;
  bytes: string;
  /** Set where rrts follows Go and llhttp differs: does Go accept the input, and by which rule. */
  go?: { accept: boolean; rule: string };
}

const H = 'Host: example.com\r\n';

function get(target: string, headers = '', version = 'HTTP/1.1'): string {
  return `GET ${target} ${version}\r\n${H}${headers}\r\n`;
}

function post(headers: string, body: string): string {
  return `POST /submit HTTP/1.1\r\n${H}${headers}\r\n${body}`;
}

const valid: Case[] = [
  { name: 'minimal GET', bytes: get('/') },
  { name: 'wrk GET', bytes: 'GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n' },
  {
    name: 'browser GET',
    bytes: get(
      '/products/42?ref=home&sort=price',
      'User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0\r\nAccept: text/html,*/*;q=0.8\r\n' +
        'Accept-Language: en-US,en;q=0.9\r\nAccept-Encoding: gzip, deflate, br\r\nConnection: keep-alive\r\n' +
        'Cookie: a=1; b=2\r\nCache-Control: max-age=0\r\n',
    ),
  },
  { name: 'query and fragment-like bytes', bytes: get('/a/b?x=1&y=%20#frag') },
  { name: 'percent escapes', bytes: get('/caf%C3%A9/%2F?q=%zz') },
  { name: 'asterisk OPTIONS', bytes: 'OPTIONS * HTTP/1.1\r\n' + H + '\r\n' },
  { name: 'absolute-form', bytes: get('http://example.com/path?q=1') },
  { name: 'absolute-form with port and userinfo', bytes: get('http://user:pw@example.com:8080/p') },
  { name: 'absolute-form https IPv6', bytes: get('https://[::1]:8443/p') },
  { name: 'CONNECT authority-form', bytes: 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n' },
  { name: 'HEAD', bytes: 'HEAD / HTTP/1.1\r\n' + H + '\r\n' },
  { name: 'DELETE', bytes: 'DELETE /item/1 HTTP/1.1\r\n' + H + '\r\n' },
  { name: 'PATCH with body', bytes: 'PATCH /item HTTP/1.1\r\n' + H + 'Content-Length: 3\r\n\r\nabc' },
  { name: 'PUT with body', bytes: 'PUT /item HTTP/1.1\r\n' + H + 'Content-Length: 5\r\n\r\nhello' },
  { name: 'POST Content-Length', bytes: post('Content-Type: text/plain\r\nContent-Length: 11\r\n', 'hello world') },
  { name: 'POST Content-Length 0', bytes: post('Content-Length: 0\r\n', '') },
  { name: 'POST without length', bytes: post('', '') },
  { name: 'POST Content-Length with spaces', bytes: post('Content-Length:   4  \r\n', 'abcd') },
  { name: 'POST binary body', bytes: post('Content-Length: 6\r\n', '\x00\r\n\xff\x80\n') },
  { name: 'chunked', bytes: post('Transfer-Encoding: chunked\r\n', '5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n') },
  { name: 'chunked upper-case hex', bytes: post('Transfer-Encoding: chunked\r\n', 'A\r\n0123456789\r\n0\r\n\r\n') },
  { name: 'chunked leading zeros', bytes: post('Transfer-Encoding: chunked\r\n', '0005\r\nhello\r\n000\r\n\r\n') },
  { name: 'chunked with extensions', bytes: post('Transfer-Encoding: chunked\r\n', '5;a=b;c="d"\r\nhello\r\n0;x\r\n\r\n') },
  { name: 'chunked with trailers', bytes: post('Transfer-Encoding: chunked\r\n', '3\r\nabc\r\n0\r\nX-Sum: 1\r\nX-Other: two\r\n\r\n') },
  { name: 'Transfer-Encoding value case', bytes: post('Transfer-Encoding: Chunked\r\n', '1\r\na\r\n0\r\n\r\n') },
  { name: 'pipelined GETs', bytes: get('/1') + get('/2') + get('/3') },
  { name: 'pipelined POST then GET', bytes: post('Content-Length: 2\r\n', 'ok') + get('/after') },
  { name: 'pipelined chunked then GET', bytes: post('Transfer-Encoding: chunked\r\n', '2\r\nok\r\n0\r\n\r\n') + get('/after') },
  { name: 'Connection: close', bytes: get('/', 'Connection: close\r\n') },
  { name: 'Connection close token in a list', bytes: get('/', 'Connection: Upgrade, CLOSE\r\n') },
  { name: 'HTTP/1.0', bytes: 'GET / HTTP/1.0\r\n\r\n' },
  { name: 'HTTP/1.0 keep-alive', bytes: 'GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n' + 'GET /2 HTTP/1.0\r\n\r\n' },
  { name: 'HTTP/1.0 with Host', bytes: 'GET / HTTP/1.0\r\n' + H + '\r\n' },
  { name: 'HTTP/1.0 POST Content-Length', bytes: 'POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi' },
  { name: 'duplicate ordinary headers kept in order', bytes: get('/', 'X-A: 1\r\nx-a: 2\r\nX-A: 3\r\n') },
  { name: 'empty header value', bytes: get('/', 'X-Empty:\r\nX-Space:   \r\n') },
  { name: 'value with inner spaces and tabs', bytes: get('/', 'X-V: a \t b\t\r\n') },
  { name: 'value with obs-text', bytes: get('/', 'X-Latin: caf\xe9 \xff\r\n') },
  { name: 'header name with every tchar', bytes: get('/', "!#$%&'*+-.^_`|~09AZaz: v\r\n") },
  { name: 'Expect 100-continue', bytes: post('Expect: 100-continue\r\nContent-Length: 2\r\n', 'hi') },
  { name: 'Upgrade websocket is an ordinary request', bytes: get('/ws', 'Connection: Upgrade\r\nUpgrade: websocket\r\n') },
  {
    name: 'Upgrade h2c is an ordinary request',
    bytes: get('/', 'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n'),
  },
  { name: 'empty Host on HTTP/1.1', bytes: 'GET / HTTP/1.1\r\nHost:\r\n\r\n' },
  { name: 'long header value (64 KiB)', bytes: get('/', `X-Long: ${'v'.repeat(65536)}\r\n`) },
  { name: 'many headers (500)', bytes: get('/', Array.from({ length: 500 }, (_, i) => `X-H${i}: ${i}\r\n`).join('')) },
  { name: 'large body (100 KiB)', bytes: post('Content-Length: 102400\r\n', 'b'.repeat(102400)) },
  { name: 'large chunk', bytes: post('Transfer-Encoding: chunked\r\n', '8000\r\n' + 'c'.repeat(0x8000) + '\r\n0\r\n\r\n') },
  { name: 'unreserved and sub-delims in path', bytes: get("/-._~!$&'()*+,;=:@/") },
  {
    name: 'target with non-ASCII bytes',
    bytes: get('/caf\xc3\xa9'),
    go: { accept: true, rule: 'url.ParseRequestURI: bytes from 0x80 up are left as they are' },
  },
];

const hostile: Case[] = [
  // Framing conflicts (request smuggling).
  {
    name: 'CL + TE chunked',
    bytes: post('Content-Length: 4\r\nTransfer-Encoding: chunked\r\n', '2\r\nok\r\n0\r\n\r\n'),
    go: { accept: true, rule: 'transfer.go parseTransferEncoding: a chunked Transfer-Encoding overrides and deletes Content-Length' },
  },
  {
    name: 'TE chunked + CL',
    bytes: post('Transfer-Encoding: chunked\r\nContent-Length: 100\r\n', '2\r\nok\r\n0\r\n\r\n'),
    go: { accept: true, rule: 'transfer.go parseTransferEncoding: a chunked Transfer-Encoding overrides and deletes Content-Length' },
  },
  { name: 'two differing Content-Lengths', bytes: post('Content-Length: 3\r\nContent-Length: 4\r\n', 'abcd') },
  {
    name: 'two equal Content-Lengths',
    bytes: post('Content-Length: 4\r\nContent-Length: 4\r\n', 'abcd'),
    go: { accept: true, rule: 'transfer.go fixLength: repeated Content-Length lines with one value are merged' },
  },
  { name: 'Content-Length list in one line', bytes: post('Content-Length: 4, 4\r\n', 'abcd') },
  { name: 'Content-Length with sign', bytes: post('Content-Length: +4\r\n', 'abcd') },
  { name: 'Content-Length negative', bytes: post('Content-Length: -1\r\n', '') },
  { name: 'Content-Length hex', bytes: post('Content-Length: 0x4\r\n', 'abcd') },
  { name: 'Content-Length empty', bytes: post('Content-Length:\r\n', '') },
  { name: 'Content-Length too large', bytes: post('Content-Length: 99999999999999999999999\r\n', '') },
  { name: 'Content-Length with inner space', bytes: post('Content-Length: 1 2\r\n', 'x'.repeat(12)) },
  {
    name: 'TE gzip, chunked',
    bytes: post('Transfer-Encoding: gzip, chunked\r\n', '2\r\nok\r\n0\r\n\r\n'),
    go: { accept: false, rule: 'transfer.go parseTransferEncoding: only "chunked" alone is supported (501)' },
  },
  { name: 'TE identity', bytes: post('Transfer-Encoding: identity\r\nContent-Length: 2\r\n', 'ok') },
  {
    name: 'TE chunked twice in two lines',
    bytes: post('Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n', '2\r\nok\r\n0\r\n\r\n'),
  },
  { name: 'TE chunked, chunked in one line', bytes: post('Transfer-Encoding: chunked, chunked\r\n', '2\r\nok\r\n0\r\n\r\n') },
  { name: 'TE xchunked', bytes: post('Transfer-Encoding: xchunked\r\n', '2\r\nok\r\n0\r\n\r\n') },
  { name: 'TE with space before colon', bytes: post('Transfer-Encoding : chunked\r\n', '2\r\nok\r\n0\r\n\r\n') },
  {
    name: 'TE chunked on HTTP/1.0',
    bytes: 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\nok',
    go: { accept: true, rule: 'transfer.go parseTransferEncoding: Transfer-Encoding is ignored on HTTP/1.0 (issue 12785)' },
  },
  // Chunked body errors.
  { name: 'chunk size not hex', bytes: post('Transfer-Encoding: chunked\r\n', 'g\r\nx\r\n0\r\n\r\n') },
  { name: 'chunk size empty', bytes: post('Transfer-Encoding: chunked\r\n', '\r\nx\r\n0\r\n\r\n') },
  { name: 'chunk size negative', bytes: post('Transfer-Encoding: chunked\r\n', '-1\r\nx\r\n0\r\n\r\n') },
  { name: 'chunk size 0x prefix', bytes: post('Transfer-Encoding: chunked\r\n', '0x2\r\nok\r\n0\r\n\r\n') },
  { name: 'chunk size overflow', bytes: post('Transfer-Encoding: chunked\r\n', 'fffffffffffffffff\r\nx\r\n0\r\n\r\n') },
  { name: 'chunk size with leading space', bytes: post('Transfer-Encoding: chunked\r\n', ' 2\r\nok\r\n0\r\n\r\n') },
  {
    name: 'chunk size with trailing space',
    bytes: post('Transfer-Encoding: chunked\r\n', '2 \r\nok\r\n0\r\n\r\n'),
    go: { accept: true, rule: 'internal/chunked.go readChunkLine: trimTrailingWhitespace before parseHexUint' },
  },
  { name: 'chunk size line bare LF', bytes: post('Transfer-Encoding: chunked\r\n', '2\nok\r\n0\r\n\r\n') },
  { name: 'chunk data without CRLF', bytes: post('Transfer-Encoding: chunked\r\n', '2\r\nokX0\r\n\r\n') },
  { name: 'chunk data longer than size', bytes: post('Transfer-Encoding: chunked\r\n', '2\r\nokk\r\n0\r\n\r\n') },
  { name: 'chunk data ends with bare LF', bytes: post('Transfer-Encoding: chunked\r\n', '2\r\nok\n0\r\n\r\n') },
  { name: 'chunked without last chunk (EOF)', bytes: post('Transfer-Encoding: chunked\r\n', '2\r\nok\r\n') },
  {
    name: 'chunk extension 5000 bytes',
    bytes: post('Transfer-Encoding: chunked\r\n', `2;x=${'e'.repeat(5000)}\r\nok\r\n0\r\n\r\n`),
    go: { accept: false, rule: 'internal/chunked.go readChunkLine: a chunk line of maxLineLength (4096) or more is refused' },
  },
  { name: 'chunk extension 20000 bytes', bytes: post('Transfer-Encoding: chunked\r\n', `2;x=${'e'.repeat(20000)}\r\nok\r\n0\r\n\r\n`) },
  { name: 'trailer with NUL', bytes: post('Transfer-Encoding: chunked\r\n', '2\r\nok\r\n0\r\nX-T: a\x00b\r\n\r\n') },
  { name: 'body shorter than Content-Length (EOF)', bytes: post('Content-Length: 10\r\n', 'short') },
  // Header syntax.
  // rrts's one deliberate difference from Go: Go folds obs-fold into one line; rrts refuses it as RFC 9112 §5.2
  // allows (and llhttp does), since a front proxy that reads it otherwise is a request-smuggling risk.
  { name: 'obs-fold', bytes: get('/', 'X-Folded: a\r\n  b\r\n') },
  { name: 'obs-fold with tab', bytes: get('/', 'X-Folded: a\r\n\tb\r\n') },
  { name: 'first header line starts with space', bytes: 'GET / HTTP/1.1\r\n ' + H + '\r\n' },
  { name: 'space before colon', bytes: get('/', 'X-Bad : v\r\n') },
  { name: 'tab before colon', bytes: get('/', 'X-Bad\t: v\r\n') },
  { name: 'empty header name', bytes: get('/', ': v\r\n') },
  { name: 'header line without colon', bytes: get('/', 'NoColonHere\r\n') },
  { name: 'non-token byte in name', bytes: get('/', 'X(Bad): v\r\n') },
  { name: 'non-ASCII byte in name', bytes: get('/', 'X-\xe9: v\r\n') },
  { name: 'NUL in value', bytes: get('/', 'X-Nul: a\x00b\r\n') },
  { name: 'CR inside value', bytes: get('/', 'X-Cr: a\rb\r\n') },
  { name: 'bare CR line end', bytes: get('/', 'X-Cr: a\rX-Next: b\r\n') },
  { name: 'DEL in value', bytes: get('/', 'X-Del: a\x7fb\r\n') },
  { name: 'vertical tab in value', bytes: get('/', 'X-Vt: a\x0bb\r\n') },
  {
    name: 'bare LF line ends',
    bytes: 'GET / HTTP/1.1\nHost: example.com\nX-A: 1\n\n',
    go: { accept: true, rule: 'textproto Reader.ReadLine: a line ends at LF, a CR before it is dropped' },
  },
  {
    name: 'bare LF ending a header line',
    bytes: 'GET / HTTP/1.1\r\nHost: example.com\nX-A: 1\r\n\r\n',
    go: { accept: true, rule: 'textproto Reader.ReadLine: a line ends at LF, a CR before it is dropped' },
  },
  { name: 'CR CR LF', bytes: get('/', 'X-A: 1\r\r\n') },
  // Host.
  {
    name: 'two Host headers',
    bytes: 'GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n',
    go: { accept: false, rule: 'server.go readRequest: "too many Host headers"' },
  },
  { name: 'HTTP/1.1 without Host', bytes: 'GET / HTTP/1.1\r\nX-A: 1\r\n\r\n' },
  {
    name: 'Host with a space',
    bytes: 'GET / HTTP/1.1\r\nHost: exa mple.com\r\n\r\n',
    go: { accept: false, rule: 'server.go readRequest: httpguts.ValidHostHeader ("malformed Host header")' },
  },
  {
    name: 'Host with a slash',
    bytes: 'GET / HTTP/1.1\r\nHost: example.com/evil\r\n\r\n',
    go: { accept: false, rule: 'server.go readRequest: httpguts.ValidHostHeader ("malformed Host header")' },
  },
  // Request line.
  {
    name: 'HTTP/0.9 request',
    bytes: 'GET /\r\n\r\n',
    go: { accept: false, rule: 'request.go parseRequestLine: a request line without a version is "malformed HTTP request"' },
  },
  {
    name: 'double space after method',
    bytes: 'GET  / HTTP/1.1\r\n' + H + '\r\n',
    go: { accept: false, rule: 'request.go parseRequestLine: split on single spaces, so the version is "/ HTTP/1.1"' },
  },
  { name: 'trailing space after version', bytes: 'GET / HTTP/1.1 \r\n' + H + '\r\n' },
  { name: 'tab separator', bytes: 'GET\t/ HTTP/1.1\r\n' + H + '\r\n' },
  { name: 'lower-case version', bytes: 'GET / http/1.1\r\n' + H + '\r\n' },
  { name: 'version with two digits', bytes: 'GET / HTTP/1.10\r\n' + H + '\r\n' },
  {
    name: 'version HTTP/2.0',
    bytes: 'GET / HTTP/2.0\r\n' + H + '\r\n',
    go: { accept: false, rule: 'server.go http1ServerSupportsRequest: only HTTP/1.x (and the h2 preface) is served (505)' },
  },
  {
    name: 'version HTTP/0.9',
    bytes: 'GET / HTTP/0.9\r\n\r\n',
    go: { accept: false, rule: 'server.go http1ServerSupportsRequest: only HTTP/1.x (and the h2 preface) is served (505)' },
  },
  { name: 'version HTTP/3.0', bytes: 'GET / HTTP/3.0\r\n' + H + '\r\n' },
  {
    name: 'version HTTP/1.2',
    bytes: 'GET / HTTP/1.2\r\n' + H + '\r\n',
    go: { accept: true, rule: 'request.go ParseHTTPVersion and http1ServerSupportsRequest: any HTTP/1.x is served' },
  },
  { name: 'HTTP/2 preface', bytes: 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' },
  {
    name: 'unknown method',
    bytes: 'FOO / HTTP/1.1\r\n' + H + '\r\n',
    go: { accept: true, rule: 'request.go validMethod: any token is a method' },
  },
  { name: 'lower-case method', bytes: 'get / HTTP/1.1\r\n' + H + '\r\n', go: { accept: true, rule: 'request.go validMethod: any token is a method' } },
  { name: 'method with non-token byte', bytes: 'GE(T / HTTP/1.1\r\n' + H + '\r\n' },
  {
    name: 'empty request line',
    bytes: '\r\n',
    go: { accept: false, rule: 'request.go parseRequestLine: an empty first line is "malformed HTTP request"' },
  },
  {
    name: 'leading CRLF before the first request',
    bytes: '\r\n' + get('/'),
    go: { accept: false, rule: 'server.go readRequest: empty lines are skipped only after a POST (up to 4 CR/LF bytes)' },
  },
  { name: 'extra CRLF after a POST body', bytes: post('Content-Length: 2\r\n', 'ok') + '\r\n' + get('/after') },
  {
    name: 'target without leading slash',
    bytes: get('path'),
  },
  {
    name: 'invalid percent escape in path',
    bytes: get('/a%zzb'),
    go: { accept: false, rule: 'url.ParseRequestURI: unescape refuses a bad %-escape in the path' },
  },
  {
    name: 'truncated percent escape',
    bytes: get('/a%2'),
    go: { accept: false, rule: 'url.ParseRequestURI: unescape refuses a bad %-escape in the path' },
  },
  {
    name: 'absolute-form with bad port',
    bytes: get('http://example.com:80x/'),
    go: { accept: false, rule: 'url.ParseRequestURI: parseHost refuses a non-numeric port' },
  },
  {
    name: 'absolute-form with unclosed IPv6',
    bytes: get('http://[::1/'),
    go: { accept: false, rule: 'url.ParseRequestURI: parseHost ("missing \']\' in host")' },
  },
  { name: 'absolute-form starting with a digit', bytes: get('1http://example.com/') },
  { name: 'asterisk for GET', bytes: get('*') },
  { name: 'NUL in target', bytes: get('/a\x00b') },
  { name: 'DEL in target', bytes: get('/a\x7fb') },
  // Found by a random one-byte mutation run against llhttp (each a family the cases above did not cover yet).
  {
    name: 'NUL and quotes in a chunk extension',
    bytes: post('Transfer-Encoding: chunked\r\n', '5;a="b c\r\nhello\r\n0;x\x00\r\n\r\n'),
    go: { accept: true, rule: 'internal/chunked.go removeChunkExtension: the extension is cut off at ";" unread' },
  },
  {
    name: 'empty line of a bare LF after CRLF lines',
    bytes: 'GET / HTTP/1.1\r\nHost: example.com\r\n\n',
    go: { accept: true, rule: 'textproto Reader.ReadLine: a line ends at LF, a CR before it is dropped' },
  },
  {
    name: 'quote in Host',
    bytes: 'GET / HTTP/1.1\r\nHost: example.com"\r\n\r\n',
    go: { accept: false, rule: 'server.go readRequest: httpguts.ValidHostHeader ("malformed Host header")' },
  },
  {
    name: 'bad escape in an absolute-form host',
    bytes: get('http://exa%mple.com/path'),
    go: { accept: false, rule: 'url.ParseRequestURI: unescape(host, encodeHost) refuses a bad %-escape' },
  },
  {
    name: 'absolute-form with a single slash',
    bytes: get('http:/example.com/path'),
    go: { accept: true, rule: 'url.ParseRequestURI: a scheme then an absolute path is a valid request URI' },
  },
  {
    name: 'no space before the version',
    bytes: 'GET /pHTTP/1.1\r\nHost: example.com\r\n\r\n',
    go: { accept: false, rule: 'request.go parseRequestLine: a request line without a version is "malformed HTTP request"' },
  },
  { name: 'header section over the limit', bytes: get('/', `X-Big: ${'x'.repeat(1 << 20)}\r\nX-More: ${'y'.repeat(8192)}\r\n`) },
  { name: 'head cut short (EOF)', bytes: 'GET / HTTP/1.1\r\nHost: exam' },
];

/** Every control byte (and DEL) in a header value and in the target: each refused by both parsers. */
function controlBytes(): Case[] {
  const out: Case[] = [];
  for (let c = 0; c < 0x20; c++) {
    if (c === 9 || c === 10 || c === 13) continue;
    const hex = c.toString(16).padStart(2, '0');
    out.push({ name: `control 0x${hex} in a header value`, bytes: get('/', `X-C: a${String.fromCharCode(c)}b\r\n`) });
    out.push({ name: `control 0x${hex} in the target`, bytes: get(`/a${String.fromCharCode(c)}b`) });
  }
  return out;
}

export const CORPUS: Case[] = [...valid, ...hostile, ...controlBytes()];

/** Valid cases that the split-at-every-byte check runs (each fed in two pieces at every offset, and byte by byte). */
export const SPLIT_SAMPLE = [
  'browser GET',
  'chunked with extensions',
  'chunked with trailers',
  'pipelined POST then GET',
  'pipelined chunked then GET',
  'HTTP/1.0 keep-alive',
  'extra CRLF after a POST body',
  'bare LF line ends',
  'Expect 100-continue',
];
