// The jobs protocol byte for byte against the vectors taken from the real PHP SDK (docs/jobs.md §2.6): the
// job frame of a memory job (J1), what each SDK answer (J4-J11) does to the job, the jobs.v1 messages (R1-R6) and
// whole RPC frames through the RPC plugin's protobuf codec (R7-R13).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameDecoder, type Frame } from '../../src/goridge/frame.js';
import { Flag } from '../../src/goridge/flags.js';
import { decodeRpc, jobFrame } from '../../src/goridge/messages.js';
import { handleAnswer } from '../../src/jobs/answer.js';
import { contextJson } from '../../src/jobs/context.js';
import { JobsProto } from '../../src/jobs/proto.js';
import { jobsRpcService } from '../../src/jobs/rpc.js';
import { PriorityJobQueue } from '../../src/jobs/queue.js';
import { memoryDriver } from '../../src/jobs/drivers/memory.js';
import { RpcPlugin } from '../../src/rpc/server.js';
import { item, jobsVector, poolessPlugin, RecordingJob, silent, type Settled } from './helpers.js';
import { contextWithoutTrace } from './trace-headers.js';

function frameOf(bytes: Buffer): Frame {
  const frames = new FrameDecoder().push(bytes);
  assert.equal(frames.length, 1);
  return frames[0]!;
}

describe('the job frame (J1-J3)', () => {
  test('J1: a memory job is a RAW frame whose context is the driver context JSON, byte for byte', async () => {
    const queue = new PriorityJobQueue(10);
    const driver = await memoryDriver(
      { name: 'acc-main', driver: 'memory', priority: 10, config: {}, declared: false },
      { queue, log: silent, workDir: '.', timeoutMs: 1000, globalConfig: {} },
    );
    await driver.run();
    await driver.push(item({ headers: { 'x-a': ['1'] } }));
    const job = await queue.take();
    assert.ok(job);
    // J1 leaves out the tracing headers every delivery carries (their ids are random): compared without them
    const frame = jobFrame(Flag.CODEC_RAW, Buffer.from(contextWithoutTrace(job.context())), job.item.payload);
    assert.equal(frame.toString('hex'), jobsVector('J1').hex);
    await driver.stop();
  });

  test('J2, J3: the amqp and boltdb context shapes come out of the same encoder in their field order', () => {
    const j2 = jobsVector('J2');
    const amqp = contextJson([
      ['id', 'id-1'],
      ['job', 'acc.Ping'],
      ['driver', 'amqp'],
      ['queue', 'acc-main-q'],
      ['headers', { 'x-a': ['1'] }],
      ['pipeline', 'acc-main'],
    ]);
    assert.equal(jobFrame(Flag.CODEC_RAW, Buffer.from(amqp), Buffer.from('{"n":1}')).toString('hex'), j2.hex);
    const bolt = contextJson([
      ['id', 'id-1'],
      ['job', 'acc.Ping'],
      ['driver', 'boltdb'],
      ['headers', null],
      ['queue', 'push'],
      ['pipeline', 'acc-main'],
    ]);
    assert.equal(jobFrame(Flag.CODEC_RAW, Buffer.from(bolt), Buffer.from('{"n":1}')).toString('hex'), jobsVector('J3').hex);
  });

  test("Go's encoder: header keys sorted by bytes, <, > and & escaped", () => {
    const text = contextJson([
      ['id', '<a&b>'],
      ['headers', { b: ['2'], B: ['1'], a: ['<'] }],
    ]);
    assert.equal(text, '{"id":"\\u003ca\\u0026b\\u003e","headers":{"B":["1"],"a":["\\u003c"],"b":["2"]}}');
  });
});

describe('the answers (J4-J11)', () => {
  const settle = async (id: string): Promise<Settled[]> => {
    const frame = frameOf(jobsVector(id).bytes);
    const answer = handleAnswer(frame.payload.subarray(frame.options[0]));
    assert.equal(answer.kind, 'settle');
    const job = new RecordingJob(item());
    if (answer.kind === 'settle') await answer.settle(job);
    return job.settled;
  };

  test('complete() and ack() ack', async () => {
    assert.deepEqual(await settle('J4'), [['ack']]);
    assert.deepEqual(await settle('J5'), [['ack']]);
  });

  test('fail() without requeue acks (and is logged); fail() with requeue requeues with its headers and delay', async () => {
    const frame = frameOf(jobsVector('J6').bytes);
    const answer = handleAnswer(frame.payload);
    assert.equal(answer.kind === 'settle' && answer.log, 'jobs protocol error');
    assert.deepEqual(await settle('J6'), [['ack']]);
    assert.deepEqual(await settle('J7'), [['requeue', { 'x-a': ['1'], attempt: ['2'] }, 3]]);
  });

  test('requeue() requeues; nack() drops or redelivers after its delay', async () => {
    assert.deepEqual(await settle('J8'), [['requeue', { attempt: ['2'] }, 0]]);
    assert.deepEqual(await settle('J9'), [['nackWithOptions', false, 0]]);
    assert.deepEqual(await settle('J10'), [['nackWithOptions', true, 2]]);
  });

  test('J11 is an ERROR frame (the pool rejects the exec; the plugin nacks): flags 0x40, no options', () => {
    const frame = frameOf(jobsVector('J11').bytes);
    assert.equal(frame.flags & Flag.ERROR, Flag.ERROR);
    assert.deepEqual(frame.options, []);
  });

  test('answers that are not the protocol are invalid (acked and counted as errors); unknown types are acked', () => {
    for (const body of ['', 'nope', '[]', '{"type":"x"}', '{"type":1}', '{"type":3,"data":[]}', '{"type":4,"data":{"headers":{"a":"b"}}}']) {
      assert.equal(handleAnswer(Buffer.from(body)).kind, 'invalid', body);
    }
    const unknown = handleAnswer(Buffer.from('{"type":9,"data":[]}'));
    assert.equal(unknown.kind === 'settle' && unknown.log, 'unknown response type 9, acknowledging the JOB');
  });
});

describe('the jobs.v1 messages (R1-R6)', () => {
  const asObject = { longs: Number, defaults: true, arrays: true, objects: true };

  test('R1, R2: PushRequest decodes to the pushed job and encodes back to the same bytes', () => {
    for (const id of ['R1', 'R2']) {
      const bytes = jobsVector(id).bytes;
      const message = JobsProto.PushRequest.decode(bytes);
      assert.equal(Buffer.from(JobsProto.PushRequest.encode(message).finish()).toString('hex'), bytes.toString('hex'), id);
    }
    const r2 = JobsProto.PushRequest.toObject(JobsProto.PushRequest.decode(jobsVector('R2').bytes), asObject);
    assert.deepEqual(r2.job.options, { priority: 5, pipeline: 'acc-main', delay: 3, auto_ack: true, topic: '', metadata: '', offset: 0, partition: 0 });
    assert.deepEqual(r2.job.headers, { 'x-multi': { value: ['a', 'b'] } });
    assert.equal(Buffer.from(r2.job.payload).toString(), 'hi');
  });

  test('R3-R6: PushBatchRequest, Pipelines, DeclareRequest, Stats', () => {
    const batch = JobsProto.PushBatchRequest.toObject(JobsProto.PushBatchRequest.decode(jobsVector('R3').bytes), asObject);
    assert.deepEqual(
      batch.jobs.map((j: { id: string; options: { priority: number } }) => [j.id, j.options.priority]),
      [
        ['i1', 1],
        ['i2', 2],
      ],
    );
    const names = JobsProto.Pipelines.encode(JobsProto.Pipelines.fromObject({ pipelines: ['acc-main', 'acc-second'] })).finish();
    assert.equal(Buffer.from(names).toString('hex'), jobsVector('R4').hex);
    const declare = JobsProto.DeclareRequest.toObject(JobsProto.DeclareRequest.decode(jobsVector('R5').bytes), asObject);
    assert.deepEqual(declare.pipeline, { name: 'acc-dyn', driver: 'memory', priority: '7', prefetch: '100' });
    const stats = JobsProto.Stats.fromObject({
      stats: [{ pipeline: 'acc-main', driver: 'memory', queue: 'acc-main', active: 2, delayed: 1, reserved: 0, ready: true, priority: 10 }],
    });
    assert.equal(Buffer.from(JobsProto.Stats.encode(stats).finish()).toString('hex'), jobsVector('R6').hex);
  });
});

describe('RPC frames through the protobuf codec (R7-R13)', () => {
  async function setup(): Promise<RpcPlugin> {
    const plugin = poolessPlugin();
    for (const name of ['acc-main', 'acc-second']) {
      await plugin.createPipeline({ name, driver: 'memory', priority: 10, config: {}, declared: false });
    }
    const rpc = new RpcPlugin('tcp://127.0.0.1:0', silent, process.cwd());
    rpc.register('jobs', jobsRpcService(plugin, silent));
    return rpc;
  }

  test('R7 (jobs.Push) is answered by R11; R8 (jobs.List) by R12; R9 (jobs.Stat) by a Stats message', async () => {
    const rpc = await setup();
    const push = await rpc.answer(decodeRpc(frameOf(jobsVector('R7').bytes)));
    assert.equal(push.toString('hex'), jobsVector('R11').hex);
    const list = await rpc.answer(decodeRpc(frameOf(jobsVector('R8').bytes)));
    assert.equal(list.toString('hex'), jobsVector('R12').hex);
    const stat = decodeRpc(frameOf(await rpc.answer(decodeRpc(frameOf(jobsVector('R9').bytes)))));
    assert.equal(stat.flags, Flag.CODEC_PROTO);
    const stats = JobsProto.Stats.toObject(JobsProto.Stats.decode(stat.body), { longs: Number, defaults: true, arrays: true });
    assert.deepEqual(
      stats.stats.map((s: { pipeline: string; active: number; ready: boolean }) => [s.pipeline, s.active, s.ready]),
      [
        ['acc-main', 0, false], // as RoadRunner: a pipeline that does not consume keeps the job in its buffer, not active
        ['acc-second', 0, false],
      ],
    );
  });

  test('R10 (jobs.Pause of a pipeline that does not consume) is an error frame with the RoadRunner text', async () => {
    const rpc = await setup();
    const reply = decodeRpc(frameOf(await rpc.answer(decodeRpc(frameOf(jobsVector('R10').bytes)))));
    assert.equal(reply.flags, Flag.CODEC_PROTO | Flag.ERROR);
    assert.equal(reply.body.toString(), 'no active listeners, nothing to pause');
  });

  test('R13: a push to an unknown pipeline is answered with the error frame byte for byte', async () => {
    const rpc = await setup();
    const body = Buffer.from(
      JobsProto.PushRequest.encode(JobsProto.PushRequest.fromObject({ job: { job: 'acc.Ping', id: 'x', options: { pipeline: 'nope' } } })).finish(),
    );
    const reply = await rpc.answer({ seq: 5, method: 'jobs.Push', flags: Flag.CODEC_PROTO, body });
    assert.equal(reply.toString('hex'), jobsVector('R13').hex);
  });
});
