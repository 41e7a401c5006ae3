// The config room's public face: loadConfig and the Config types; the helpers are exported for tests and
// for the CLI client (which reads rpc.listen the same way).
export { loadConfig, resolveLocations } from './load.js';
export type * from './types.js';
export { parseDuration } from './duration.js';
export { expandString, expandTree } from './expand.js';
export { parseDotenv, loadDotenv } from './dotenv.js';
export { parseOverride } from './overrides.js';
