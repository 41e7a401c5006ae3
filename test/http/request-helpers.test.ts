// Unit tests of the pure helpers behind buildRequestPayload: header names, media types, field names, the form tree.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalHeaderKey, collectHeaders, parseMediaType } from '../../src/http/headers.js';
import { FormTreeError, MultipartError } from '../../src/errors.js';
import { buildTree, parseUrlencoded, splitFieldName } from '../../src/http/form-tree.js';
import { parseCookies } from '../../src/http/cookies.js';
import { fileExtension, multipartBoundary } from '../../src/http/uploads.js';
import { contextJson, type ContextFields } from '../../src/http/request.js';
import { xorshift } from '../support/prng.js';

describe('canonicalHeaderKey', () => {
  it('follows Go CanonicalMIMEHeaderKey', () => {
    const cases: Array<[string, string]> = [
      ['content-type', 'Content-Type'],
      ['X-FORWARDED-FOR', 'X-Forwarded-For'],
      ['x-forwarded-for', 'X-Forwarded-For'],
      ['www-authenticate', 'Www-Authenticate'],
      ['x_custom_header', 'X_custom_header'],
      ['-foo', '-Foo'],
      ['a--b', 'A--B'],
      ['Content-Type', 'Content-Type'],
      ['bad name', 'bad name'],
      ['bad:name', 'bad:name'],
      ['ünïcode', 'ünïcode'],
      ['', ''],
    ];
    for (const [input, expected] of cases) assert.equal(canonicalHeaderKey(input), expected, input);
  });

  it('builds the header map: sorted, Host and pseudo-headers out, Transfer-Encoding and its Content-Length out', () => {
    const map = collectHeaders(['Host', 'h', 'b-header', '2', 'Transfer-Encoding', 'chunked', 'Content-Length', '5', 'a-header', '1', 'B-Header', '3'], false);
    assert.equal(JSON.stringify(map), '{"A-Header":["1"],"B-Header":["2","3"]}');
    const h2 = collectHeaders([':method', 'GET', ':authority', 'x', 'cookie', 'a=1', 'cookie', 'b=2', 'host', 'x'], true);
    assert.equal(JSON.stringify(h2), '{"Cookie":["a=1; b=2"]}');
    assert.equal(JSON.stringify(collectHeaders([], false)), '{}');
  });

  it('answers a request with no header to keep with one shared, frozen {} (no object made per request)', () => {
    const none = collectHeaders(['Host', 'h', 'Transfer-Encoding', 'chunked'], false);
    assert.equal(JSON.stringify(none), '{}');
    assert.ok(Object.isFrozen(none));
    assert.equal(collectHeaders([':authority', 'x', 'host', 'x'], true), none);
    // A map that had a header and lost it (Content-Length beside chunked) is still an empty map of its own.
    const emptied = collectHeaders(['Content-Length', '5', 'Transfer-Encoding', 'chunked'], false);
    assert.equal(JSON.stringify(emptied), '{}');
    assert.notEqual(emptied, none);
  });
});

describe('parseMediaType', () => {
  it('parses types and parameters like Go mime.ParseMediaType', () => {
    assert.deepEqual({ ...parseMediaType('Multipart/Form-Data; Boundary="abc def"; charset=utf-8').params }, { boundary: 'abc def', charset: 'utf-8' });
    assert.equal(parseMediaType('Multipart/Form-Data; boundary=x').type, 'multipart/form-data');
    assert.equal(parseMediaType('form-data; name="a\\"b"; filename="C:\\dir\\f.txt"').params!['name'], 'a"b');
    assert.equal(parseMediaType('form-data; filename="C:\\dir\\f.txt"').params!['filename'], 'C:\\dir\\f.txt');
    assert.equal(parseMediaType("form-data; filename*=UTF-8''%E2%82%AC%20rates.txt").params!['filename'], '€ rates.txt');
    assert.equal(parseMediaType('form-data; filename="plain.txt"; filename*=utf-8\'\'%C3%A9.txt').params!['filename'], 'é.txt');
    assert.equal(parseMediaType('form-data; filename*0="long"; filename*1="name.txt"').params!['filename'], 'longname.txt');
    assert.equal(parseMediaType('text/plain;').params !== null, true, 'a trailing semicolon is ignored');
    assert.equal(parseMediaType('text/plain; junk').params, null);
    assert.equal(parseMediaType('text/plain; a=1; a=2').type, '', 'a duplicate parameter is an error');
    assert.equal(parseMediaType('text/plain; a="unterminated').params, null);
    assert.equal(parseMediaType('not a type').type, '');
  });

  it("finds the multipart boundary or throws a MultipartError with Go's text", () => {
    assert.equal(multipartBoundary('multipart/form-data; boundary=----x'), '----x');
    const refusal = (message: string) => (error: unknown) => error instanceof MultipartError && error.message === message;
    assert.throws(() => multipartBoundary('multipart/form-data'), refusal('no multipart boundary param in Content-Type'));
    assert.throws(() => multipartBoundary('text/plain; x=multipart/form-data'), refusal("request Content-Type isn't multipart/form-data"));
  });
});

describe('form tree', () => {
  it('splits field names like RoadRunner fetchIndexes', () => {
    assert.deepEqual(splitFieldName('a'), ['a']);
    assert.deepEqual(splitFieldName('a[]'), ['a', '']);
    assert.deepEqual(splitFieldName('a[b][c]'), ['a', 'b', 'c']);
    assert.deepEqual(splitFieldName('a [ b ] [ ]'), ['a', 'b', '']);
    assert.deepEqual(splitFieldName('a[b]c'), ['a', 'b', 'c']);
    assert.deepEqual(splitFieldName('a]b'), ['a', 'b']);
    assert.deepEqual(splitFieldName('[x]'), ['', 'x']);
    assert.deepEqual(splitFieldName(''), ['']);
  });

  it('decodes url-encoded bodies and keeps the order names first appeared', () => {
    const fields = parseUrlencoded(Buffer.from('b=1&a=2&b=3&=e&n&%41+%42=x'));
    assert.deepEqual(
      [...fields],
      [
        ['b', ['1', '3']],
        ['a', ['2']],
        ['', ['e']],
        ['n', ['']],
        ['A B', ['x']],
      ],
    );
    assert.throws(() => parseUrlencoded(Buffer.from('a=%zz')), { message: 'invalid URL escape "%zz"' });
    assert.throws(() => parseUrlencoded(Buffer.from('a=%4')), { message: 'invalid URL escape "%4"' });
    assert.throws(() => parseUrlencoded(Buffer.from('a=1;b=2')), { message: 'invalid semicolon separator in query' });
  });

  it('mounts values: last wins for data, first for files, lists for []', () => {
    const data = buildTree(
      new Map([
        ['x', ['1', '2']],
        ['l[]', ['1', '2']],
      ]),
      'last',
    );
    assert.equal(JSON.stringify(data), '{"x":"2","l":["1","2"]}');
    const files = buildTree(new Map([['f', [{ n: 1 }, { n: 2 }]]]), 'first');
    assert.equal(JSON.stringify(files), '{"f":{"n":1}}');
  });

  it('rejects a value and a branch under the same name', () => {
    for (const fields of [
      [
        ['a', ['1']],
        ['a[b]', ['2']],
      ],
      [
        ['a[b]', ['2']],
        ['a', ['1']],
      ],
      [
        ['a[b]', ['2']],
        ['a[]', ['1']],
      ],
    ] as Array<Array<[string, string[]]>>) {
      assert.throws(
        () => buildTree(new Map(fields), 'last'),
        (error: unknown) => {
          assert.ok(error instanceof FormTreeError);
          assert.equal(error.message, "invalid multiple values to key 'a' in tree");
          return true;
        },
      );
    }
  });
});

describe('cookies and extensions', () => {
  it('parses cookies like Go plus QueryUnescape', () => {
    assert.equal(JSON.stringify(parseCookies(undefined)), '{}');
    // Without a Cookie line: one shared, frozen {}, so a request without cookies makes no object.
    assert.ok(Object.isFrozen(parseCookies(undefined)));
    assert.equal(parseCookies(undefined), parseCookies(undefined));
    assert.equal(JSON.stringify(parseCookies(['; ; '])), '{}');
    assert.equal(JSON.stringify(parseCookies(['b=2; a=%41; c="%20"; d=%; e=a\\b'])), '{"a":"A","b":"2","c":" "}');
  });

  it('takes the extension like Go path.Ext', () => {
    assert.equal(fileExtension('a.tar.GZ'), '.GZ');
    assert.equal(fileExtension('.htaccess'), '.htaccess');
    assert.equal(fileExtension('README'), '');
    assert.equal(fileExtension('dir.d/file'), '');
    assert.equal(fileExtension('C:\\x\\shell.php'), '.php');
  });
});

describe('contextJson', () => {
  /** The text the context was made with before: JSON.stringify of the fields, `attributes: {}` last. */
  const stringified = (f: ContextFields): string => JSON.stringify({ ...f, attributes: {} });

  const fields = (strings: Partial<ContextFields>): ContextFields => ({
    remoteAddr: '127.0.0.1',
    protocol: 'HTTP/1.1',
    method: 'GET',
    uri: 'http://x/',
    headers: collectHeaders([], false),
    cookies: parseCookies(undefined),
    rawQuery: '',
    parsed: false,
    uploads: null,
    ...strings,
  });

  it('writes byte for byte what JSON.stringify writes, for requests of every shape', () => {
    const cases: ContextFields[] = [
      fields({}),
      fields({ method: 'POST', parsed: true, uploads: Object.create(null) as ContextFields['uploads'] }),
      fields({ parsed: true, uploads: { file: { name: 'a "b".txt', size: 3 } } }),
      fields({
        uri: 'http://h\u00e9t\u00e9.example/p\u00e4th?q="x"&b=\\',
        rawQuery: 'q="x"&b=\\&c=\u2028\u2029\u007f',
        headers: collectHeaders(
          ['Accept', '*/*', 'X-Utf8', '\u00c3\u00a9\u00e2\u0082\u00ac', 'X-Bad-Utf8', '\u00ff\u00fe', 'X-Quote', 'a "b" \\ c', 'a', '1'],
          false,
        ),
        cookies: parseCookies(['b=2; a=%41; c="%20"; d=%E2%82%AC; e=x', 'f=%0A%22%5C; g=%F0%9F%98%80; h=%ED%A0%80']),
      }),
      fields({ remoteAddr: '::1', protocol: 'HTTP/1.0', method: 'OPTIONS', uri: '*' }),
      fields({ rawQuery: '\u0000\u0001\u001f\b\f\n\r\t', uri: '\ud83d\ude00 \ud83d \ude00 \udfff\ud800' }),
    ];
    for (const c of cases) assert.equal(contextJson(c), stringified(c));
    // Many cookies and headers: the maps as JSON.stringify writes them.
    const many = Array.from({ length: 60 }, (_, i) => `c${i}=v%${(i + 0x20).toString(16)}`).join('; ');
    const c = fields({ cookies: parseCookies([many]), headers: collectHeaders(['Cookie', many, 'X-A', '1', 'X-A', '2'], false) });
    assert.equal(contextJson(c), stringified(c));
  });

  it('writes what JSON.stringify writes for random strings of any code unit (seeded)', () => {
    const next = xorshift(0xc0ffee);
    // Code units from the ranges that matter: controls, '"' and '\\', ASCII, latin1, BMP, surrogates.
    const ranges: Array<[number, number]> = [
      [0, 0x20],
      [0x22, 0x23],
      [0x5c, 0x5d],
      [0x20, 0x7f],
      [0x7f, 0x100],
      [0x100, 0xd800],
      [0xd800, 0xe000],
      [0xe000, 0x10000],
    ];
    const randomString = (): string => {
      let s = '';
      const length = next() % 12;
      for (let i = 0; i < length; i++) {
        const [from, to] = ranges[next() % ranges.length]!;
        s += String.fromCharCode(from + (next() % (to - from)));
      }
      return s;
    };
    for (let i = 0; i < 2000; i++) {
      const c = fields({ remoteAddr: randomString(), protocol: randomString(), method: randomString(), uri: randomString(), rawQuery: randomString() });
      assert.equal(contextJson(c), stringified(c), JSON.stringify(c));
    }
  });
});
