// Kafka TLS reaches the wire: a TLS terminator (a certificate made here by the openssl CLI, signed by a CA made
// here) in front of librdkafka's mock cluster. The kafka.tls settings of whale.config.json go through
// parseKafka -> KafkaTopicAdmin -> kafkajs: with the right CA the handshake completes and Kafka requests flow
// through it; with the system's CAs the broker's certificate is refused; plaintext never completes a handshake.
// (A whole admin call cannot finish here: the mock advertises its own plaintext listener in its metadata, and
// kafkajs's next connection goes there. SASL has no peer here at all; its settings are unit-tested in
// kafka.config.test.ts.)
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:tls';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { readEnv } from '../src/common/env.js';
import { isWhaleError } from '../src/common/errors.js';
import { parseKafka } from '../src/config/kafka.js';
import { KafkaTopicAdmin } from '../src/transport/kafka-admin.js';
import { KafkaMock } from './support/kafka-mock.js';

const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

function makeCertificates(dir: string): void {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=whale-test-ca',
  );
  run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'broker.key', '-out', 'broker.csr', '-subj', '/CN=localhost');
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  run(
    'x509',
    '-req',
    '-in',
    'broker.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'broker.pem',
    '-days',
    '2',
    '-extfile',
    'ext.cnf',
  );
}

describe('kafka TLS on the wire', () => {
  it('has the openssl CLI to make its certificates (scripts/ensure-toolchain.sh installs it; npm test runs that)', () => {
    expect(hasOpenssl).toBe(true);
  });

  const dir = mkdtempSync(join(tmpdir(), 'whale-kafka-tls-'));
  let mock: KafkaMock;
  let server: Server;
  let broker: string;
  const seen = { handshakes: 0, bytes: 0, clientErrors: 0 };

  beforeAll(async () => {
    makeCertificates(dir);
    mock = await KafkaMock.start([['tls.topic', 1]], 1);
    const [host, port] = mock.brokers[0]!.split(':');
    server = createServer(
      { key: readFileSync(join(dir, 'broker.key')), cert: readFileSync(join(dir, 'broker.pem')) },
      (s) => {
        seen.handshakes++;
        const up = connect(Number(port), host);
        s.on('data', (d: Buffer) => (seen.bytes += d.length));
        s.pipe(up).pipe(s);
        up.on('error', () => s.destroy());
        s.on('error', () => up.destroy());
      },
    );
    server.on('tlsClientError', () => seen.clientErrors++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    broker = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  }, 60_000);
  afterAll(async () => {
    server?.close();
    await mock?.stop();
  });

  async function attempt(
    admin: KafkaTopicAdmin,
  ): Promise<{ error: string | undefined; handshakes: number; bytes: number; clientErrors: number }> {
    const before = { ...seen };
    let error: string | undefined;
    try {
      await admin.list();
    } catch (err) {
      expect(isWhaleError(err), String(err)).toBe(true);
      error = (err as Error).message;
    } finally {
      await admin.close();
    }
    await new Promise((r) => setTimeout(r, 50));
    return {
      error,
      handshakes: seen.handshakes - before.handshakes,
      bytes: seen.bytes - before.bytes,
      clientErrors: seen.clientErrors - before.clientErrors,
    };
  }

  it('kafka.tls.caFile from the configuration: the handshake completes and Kafka requests go through it', async () => {
    const k = parseKafka({ brokers: [broker], tls: { caFile: 'ca.pem', servername: 'localhost' } }, dir, readEnv({}));
    const r = await attempt(new KafkaTopicAdmin({ brokers: k.brokers, ...(k.tls ? { tls: k.tls } : {}), retries: 0 }));
    expect(r.handshakes).toBeGreaterThanOrEqual(1);
    expect(r.bytes).toBeGreaterThan(0); // ApiVersions and Metadata, encrypted
    expect(r.error ?? '').not.toMatch(/certificate|self.signed|verify/i);
  });

  it("the system's CAs (tls: true) refuse the broker's certificate; plaintext never completes a handshake", async () => {
    const systemCas = await attempt(new KafkaTopicAdmin({ brokers: [broker], tls: true, retries: 0 }));
    expect(systemCas.error).toMatch(
      /^kafka: cannot list topics on 127\.0\.0\.1:\d+: .*(unable to verify|self.signed|certificate)/i,
    );
    expect(systemCas.handshakes).toBe(0);
    const plain = await attempt(new KafkaTopicAdmin({ brokers: [broker], retries: 0 }));
    expect(plain.error).toMatch(/^kafka: cannot list topics/);
    expect(plain.handshakes).toBe(0);
    expect(plain.clientErrors).toBeGreaterThanOrEqual(1);
  });
});
