// The amqp driver's pure parts: the context JSON as RoadRunner's Go encoder writes it (the jobs reference's vector J2),
// the rr_* headers, the AMQP header conversion, and the keys it reads (docs/jobs-amqp.md §1, §2).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ConsumeMessage } from 'amqplib';
import { readAmqpSettings } from '../../src/jobs/drivers/amqp/config.js';
import { amqpContext, headersJson, packHeaders, stringHeaders, takeRoutingKey, unpackDelivery } from '../../src/jobs/drivers/amqp/message.js';
import type { PipelineConfig } from '../../src/jobs/driver.js';
import { traceOf, withoutTrace } from './trace-headers.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';

const noWarn = () => {};

function delivery(headers: Record<string, unknown>, body = 'x'): ConsumeMessage {
  return { content: Buffer.from(body), fields: {}, properties: { headers } } as unknown as ConsumeMessage;
}

describe('amqp context JSON', () => {
  it('matches vector J2 byte for byte', () => {
    // jobs-vectors.json J2: the frame's context for an amqp job, queue acc-main-q
    const j2 = '{"id":"id-1","job":"acc.Ping","driver":"amqp","queue":"acc-main-q","headers":{"x-a":["1"]},"pipeline":"acc-main"}';
    assert.equal(amqpContext('id-1', 'acc.Ping', 'acc-main-q', { 'x-a': ['1'] }, 'acc-main'), j2);
  });

  it('sorts header keys bytewise and escapes as Go does', () => {
    const context = amqpContext('<id>', 'a&b', '', { zz: ['>'], Ab: ['\u2028'], a: [] }, 'p');
    assert.equal(
      context,
      '{"id":"\\u003cid\\u003e","job":"a\\u0026b","driver":"amqp","queue":"","headers":{"Ab":["\\u2028"],"a":[],"zz":["\\u003e"]},"pipeline":"p"}',
    );
    assert.equal(headersJson(null), 'null');
  });

  it('orders integer-like and non-BMP header names by their UTF-8 bytes, as Go does', () => {
    // a JS object would list "9" before "10"; UTF-16 order would put U+1F600 (a surrogate pair) before U+E000
    const headers = { b: ['2'], '9': ['nine'], '\u{1F600}': ['smile'], '10': ['ten'], '\uE000': ['private'], a: null as unknown as string[] };
    assert.equal(headersJson(headers), '{"10":["ten"],"9":["nine"],"a":null,"b":["2"],"\uE000":["private"],"\u{1F600}":["smile"]}');
  });
});

describe('amqp message headers', () => {
  it('packs rr_* with the types amqp091-go gives RoadRunner', () => {
    const table = packHeaders({ id: 'i', job: 'j', pipeline: 'p', headers: { b: ['2'], a: ['1'] }, delaySeconds: 3, priority: 7, autoAck: true });
    assert.deepEqual(table, {
      rr_id: 'i',
      rr_job: 'j',
      rr_pipeline: 'p',
      rr_headers: Buffer.from('{"a":["1"],"b":["2"]}'),
      rr_delay: { '!': 'int32', value: 3 },
      rr_priority: { '!': 'int64', value: 7 },
      rr_auto_ack: true,
    });
  });

  it('unpacks a RoadRunner message and shows every header as strings, as amqpjobs does', () => {
    const unpacked = unpackDelivery(
      delivery({
        rr_id: 'id-9',
        rr_job: 'app.Job',
        rr_pipeline: 'producer-pipe',
        rr_headers: Buffer.from('{"attempts":["2"],"rr_id":["stale"]}'),
        rr_delay: 0,
        rr_priority: 4,
        rr_auto_ack: false,
        'x-death': [{ count: 1, reason: 'expired', 'routing-keys': ['k'], time: { '!': 'timestamp', value: 1_700_000_000 } }],
        ratio: 1.5,
      }),
      'consumer-pipe',
      10,
      noWarn,
    );
    assert.equal(unpacked.item.id, 'id-9');
    assert.equal(unpacked.item.job, 'app.Job');
    assert.equal(unpacked.item.pipeline, 'consumer-pipe');
    assert.equal(unpacked.contextPipeline, 'producer-pipe');
    assert.equal(unpacked.item.priority, 4);
    assert.deepEqual(withoutTrace(unpacked.item.headers), { attempts: ['2'] }, 'the pushed headers, without rr_* bookkeeping');
    assert.deepEqual(withoutTrace(unpacked.contextHeaders), {
      rr_id: ['stale'],
      rr_job: ['app.Job'],
      rr_pipeline: ['producer-pipe'],
      rr_headers: ['{"attempts":["2"],"rr_id":["stale"]}'],
      rr_delay: ['0'],
      rr_priority: ['4'],
      rr_auto_ack: ['false'],
      count: ['1'],
      reason: ['expired'],
      'routing-keys': ['k'],
      time: ['2023-11-14T22:13:20Z'],
      ratio: ['1.50000'],
      attempts: ['2'],
    });
  });

  it('gives a foreign message an id, the deduced job name and the pipeline priority', () => {
    const unpacked = unpackDelivery(delivery({ trace: 'abc' }), 'p', 10, noWarn);
    assert.match(unpacked.item.id, /^[0-9a-f-]{36}$/);
    assert.equal(unpacked.item.job, 'deduced_by_rr');
    assert.equal(unpacked.item.priority, 10);
    assert.deepEqual(withoutTrace(unpacked.item.headers), { trace: ['abc'] });
  });

  it("goes on with the trace the producer's push wrote into rr_headers, in the context and in what a requeue publishes", () => {
    const pushed = { Traceparent: [`00-${TRACE}-${SPAN}-01`], 'Uber-Trace-Id': [`${TRACE}:${SPAN}:0:1`], a: ['1'] };
    const unpacked = unpackDelivery(delivery({ rr_id: 'id-1', rr_job: 'j', rr_headers: Buffer.from(JSON.stringify(pushed)) }), 'p', 10, noWarn);
    const delivered = traceOf(unpacked.contextHeaders);
    assert.equal(delivered.traceId, TRACE);
    assert.notEqual(delivered.spanId, SPAN);
    assert.deepEqual(traceOf(unpacked.item.headers), delivered);
    assert.deepEqual(unpacked.contextHeaders.rr_headers, [JSON.stringify(pushed)], 'rr_headers shows what the producer stored');
  });

  it('takes x-routing-key out of the headers', () => {
    assert.deepEqual(takeRoutingKey({ 'x-routing-key': ['other'], a: ['1'] }, 'main'), { routingKey: 'other', headers: { a: ['1'] } });
    assert.deepEqual(takeRoutingKey({ 'x-routing-key': [''] }, 'main'), { routingKey: 'main', headers: {} });
    assert.deepEqual(takeRoutingKey({ a: ['1'] }, 'main').routingKey, 'main');
  });

  it('flattens nested tables into their own keys', () => {
    assert.deepEqual(stringHeaders({ outer: { inner: 'v', n: 2 }, flag: true, bytes: Buffer.from('b') }, noWarn), {
      inner: ['v'],
      n: ['2'],
      flag: ['true'],
      bytes: ['b'],
    });
  });
});

describe('amqp pipeline keys', () => {
  const file = (config: Record<string, unknown>): PipelineConfig => ({ name: 'rabbit', driver: 'amqp', priority: 10, config, declared: false });
  const declared = (config: Record<string, string>): PipelineConfig => ({ name: 'decl', driver: 'amqp', priority: 10, config, declared: true });
  const global = { amqp: { addr: 'amqp://u:p@127.0.0.1:5999/' } };

  it('applies RoadRunner defaults', () => {
    const s = readAmqpSettings(file({}), { amqp: {} }, '.', noWarn);
    assert.equal(s.addr, 'amqp://guest:guest@127.0.0.1:5672/');
    assert.equal(s.exchange, 'amqp.default');
    assert.equal(s.exchangeType, 'direct');
    assert.equal(s.prefetch, 10);
    assert.equal(s.redialTimeoutMs, 60_000);
    assert.match(s.consumerId, /^roadrunner-[0-9a-f-]{36}$/);
    assert.equal(s.queue, '');
  });

  it('needs the global amqp section', () => {
    assert.throws(() => readAmqpSettings(file({}), {}, '.', noWarn), /no global amqp configuration, global configuration should contain amqp addrs/);
  });

  it('names the key of a bad value', () => {
    assert.throws(
      () => readAmqpSettings(file({ prefetch: 'lots' }), global, '.', noWarn),
      /jobs\.pipelines\.rabbit\.config\.prefetch: expected a whole number, got "lots"/,
    );
    assert.throws(() => readAmqpSettings(file({ exchange_type: 'round' }), global, '.', noWarn), /exchange_type: unknown exchange type "round"/);
    assert.throws(
      () => readAmqpSettings(file({}), { amqp: { tls: { key: 'missing.key', cert: 'missing.crt' } } }, '.', noWarn),
      /amqp\.tls\.key: file 'missing\.key' does not exist/,
    );
  });

  it('lets the global section decode over the pipeline keys, as RoadRunner does', () => {
    const s = readAmqpSettings(file({ prefetch: 5, queue: 'q' }), { amqp: { addr: 'amqp://h/', prefetch: '7' } }, '.', noWarn);
    assert.equal(s.prefetch, 7);
    assert.equal(s.queue, 'q');
  });

  it('reads the jobs.Declare strings as the SDK sends them', () => {
    const warnings: string[] = [];
    const s = readAmqpSettings(
      declared({
        queue: 'dq',
        routing_key: 'dk',
        prefetch: 'many',
        durable: 'true',
        exclusive: 'yes',
        requeue_on_fail: 'true',
        redial_timeout: '5',
        queue_headers: '{"x-max-length":3}',
        consumer_id: 'tag-1',
      }),
      global,
      '.',
      (m) => warnings.push(m),
    );
    assert.equal(s.queue, 'dq');
    assert.equal(s.prefetch, 10);
    assert.match(warnings[0] ?? '', /key 'prefetch' is "many", not a whole number; using 10/);
    assert.equal(s.durable, true);
    assert.equal(s.exclusive, false, 'only "true" is true');
    assert.equal(s.requeueOnFail, true);
    assert.equal(s.redialTimeoutMs, 5000);
    assert.deepEqual(s.queueHeaders, { 'x-max-length': 3 });
    assert.equal(s.consumerId, 'tag-1');
    assert.throws(() => readAmqpSettings(declared({ queue_headers: '{x' }), global, '.', noWarn), /key 'queue_headers' is not JSON/);
  });
});
