// `jobs` (docs/jobs.md §1): the jobs worker pool, the pipelines with their drivers, which of them consume from the
// start, and the plugin's bounds (timeout, pipeline_size, options.parallelism). Pipelines whose driver is missing
// or unknown load (RoadRunner skips them at start with an error log) and get a warning here.
import type { JobsConfig, JobsPipelineEntry } from '../types.js';
import { describeValue, isPlainMap } from '../coerce.js';
import type { SectionReader } from '../reader.js';
import type { SectionContext } from './context.js';
import { readPool } from './pool.js';
import { DRIVERS, ROADRUNNER_DRIVERS } from '../../jobs/drivers/index.js';

const DEFAULT_TIMEOUT_S = 60;
const DEFAULT_PIPELINE_SIZE = 1_000_000;
/** RoadRunner: 10 without an `options` section, 5 when it is there with parallelism 0 (jobs config.go). */
const DEFAULT_PARALLELISM = 10;
const DEFAULT_PARALLELISM_WITH_OPTIONS = 5;

/** null when there is no jobs section (the plugin is off). */
export function readJobs(root: SectionReader, ctx: SectionContext): JobsConfig | null {
  const jobs = root.section('jobs');
  if (!jobs) return null;
  const options = jobs.section('options');
  const pipelines = readPipelines(jobs, ctx);
  return {
    pool: readPool(jobs.sectionOrEmpty('pool'), ctx),
    timeout: (jobs.uint('timeout') || DEFAULT_TIMEOUT_S) * 1000,
    pipelineSize: jobs.uint('pipeline_size') || DEFAULT_PIPELINE_SIZE,
    parallelism: options ? options.uint('parallelism') || DEFAULT_PARALLELISM_WITH_OPTIONS : DEFAULT_PARALLELISM,
    pipelines,
    consume: readConsume(jobs, pipelines, ctx),
  };
}

function readPipelines(jobs: SectionReader, ctx: SectionContext): JobsPipelineEntry[] {
  const section = jobs.section('pipelines');
  if (!section) return [];
  return section.keys().map((name) => {
    const pipeline = section.section(name);
    const where = `jobs.pipelines.${name}`;
    if (!pipeline) return { name, driver: '', config: null };
    const driver = pipeline.string('driver').trim();
    if (driver === '') {
      ctx.warnings.push(`${where}: no 'driver' key: the pipeline is skipped (RoadRunner logs an error and skips it too)`);
    } else if (!Object.hasOwn(DRIVERS, driver)) {
      const why = ROADRUNNER_DRIVERS.includes(driver) ? `rrts has no '${driver}' jobs driver (RoadRunner has)` : `no jobs driver is named '${driver}'`;
      ctx.warnings.push(`${where}.driver: ${why}: the pipeline is skipped; it is listed by jobs.List, pushes to it fail`);
    }
    const config = pipeline.value('config');
    if (config === undefined) return { name, driver, config: null };
    if (!isPlainMap(config)) return pipeline.fail('config', `expected a section (a map of the driver's keys), got ${describeValue(config)}`);
    return { name, driver, config };
  });
}

/** Names not among the pipelines are ignored, as RoadRunner does; rrts says so. */
function readConsume(jobs: SectionReader, pipelines: readonly JobsPipelineEntry[], ctx: SectionContext): string[] {
  const consume = jobs.list('consume');
  for (const name of consume) {
    if (!pipelines.some((p) => p.name === name)) ctx.warnings.push(`jobs.consume: '${name}' is not in jobs.pipelines; ignored (it consumes if declared later)`);
  }
  return consume;
}
