// The `jobs` RPC service (docs/jobs.md §3.3): Push, PushBatch, Pause, Resume, List, Declare, Destroy and Stat on
// jobs.v1 protobuf messages, with RoadRunner's error texts (`op:\n\top: reason`), which the PHP SDK shows verbatim.
// As in jobs v5.1.8+, every call but List runs alone: one waits for the one before.
import type { Logger } from 'pino';
import { JobsRpcError } from '../errors.js';
import { protoMethod, type RpcMethod } from '../rpc/server.js';
import type { JobHeaders, JobItem, PipelineConfig } from './driver.js';
import type { PushSource } from './metrics.js';
import { DEFAULT_PIPELINE_PRIORITY, withTimeout, type JobsPlugin } from './plugin.js';
import { JobsProto, type DeclareRequest, type Pipelines, type ProtoJob, type ProtoStat, type PushBatchRequest, type PushRequest } from './proto.js';
import { injectPushSpan, newTraceId } from './tracing.js';

export function jobsRpcService(plugin: JobsPlugin, log: Logger): Record<string, RpcMethod> {
  let last: Promise<unknown> = Promise.resolve();
  /** one call at a time, in arrival order */
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = last.then(fn);
    last = run.catch(() => undefined);
    return run;
  };
  const { PushRequest: Push, PushBatchRequest: Batch, Pipelines: Names, DeclareRequest: Declare, Stats, Empty } = JobsProto;
  const timeout = plugin.config.timeout;

  /** `traceId`: the call's trace (RoadRunner starts one per Push and one per PushBatch call). */
  const push = async (job: ProtoJob, ops: string, source: PushSource, traceId: string): Promise<void> => {
    const pipelineName = job.options?.pipeline ?? '';
    const entry = plugin.pipelines.get(pipelineName);
    if (!entry) throw new JobsRpcError(`${ops}: no such pipeline, requested: ${pipelineName}`);
    if (!entry.driver) throw new JobsRpcError(`${ops}: consumer not registered for the requested driver: ${entry.config.driver}`);
    const started = performance.now();
    try {
      await withTimeout(entry.driver.push(jobItem(job, entry.config, traceId)), timeout, 'push');
      plugin.counters.pushOk++;
    } catch (err) {
      plugin.counters.pushErr++;
      throw new JobsRpcError(`${ops}:\n\t${(err as Error).message}`);
    } finally {
      plugin.metrics?.observePush(pipelineName, entry.config.driver, source, (performance.now() - started) / 1000);
    }
  };

  /** Pause or Resume each name in order; the first error is returned as it is. */
  const eachPipeline = async (names: string[], what: 'pause' | 'resume'): Promise<void> => {
    for (const name of names) {
      const entry = plugin.pipelines.get(name);
      if (!entry) throw new JobsRpcError(`no such pipeline, requested: ${name}`);
      if (!entry.driver) throw new JobsRpcError(`driver for the pipeline not found, pipeline: ${name}`);
      const driver = entry.driver;
      await withTimeout(what === 'pause' ? driver.pause() : driver.resume(), timeout, what);
      log.debug({ pipeline: name }, `jobs: pipeline ${what === 'pause' ? 'paused' : 'resumed'}`);
    }
  };

  return {
    Push: protoMethod({ arg: Push, result: Empty }, (arg) =>
      serial(async () => {
        const job = (arg as PushRequest).job;
        if (!job || job.id === '') throw new JobsRpcError('rpc_push: empty ID field not allowed');
        await push(job, 'rpc_push:\n\tjobs_plugin_push', 'single', newTraceId());
        return {};
      }),
    ),
    PushBatch: protoMethod({ arg: Batch, result: Empty }, (arg) =>
      serial(async () => {
        const traceId = newTraceId();
        for (const job of (arg as PushBatchRequest).jobs) await push(job, 'rpc_push_batch:\n\tjobs_plugin_push_batch', 'batch', traceId);
        return {};
      }),
    ),
    Pause: protoMethod({ arg: Names, result: Empty }, (arg) => serial(() => eachPipeline((arg as Pipelines).pipelines, 'pause').then(() => ({})))),
    Resume: protoMethod({ arg: Names, result: Empty }, (arg) => serial(() => eachPipeline((arg as Pipelines).pipelines, 'resume').then(() => ({})))),
    List: protoMethod({ arg: Empty, result: Names }, () => ({ pipelines: [...plugin.pipelines.keys()] })),
    Declare: protoMethod({ arg: Declare, result: Empty }, (arg) => serial(() => declare(plugin, (arg as DeclareRequest).pipeline, log).then(() => ({})))),
    Destroy: protoMethod({ arg: Names, result: Names }, (arg) =>
      serial(async () => {
        const names = (arg as Pipelines).pipelines;
        for (const name of names) {
          if (!plugin.pipelines.has(name)) throw new JobsRpcError(`rpc_destroy_pipeline:\n\tjobs_plugin_destroy: no such pipeline, requested: ${name}`);
        }
        const destroyed: string[] = [];
        await Promise.all(
          names.map(async (name) => {
            const entry = plugin.pipelines.get(name);
            if (!entry) return;
            plugin.pipelines.delete(name);
            if (entry.driver) await withTimeout(entry.driver.stop(), timeout, 'stop');
            destroyed.push(name);
          }),
        ).catch((err: unknown) => {
          throw new JobsRpcError(`rpc_destroy_pipeline:\n\tjobs_plugin_destroy: ${(err as Error).message}`);
        });
        return { pipelines: destroyed };
      }),
    ),
    Stat: protoMethod({ arg: Empty, result: Stats }, () =>
      serial(async () => {
        try {
          const states = await plugin.states();
          const stats: ProtoStat[] = states.map((s) => ({
            pipeline: s.pipeline,
            driver: s.driver,
            queue: s.queue,
            active: s.active,
            delayed: s.delayed,
            reserved: s.reserved,
            ready: s.ready,
            priority: Math.max(0, s.priority),
          }));
          return { stats };
        } catch (err) {
          throw new JobsRpcError(`rpc_stats:\n\tjobs_plugin_drivers_state: ${(err as Error).message}`);
        }
      }),
    ),
  };
}

/** jobs.v1.Job to the driver's item: priority 0 takes the pipeline's; headers as Go's map[string][]string. */
function jobItem(job: ProtoJob, pipeline: PipelineConfig, traceId: string): JobItem {
  const headers: JobHeaders = {};
  for (const [key, value] of Object.entries(job.headers)) headers[key] = [...value.value];
  injectPushSpan(headers, traceId);
  const options = job.options;
  return {
    id: job.id,
    job: job.job,
    payload: Buffer.from(job.payload),
    headers,
    pipeline: pipeline.name,
    priority: options && options.priority !== 0 ? options.priority : pipeline.priority,
    delaySeconds: Math.max(0, options?.delay ?? 0),
    autoAck: options?.auto_ack ?? false,
  };
}

/**
 * jobs.Declare: the string map names the pipeline (`name`, else `queue`) and its driver; the pipeline is created,
 * and runs at once only when jobs.consume lists it. A driver rrts lacks succeeds with nothing created, as in RR.
 */
async function declare(plugin: JobsPlugin, map: Record<string, string>, log: Logger): Promise<void> {
  const name = map.name || map.queue || '';
  const driver = map.driver ?? '';
  if (driver === '') throw new JobsRpcError(`rpc_declare_pipeline:\n\tjobs_plugin_declare: no associated driver with the pipeline, pipeline name: ${name}`);
  const existing = plugin.pipelines.get(name);
  if (existing) throw new JobsRpcError(`rpc_declare_pipeline: pipeline already exists, name: ${name}, driver: ${existing.config.driver}`);
  let priority = 0;
  if (map.priority !== undefined) {
    if (/^[+-]?\d+$/.test(map.priority)) priority = Number(map.priority);
    else log.error({ pipeline: name, priority: map.priority }, `jobs.Declare: priority of pipeline ${name} is not a whole number; 0 is used`);
  } else priority = DEFAULT_PIPELINE_PRIORITY;
  const config: PipelineConfig = { name, driver, priority, config: { ...map }, declared: true };
  try {
    const entry = await plugin.createPipeline(config);
    if (!entry.driver) {
      plugin.pipelines.delete(name); // RoadRunner: an unknown driver is no error, and nothing is created
      log.warn({ pipeline: name, driver }, `jobs.Declare: rrts has no jobs driver '${driver}': nothing was created (RoadRunner answers success too)`);
    }
  } catch (err) {
    plugin.pipelines.delete(name);
    throw new JobsRpcError(`rpc_declare_pipeline:\n\tjobs_plugin_declare: ${(err as Error).message}`);
  }
}
