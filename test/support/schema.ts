// Every config an integration test writes is checked against schema/rrts.schema.json (ajv) before rrts reads it,
// so the schema and the configs the tests rely on cannot drift apart.
import { createRequire } from 'node:module';
import { configSchema } from '../../src/config/schema.js';

interface Validator {
  (data: unknown): boolean;
  errors?: { instancePath: string; message?: string }[] | null;
}

let validator: Validator | null = null;

/** The schema's complaints about `config` (a parsed .rr.yaml), or [] when it validates. */
export function schemaProblems(config: unknown): string[] {
  if (!validator) {
    const { default: Ajv } = createRequire(import.meta.url)('ajv') as {
      default: new (options: Record<string, unknown>) => { compile(schema: unknown): Validator };
    };
    validator = new Ajv({ allErrors: true, allowUnionTypes: true }).compile(configSchema());
  }
  return validator(config) ? [] : (validator.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`);
}

/** Throws, naming each problem, when `config` does not validate. */
export function assertValidConfig(config: unknown, where: string): void {
  const problems = schemaProblems(config);
  if (problems.length > 0) throw new Error(`${where}: the config does not validate against schema/rrts.schema.json: ${problems.join('; ')}`);
}
