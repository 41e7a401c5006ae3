// rrts's own version, and the RoadRunner release whose behaviour it reproduces (exported to workers as RR_VERSION).
import { readFileSync } from 'node:fs';

export const RRTS_VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
export const RR_COMPAT_VERSION = '2025.1.15';
