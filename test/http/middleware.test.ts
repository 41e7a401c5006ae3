// Pure helpers of the middleware: range parsing, gzip negotiation, proxy IP resolution, redirect hosts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { parseRange } from '../../src/http/middleware/static.js';
import { acceptsGzip } from '../../src/http/middleware/gzip.js';
import { resolveClientIp } from '../../src/http/middleware/proxy_ip_parser.js';
import { hostWithoutPort } from '../../src/http/redirect.js';

const req = (headers: Record<string, string>): IncomingMessage => ({ headers }) as unknown as IncomingMessage;

describe('parseRange', () => {
  test('single ranges', () => {
    assert.deepEqual(parseRange('bytes=0-9', 100), [0, 9]);
    assert.deepEqual(parseRange('bytes=90-', 100), [90, 99]);
    assert.deepEqual(parseRange('bytes=-10', 100), [90, 99]);
    assert.deepEqual(parseRange('bytes=95-200', 100), [95, 99]);
  });
  test('unsatisfiable and ignored ranges', () => {
    assert.equal(parseRange('bytes=100-', 100), 'unsatisfiable');
    assert.equal(parseRange('bytes=-0', 100), 'unsatisfiable');
    assert.equal(parseRange('bytes=0-1,5-6', 100), null);
    assert.equal(parseRange('items=0-1', 100), null);
    assert.equal(parseRange('bytes=9-2', 100), null);
  });
});

test('acceptsGzip', () => {
  assert.equal(acceptsGzip(req({ 'accept-encoding': 'gzip, br' })), true);
  assert.equal(acceptsGzip(req({ 'accept-encoding': 'br;q=1, gzip;q=0.5' })), true);
  assert.equal(acceptsGzip(req({ 'accept-encoding': 'gzip;q=0' })), false);
  assert.equal(acceptsGzip(req({ 'accept-encoding': '*' })), true);
  assert.equal(acceptsGzip(req({ 'accept-encoding': 'identity' })), false);
  assert.equal(acceptsGzip(req({})), false);
});

describe('resolveClientIp', () => {
  const trusted = (ip: string): boolean => ip.startsWith('10.');
  test('X-Forwarded-For: the right-most untrusted entry', () => {
    assert.equal(resolveClientIp(req({ 'x-forwarded-for': '1.1.1.1, 2.2.2.2, 10.0.0.5' }), trusted), '2.2.2.2');
    assert.equal(resolveClientIp(req({ 'x-forwarded-for': '10.0.0.1, 10.0.0.2' }), trusted), '10.0.0.1');
    assert.equal(resolveClientIp(req({ 'x-forwarded-for': 'garbage' }), trusted), null);
  });
  test('a value that is not an address is never used (RoadRunner passes it on; docs/http.md)', () => {
    assert.equal(resolveClientIp(req({ 'x-forwarded-for': 'foo.workstation' }), trusted), null);
    assert.equal(resolveClientIp(req({ 'x-forwarded-for': 'foo.workstation', 'x-real-ip': '5.5.5.5' }), trusted), '5.5.5.5');
    assert.equal(resolveClientIp(req({ 'x-forwarded-for': '1.1.1.1, foo.workstation, 2.2.2.2' }), trusted), '2.2.2.2');
    assert.equal(resolveClientIp(req({ 'x-forwarded-for': '1.1.1.1, foo.workstation, 10.0.0.5' }), trusted), '10.0.0.5');
  });
  test('Forwarded first, then the single-value headers', () => {
    assert.equal(resolveClientIp(req({ forwarded: 'for=192.0.2.60;proto=http;by=203.0.113.43', 'x-real-ip': '5.5.5.5' }), trusted), '192.0.2.60');
    assert.equal(resolveClientIp(req({ forwarded: 'For="[2001:db8:cafe::17]:4711"' }), trusted), '2001:db8:cafe::17');
    assert.equal(resolveClientIp(req({ 'x-real-ip': '5.5.5.5:80' }), trusted), '5.5.5.5');
    assert.equal(resolveClientIp(req({ 'true-client-ip': '6.6.6.6' }), trusted), '6.6.6.6');
    assert.equal(resolveClientIp(req({ 'cf-connecting-ip': '::ffff:7.7.7.7' }), trusted), '7.7.7.7');
  });
});

test('hostWithoutPort', () => {
  assert.equal(hostWithoutPort('example.com:8080'), 'example.com');
  assert.equal(hostWithoutPort('example.com'), 'example.com');
  assert.equal(hostWithoutPort('[::1]:80'), '[::1]');
});
