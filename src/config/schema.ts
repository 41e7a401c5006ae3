// The JSON schema (draft-07) of rrts's .rr.yaml, generated from the key table (keys.ts): the keys rrts reads, with
// the value types the weak typing accepts. Committed as schema/rrts.schema.json (write it with `npm run schema`).
import { CONFIG_KEYS, type KeySpec, type KeyTable, type ValueKey, type ValueKind } from './keys.js';

type Schema = Record<string, unknown>;

/** Scalars as the weak typing reads them: "4" is 4, "true" is true, and ${VAR} leaves a string anywhere. */
const SCALAR = { type: ['string', 'number', 'boolean'] };
const STRING_MAP = { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean', 'null'] } };

const KIND_SCHEMAS: Readonly<Record<ValueKind, Schema>> = {
  string: { type: ['string', 'number'] },
  text: { type: 'string' },
  int: { type: ['integer', 'string'] },
  uint: { anyOf: [{ type: 'integer', minimum: 0 }, { type: 'string' }] },
  bool: { type: ['boolean', 'string', 'integer'] },
  duration: { type: ['string', 'integer'], description: 'a Go duration: 300ms, 60s, 1m30s (a bare number is nanoseconds)' },
  seconds: { type: ['integer', 'string'] },
  megabytes: { anyOf: [{ type: 'integer', minimum: 0 }, { type: 'string' }] },
  list: { anyOf: [{ type: 'array', items: SCALAR }, SCALAR] },
  strings: { type: 'array', items: { type: 'string' } },
  numbers: { type: 'array', items: { type: ['number', 'string'] } },
  stringMap: { anyOf: [STRING_MAP, { type: 'array', items: STRING_MAP }] },
  command: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: ['string', 'number'] } }] },
  countOrAuto: { anyOf: [{ type: 'integer', minimum: 1 }, { type: 'string' }], examples: ['auto'] },
  map: { type: ['object', 'null'] },
  objectives: {
    anyOf: [
      { type: 'object', additionalProperties: { type: 'number' } },
      { type: 'array', items: { type: 'object', additionalProperties: { type: 'number' } } },
    ],
  },
};

export function configSchema(): Schema {
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'rrts configuration (.rr.yaml, RoadRunner version 3)',
    description: 'Generated from src/config/keys.ts: do not edit. Keys rrts does not read are left out (rrts warns about them).',
    ...sectionSchema(CONFIG_KEYS),
    type: 'object',
    required: ['version'],
  };
}

/** The committed file's text. */
export function schemaText(): string {
  return `${JSON.stringify(configSchema(), null, 2)}\n`;
}

function sectionSchema(table: KeyTable): Schema {
  const properties: Record<string, Schema> = {};
  for (const [name, spec] of Object.entries(table)) {
    const schema = keySchema(spec);
    if (schema) properties[name] = schema;
  }
  return { type: ['object', 'null'], properties, additionalProperties: false };
}

/** null for keys rrts ignores: the schema leaves them out so that an editor flags them as strict mode would. */
function keySchema(spec: KeySpec): Schema | null {
  switch (spec.kind) {
    case 'ignored':
      return null;
    case 'section':
      return { description: spec.doc, ...sectionSchema(spec.keys) };
    case 'named':
      return { description: spec.doc, type: ['object', 'null'], additionalProperties: sectionSchema(spec.each) };
    default:
      return valueSchema(spec);
  }
}

function valueSchema(spec: ValueKey): Schema {
  const base = KIND_SCHEMAS[spec.kind];
  const description = typeof base.description === 'string' ? `${spec.doc}; ${base.description}` : spec.doc;
  if (spec.oneOf) return { description, enum: [...spec.oneOf] };
  const schema: Schema = { ...base, description };
  if (spec.known) schema.examples = [...spec.known];
  return schema;
}
