// The beanstalk job body (RoadRunner's gob-encoded Item) against bytes Go's encoding/gob wrote, and the pipeline
// settings with RoadRunner's defaults (docs/jobs-beanstalk.md §1, §2).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeItem, encodeItem, GobError, type GobItem } from '../../src/jobs/drivers/beanstalk/gob.js';
import { readBeanstalkSettings } from '../../src/jobs/drivers/beanstalk/config.js';
import type { PipelineConfig } from '../../src/jobs/driver.js';
import { loadYaml, loadYamlError } from '../config/tmp.js';

// Written by Go 1.19's encoding/gob, a fresh gob.NewEncoder per value as beanstalkjobs' handleItem does, encoding
// the Item and Options structs of roadrunner-server/beanstalk item.go (exported fields only, as gob sends them).
/** Item{Job:"app.Ping", Ident:"id-1", Payload:`{"n":1}`, Hdrs:{"x-a":["1","2"]}, Options{Priority:10, Pipeline:"bean", Delay:5, AutoAck:true}} */
const GO_ITEM =
  '47ff81030101044974656d01ff8200010501034a6f62010c0001054964656e74010c0001075061796c6f6164010a0001044864727301ff860001074f7074696f6e7301ff8800000024ff85040101136d61705b737472696e675d5b5d737472696e6701ff8600010c01ff8400000cff83020102ff8400010c00004fff87030101074f7074696f6e7301ff8800010501085072696f726974790104000108506970656c696e65010c00010544656c617901040001074175746f41636b01020001055175657565010c00000035ff8201086170702e50696e67010469642d3101077b226e223a317d010103782d61020131013201011401046265616e010a01010000';
/** Item{Job:"j", Ident:"i", Payload:nil, Hdrs:{}, Options{Priority:300, Pipeline:"p", Queue:"tube-a"}} */
const GO_ITEM_EMPTY =
  '47ff81030101044974656d01ff8200010501034a6f62010c0001054964656e74010c0001075061796c6f6164010a0001044864727301ff860001074f7074696f6e7301ff8800000024ff85040101136d61705b737472696e675d5b5d737472696e6701ff8600010c01ff8400000cff83020102ff8400010c00004fff87030101074f7074696f6e7301ff8800010501085072696f726974790104000108506970656c696e65010c00010544656c617901040001074175746f41636b01020001055175657565010c0000001cff8201016a01016902000101fe02580101700306747562652d610000';
/**
 * RoadRunner 2025.1 (beanstalk v5.1.9) kept the headers in an unexported field, so its Item has no Hdrs; this
 * process had numbered Options (68) before, so the ids differ from a fresh process (OldItem is 69).
 */
const GO_ITEM_V519 =
  '40ff89030101074f6c644974656d01ff8a00010401034a6f62010c0001054964656e74010c0001075061796c6f6164010a0001074f7074696f6e7301ff880000004fff87030101074f7074696f6e7301ff8800010501085072696f726974790104000108506970656c696e65010c00010544656c617901040001074175746f41636b01020001055175657565010c0000001fff8a01076f6c642e4a6f62010469642d3201017801010201046265616e0000';

const ITEM: GobItem = {
  job: 'app.Ping',
  id: 'id-1',
  payload: Buffer.from('{"n":1}'),
  headers: { 'x-a': ['1', '2'] },
  priority: 10,
  pipeline: 'bean',
  delay: 5,
  autoAck: true,
  queue: '',
};

describe('beanstalk gob Item', () => {
  it("encodes byte for byte as Go's encoding/gob does", () => {
    assert.equal(encodeItem(ITEM).toString('hex'), GO_ITEM);
    const empty: GobItem = {
      job: 'j',
      id: 'i',
      payload: Buffer.alloc(0),
      headers: {},
      priority: 300,
      pipeline: 'p',
      delay: 0,
      autoAck: false,
      queue: 'tube-a',
    };
    assert.equal(encodeItem(empty).toString('hex'), GO_ITEM_EMPTY);
  });

  it('decodes what Go wrote, also with other type ids and without Hdrs (RoadRunner 2025.1)', () => {
    assert.deepEqual(decodeItem(Buffer.from(GO_ITEM, 'hex')), ITEM);
    assert.deepEqual(decodeItem(Buffer.from(GO_ITEM_EMPTY, 'hex')), {
      job: 'j',
      id: 'i',
      payload: Buffer.alloc(0),
      headers: {},
      priority: 300,
      pipeline: 'p',
      delay: 0,
      autoAck: false,
      queue: 'tube-a',
    });
    assert.deepEqual(decodeItem(Buffer.from(GO_ITEM_V519, 'hex')), {
      job: 'old.Job',
      id: 'id-2',
      payload: Buffer.from('x'),
      headers: {},
      priority: 1,
      pipeline: 'bean',
      delay: 0,
      autoAck: false,
      queue: '',
    });
  });

  it('round-trips large numbers, binary payloads, UTF-8 and negative priorities', () => {
    const item: GobItem = {
      job: 'Jöb\\Class',
      id: 'x'.repeat(300),
      payload: Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 256)),
      headers: { b: ['é', ''], a: [] },
      priority: -3,
      pipeline: 'p',
      delay: 4_294_967_295,
      autoAck: false,
      queue: '',
    };
    assert.deepEqual(decodeItem(encodeItem(item)), item);
  });

  it('rejects bodies that are not a gob Item with GobError, never another exception', () => {
    const samples = [Buffer.from('{"job":"x"}'), Buffer.alloc(0), Buffer.from([0x03, 0xff, 0x81, 0x00]), Buffer.from(GO_ITEM, 'hex').subarray(0, 80)];
    for (let cut = 1; cut < GO_ITEM.length / 2; cut += 7) samples.push(Buffer.from(GO_ITEM, 'hex').subarray(0, cut));
    for (const body of samples) assert.throws(() => decodeItem(body), GobError, body.toString('hex'));
  });
});

function pipeline(config: Record<string, unknown>, declared = false): PipelineConfig {
  return { name: 'bean', driver: 'beanstalk', priority: 10, config, declared };
}

describe('beanstalk settings', () => {
  it("has RoadRunner's defaults for file pipelines and for jobs.Declare", () => {
    assert.deepEqual(readBeanstalkSettings(pipeline({}), { beanstalk: {} }), {
      network: 'tcp',
      address: '127.0.0.1:11300',
      timeoutMs: 30_000,
      tube: 'default',
      tubePriority: 0,
      reserveTimeoutSeconds: 1,
    });
    const declared = readBeanstalkSettings(pipeline({}, true), { beanstalk: { addr: 'unix:///run/b.sock', timeout: '5s' } });
    assert.deepEqual(declared, { network: 'unix', address: '/run/b.sock', timeoutMs: 5000, tube: 'default', tubePriority: 1, reserveTimeoutSeconds: 5 });
    const set = readBeanstalkSettings(pipeline({ tube: 'emails', tube_priority: 7, reserve_timeout: '3s' }), { beanstalk: { addr: 'tcp://10.0.0.1:1' } });
    assert.equal(set.tube, 'emails');
    assert.equal(set.tubePriority, 7);
    assert.equal(set.reserveTimeoutSeconds, 3);
    const declaredSet = readBeanstalkSettings(pipeline({ tube: 't', tube_priority: '0', reserve_timeout: '2' }, true), { beanstalk: {} });
    assert.deepEqual([declaredSet.tube, declaredSet.tubePriority, declaredSet.reserveTimeoutSeconds], ['t', 0, 2]);
  });

  it('names the key of a bad value', () => {
    assert.throws(() => readBeanstalkSettings(pipeline({}), {}), /no global beanstalk configuration/);
    assert.throws(() => readBeanstalkSettings(pipeline({}), { beanstalk: { addr: '127.0.0.1:11300' } }), /beanstalk\.addr: invalid socket DSN/);
    assert.throws(() => readBeanstalkSettings(pipeline({}), { beanstalk: { timeout: 'soon' } }), /beanstalk\.timeout: expected a duration/);
    assert.throws(
      () => readBeanstalkSettings(pipeline({ tube_priority: -1 }), { beanstalk: {} }),
      /jobs\.pipelines\.bean\.config\.tube_priority: must be 0 to/,
    );
    assert.throws(
      () => readBeanstalkSettings(pipeline({ tube: 'a b' }), { beanstalk: {} }),
      /jobs\.pipelines\.bean\.config\.tube: "a b" is not a beanstalkd tube name/,
    );
    assert.throws(() => readBeanstalkSettings(pipeline({ reserve_timeout: [1] }), { beanstalk: {} }), /jobs\.pipelines\.bean\.config\.reserve_timeout/);
  });
});

describe('the global beanstalk section', () => {
  it('is read with its defaults, and a bad value names the file, line and key', () => {
    assert.equal(loadYaml("version: '3'\n").beanstalk, null);
    assert.deepEqual(loadYaml("version: '3'\nbeanstalk: {}\n").beanstalk, { addr: 'tcp://127.0.0.1:11300', timeout: 30_000 });
    assert.deepEqual(loadYaml("version: '3'\nbeanstalk: {addr: 'unix:///run/b.sock', timeout: 5s}\n").beanstalk, { addr: 'unix:///run/b.sock', timeout: 5000 });
    assert.match(loadYamlError("version: '3'\nbeanstalk:\n  addr: 127.0.0.1:11300\n").message, /\.rr\.yaml:3, key 'beanstalk\.addr': invalid socket DSN/);
    assert.match(loadYamlError("version: '3'\nbeanstalk:\n  timeout: soon\n").message, /key 'beanstalk\.timeout': expected a duration/);
  });
});
