// Writes schema/rrts.schema.json from the config key table (src/config/keys.ts); `npm run schema` builds first.
import { writeFileSync } from 'node:fs';
import { schemaText } from '../dist/src/config/schema.js';

writeFileSync(new URL('../schema/rrts.schema.json', import.meta.url), schemaText());
