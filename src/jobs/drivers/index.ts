// The jobs drivers rrts has, by the name a pipeline's `driver` key gives: each entry loads its module only when a
// pipeline uses it (amqp pulls in its client library). A new driver is one line here.
import type { DriverFactory } from '../driver.js';

export const DRIVERS: Readonly<Record<string, () => Promise<DriverFactory>>> = {
  memory: () => import('./memory.js').then((m) => m.memoryDriver),
  amqp: () => import('./amqp.js').then((m) => m.createAmqpDriver),
  boltdb: () => import('./boltdb.js').then((m) => m.boltdbDriverFactory),
  beanstalk: () => import('./beanstalk.js').then((m) => m.createBeanstalkDriver),
  nats: () => import('./nats.js').then((m) => m.createNatsDriver),
};

/** Drivers compiled into RoadRunner 2025.1 (docs/jobs.md §1.2): a pipeline naming one rrts lacks gets a warning saying so. */
export const ROADRUNNER_DRIVERS: readonly string[] = ['memory', 'amqp', 'boltdb', 'beanstalk', 'sqs', 'nats', 'kafka', 'google_pub_sub'];

/** The factory of a driver name, or null when rrts has no such driver. */
export async function driverFactory(name: string): Promise<DriverFactory | null> {
  const load = Object.hasOwn(DRIVERS, name) ? DRIVERS[name] : undefined;
  return load ? load() : null;
}
