// Top-level sections rrts does not run (jobs, grpc, kv, ... from the stock RoadRunner binary, docs/compatibility.md §1.14):
// each gets one start-up warning instead of being silently ignored.

/** Sections rrts reads itself, or that carry no settings. */
const HANDLED = new Set([
  'version', 'include', 'server', 'http', 'rpc', 'logs', 'status', 'metrics', 'endure',
  'informer', 'resetter', 'lock',
]);

/** Plugins (and their drivers) of the stock RoadRunner binary that rrts does not have. */
const ROADRUNNER_ONLY = new Set([
  'jobs', 'kv', 'grpc', 'tcp', 'temporal', 'service', 'centrifuge', 'fileserver', 'otel', 'redis', 'amqp',
  'nats', 'beanstalk', 'sqs', 'kafka', 'boltdb', 'memcached', 'memory', 'google_pub_sub', 'gps', 'nsq',
  'app-logger', 'applogger', 'websockets', 'broadcast',
]);

export function unsupportedSectionWarnings(sections: readonly string[]): string[] {
  const warnings: string[] = [];
  for (const name of sections) {
    if (HANDLED.has(name)) continue;
    if (name === 'envfile') {
      warnings.push("section 'envfile' is ignored (in RoadRunner it needs -e): load the file with --dotenv or DOTENV_PATH instead");
    } else if (name === 'reload') {
      warnings.push("section 'reload' is ignored: RoadRunner removed the reload plugin in v2023.1.0 and rrts does not have it");
    } else if (ROADRUNNER_ONLY.has(name)) {
      warnings.push(`section '${name}' is ignored: rrts does not have RoadRunner's ${name} plugin`);
    } else {
      warnings.push(`section '${name}' is ignored: rrts has no plugin of that name`);
    }
  }
  return warnings;
}
