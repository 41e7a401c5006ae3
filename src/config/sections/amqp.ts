// The global `amqp:` section (docs/compatibility.md §1.16): the broker the jobs amqp driver dials. Read here so a
// wrong type is a config error with its file and line at load; the driver reads the same keys when a pipeline starts.
import type { AmqpConfig } from '../types.js';
import type { SectionReader } from '../reader.js';

const DEFAULT_ADDR = 'amqp://guest:guest@127.0.0.1:5672/';

export function readAmqp(root: SectionReader): AmqpConfig | null {
  const amqp = root.section('amqp');
  if (!amqp) return null;
  const tls = amqp.section('tls');
  return {
    addr: amqp.string('addr') || DEFAULT_ADDR,
    tls: tls && {
      key: tls.string('key'),
      cert: tls.string('cert'),
      rootCa: tls.string('root_ca'),
      clientAuthType: tls.string('client_auth_type'),
    },
  };
}
