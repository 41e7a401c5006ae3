// The global `beanstalk:` section (docs/jobs-beanstalk.md §1): the beanstalkd the jobs beanstalk driver dials. Read
// here so a wrong type is a config error with its file and line at load; the driver reads the same keys when a
// pipeline starts.
import type { BeanstalkConfig } from '../types.js';
import type { SectionReader } from '../reader.js';

const DEFAULT_ADDR = 'tcp://127.0.0.1:11300';
const DEFAULT_TIMEOUT_MS = 30_000;

export function readBeanstalk(root: SectionReader): BeanstalkConfig | null {
  const beanstalk = root.section('beanstalk');
  if (!beanstalk) return null;
  const addr = beanstalk.string('addr') || DEFAULT_ADDR;
  if (!/^(tcp|unix):\/\/.+/.test(addr)) return beanstalk.fail('addr', `invalid socket DSN (tcp://127.0.0.1:11300, unix://beanstalk.sock), provided: ${addr}`);
  return { addr, timeout: beanstalk.duration('timeout') || DEFAULT_TIMEOUT_MS };
}
