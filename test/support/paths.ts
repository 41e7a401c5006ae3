// Where the checkout's parts are, from the compiled tests (dist/test/support): the repository root, bin/rrts and
// the PHP fixture worker.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const BIN = path.join(ROOT, 'bin', 'rrts');
export const FIXTURE = path.join(ROOT, 'test', 'fixtures', 'php', 'worker.php');
