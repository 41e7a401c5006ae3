// The global `nats:` section (docs/jobs-nats.md §1): the nats-server the jobs nats driver connects to. Read here so
// a wrong type is a config error with its file and line at load; the driver reads the same key when a pipeline starts.
import type { NatsConfig } from '../types.js';
import type { SectionReader } from '../reader.js';
import { ConfigError } from '../../errors.js';
import { checkAddr, DEFAULT_ADDR } from '../../jobs/drivers/nats/config.js';

export function readNats(root: SectionReader): NatsConfig | null {
  const nats = root.section('nats');
  if (!nats) return null;
  const addr = nats.string('addr') || DEFAULT_ADDR;
  try {
    checkAddr(addr);
  } catch (err) {
    if (err instanceof ConfigError) return nats.fail('addr', err.message.replace(/^nats\.addr: /, ''));
    throw err;
  }
  return { addr };
}
