// The amqp driver over TLS: `amqp.tls` key, cert and root_ca against a broker that requires a client certificate,
// with certificates made by openssl for the test.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RabbitMq } from '../support/rabbitmq.js';
import { job, makeDriver, type Made } from './amqp-harness.js';

/** A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA. */
function makeCertificates(dir: string): Record<'ca' | 'serverCert' | 'serverKey' | 'clientCert' | 'clientKey', string> {
  const file = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=rrts test CA', '-keyout', 'ca.key', '-out', 'ca.pem');
  for (const [name, cn, ext] of [
    ['server', '127.0.0.1', 'subjectAltName=IP:127.0.0.1'],
    ['client', 'rrts client', 'extendedKeyUsage=clientAuth'],
  ] as const) {
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${cn}`, '-keyout', `${name}.key`, '-out', `${name}.csr`);
    fs.writeFileSync(file(`${name}.ext`), `${ext}\n`);
    openssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
      '-out',
      `${name}.pem`,
    );
  }
  for (const key of ['ca.key', 'server.key', 'client.key']) fs.chmodSync(file(key), 0o644);
  return { ca: file('ca.pem'), serverCert: file('server.pem'), serverKey: file('server.key'), clientCert: file('client.pem'), clientKey: file('client.key') };
}

describe('amqp driver over TLS', () => {
  let broker: RabbitMq;
  let certs: ReturnType<typeof makeCertificates>;
  let dir: string;
  const made: Made[] = [];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-amqp-tls-'));
    certs = makeCertificates(dir);
    broker = await RabbitMq.start({ tls: { ca: certs.ca, cert: certs.serverCert, key: certs.serverKey } });
  });
  after(async () => {
    for (const m of made) await m.driver.stop().catch(() => {});
    await broker?.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('pushes and consumes with a client certificate, verifying the broker with root_ca', async () => {
    const amqp = { addr: `amqps://guest:guest@127.0.0.1:${broker.tlsPort}/`, tls: { key: certs.clientKey, cert: certs.clientCert, root_ca: certs.ca } };
    const m = await makeDriver(broker, 'tls', { queue: 'tls-q', routing_key: 'tls' }, { amqp });
    made.push(m);
    await m.driver.run();
    await m.driver.push(job('over-tls', 'tls'));
    const [got] = await m.queue.take(1);
    assert.equal(got!.item.id, 'over-tls');
    await got!.ack();
  });

  it('refuses a broker its root_ca did not sign', async () => {
    const other = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-amqp-tls-other-'));
    try {
      const strangers = makeCertificates(other);
      const amqp = { addr: `amqps://guest:guest@127.0.0.1:${broker.tlsPort}/`, tls: { key: certs.clientKey, cert: certs.clientCert, root_ca: strangers.ca } };
      await assert.rejects(
        makeDriver(broker, 'tls-stranger', { queue: 'tls-q', routing_key: 'tls' }, { amqp }),
        /^JobsDriverError: amqp pipeline tls-stranger: cannot connect to amqps:.*(certificate|self.signed)/,
      );
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
  });
});
