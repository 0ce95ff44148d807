// Kafka for secured clusters: the `kafka` config section and the KAFKA_* variables are checked (ERR_CONFIG naming the
// field), the SASL password never shows in errors or printed options, and what reaches kafkajs's `new Kafka()` is
// the TLS/SASL asked for (kafkajs is replaced by a recorder here; no cluster needed).
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';

import { afterEach, describe, expect, it, vi } from 'vitest';

const made = vi.hoisted(() => [] as Array<Record<string, unknown>>);
/** When set, kafka.admin() returns it (a cluster with a controller, which the mock cluster is not). */
const fake = vi.hoisted(() => ({ admin: undefined as unknown }));
vi.mock('kafkajs', async (importOriginal) => {
  const actual = await importOriginal<typeof import('kafkajs')>();
  class RecordingKafka extends actual.Kafka {
    constructor(config: import('kafkajs').KafkaConfig) {
      made.push(config as unknown as Record<string, unknown>);
      super(config);
    }
    override admin(config?: import('kafkajs').AdminConfig): import('kafkajs').Admin {
      return (fake.admin as import('kafkajs').Admin | undefined) ?? super.admin(config);
    }
  }
  return { ...actual, Kafka: RecordingKafka };
});

import { readEnv } from '../src/common/env.js';
import { silentLogger } from '../src/common/logger.js';
import { parseKafka } from '../src/config/kafka.js';
import { parseConfig } from '../src/config/whale-config.js';
import { KafkaTopicAdmin, topicPlan } from '../src/transport/kafka-admin.js';
import { KafkaBus } from '../src/transport/kafka-bus.js';
import { LagTracker } from '../src/transport/kafka-lag.js';
import { kafkaOptionsFromEnv, kafkaSecurity, saslOptions } from '../src/transport/kafka-options.js';
import { expectWhaleError } from './helpers.js';

const SECRET = 'hunter2-very-secret';
const dir = mkdtempSync(join(tmpdir(), 'whale-kafka-cfg-'));
writeFileSync(join(dir, 'pw'), `${SECRET}\n`, { mode: 0o600 });
writeFileSync(join(dir, 'ca.pem'), '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
const noEnv = readEnv({});

afterEach(() => {
  made.length = 0;
  fake.admin = undefined;
});

/** An admin client of a 3-broker cluster with controller 2 holding `existing`; records createTopics calls. */
function fakeAdmin(existing: Record<string, number>, createError?: Error) {
  const created: unknown[] = [];
  const admin = {
    connect: async () => undefined,
    disconnect: async () => undefined,
    listTopics: async () => [...Object.keys(existing), '__consumer_offsets'],
    describeCluster: async () => ({
      brokers: [1, 2, 3].map((nodeId) => ({ nodeId, host: 'h', port: 9092 })),
      controller: 2,
      clusterId: 'c',
    }),
    fetchTopicMetadata: async ({ topics }: { topics: string[] }) => ({
      topics: topics.map((name) => ({
        name,
        partitions: Array.from({ length: existing[name]! }, (_, i) => ({
          partitionId: i,
          leader: 1,
          replicas: [1, 2, 3],
          isr: [1, 2, 3],
        })),
      })),
    }),
    createTopics: async (o: unknown) => {
      if (createError) throw createError;
      created.push(o);
      return true;
    },
  };
  fake.admin = admin;
  return { admin, created };
}

describe('kafka configuration', () => {
  it('defaults: no brokers (LocalBus), idempotent, no TLS/SASL, topics provisioned with 3 partitions', () => {
    const k = parseConfig({}, dir, undefined, undefined, noEnv).kafka;
    expect(k).toMatchObject({
      brokers: [],
      clientId: 'smart-whale',
      idempotent: true,
      topics: { provision: true, defaults: { partitions: 3 } },
    });
    expect(k.tls).toBeUndefined();
    expect(k.sasl).toBeUndefined();
    // WHALE_KAFKA_IDEMPOTENT=0 (librdkafka's mock cluster) turns the idempotent producer off, file or not.
    expect(parseKafka({ idempotent: true }, dir, readEnv({ WHALE_KAFKA_IDEMPOTENT: '0' })).idempotent).toBe(false);
    expect(parseKafka({ idempotent: false }, dir, noEnv).idempotent).toBe(false);
    expect(kafkaOptionsFromEnv(readEnv({ WHALE_KAFKA_IDEMPOTENT: '0' })).idempotent).toBe(false);
    expect(kafkaOptionsFromEnv(noEnv).idempotent).toBe(true);
  });

  it('a bad mechanism is ERR_CONFIG naming the field (file or variable), without the password', async () => {
    await expectWhaleError(
      () => parseKafka({ sasl: { mechanism: 'gssapi', username: 'u', passwordFile: 'pw' } }, dir, noEnv),
      'ERR_CONFIG',
      'kafka.sasl.mechanism',
    );
    const e = await expectWhaleError(
      () =>
        kafkaOptionsFromEnv(
          readEnv({ KAFKA_SASL_MECHANISM: 'OAUTH', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: SECRET }),
        ),
      'ERR_CONFIG',
      'KAFKA_SASL_MECHANISM',
    );
    expect(e.message).toMatch(/plain, scram-sha-256, scram-sha-512/);
    expect(e.message).not.toContain(SECRET);
    await expectWhaleError(
      () => kafkaSecurity({ sasl: { mechanism: 'md5' as 'plain', username: 'u', password: SECRET } }),
      'ERR_INVALID_OPTION',
      'options.sasl.mechanism',
    );
  });

  it('refuses a password written in the file, and incomplete SASL settings', async () => {
    const e = await expectWhaleError(
      () => parseKafka({ sasl: { mechanism: 'plain', username: 'u', password: SECRET } }, dir, noEnv),
      'ERR_CONFIG',
      'kafka.sasl.password',
    );
    expect(e.message).not.toContain(SECRET);
    await expectWhaleError(
      () => parseKafka({ sasl: { mechanism: 'plain', username: 'u' } }, dir, noEnv),
      'ERR_CONFIG',
      'kafka.sasl.passwordFile',
    );
    await expectWhaleError(
      () => parseKafka({ sasl: { mechanism: 'plain', passwordFile: 'pw' } }, dir, noEnv),
      'ERR_CONFIG',
      'kafka.sasl.username',
    );
    await expectWhaleError(
      () => kafkaOptionsFromEnv(readEnv({ KAFKA_SASL_PASSWORD: SECRET })),
      'ERR_CONFIG',
      'KAFKA_SASL_MECHANISM',
    );
    await expectWhaleError(
      () =>
        kafkaOptionsFromEnv(
          readEnv({
            KAFKA_SASL_MECHANISM: 'plain',
            KAFKA_SASL_USERNAME: 'u',
            KAFKA_SASL_PASSWORD: 'a',
            KAFKA_SASL_PASSWORD_FILE: join(dir, 'pw'),
          }),
        ),
      'ERR_CONFIG',
      'KAFKA_SASL_PASSWORD_FILE',
    );
    const missing = await expectWhaleError(
      () => parseKafka({ tls: { caFile: 'nope.pem' } }, dir, noEnv),
      'ERR_CONFIG',
      'kafka.tls.caFile',
    );
    expect(missing.message).toMatch(/ENOENT/);
    await expectWhaleError(() => kafkaOptionsFromEnv(readEnv({ KAFKA_TLS: 'maybe' })), 'ERR_CONFIG', 'KAFKA_TLS');
    await expectWhaleError(
      () => parseKafka({ topics: { overrides: { 'whale.metrics': { partitions: 0 } } } }, dir, noEnv),
      'ERR_CONFIG',
      'kafka.topics.overrides.whale.metrics.partitions',
    );
    await expectWhaleError(
      () => parseKafka({ tls: { certFile: 'ca.pem' } }, dir, noEnv),
      'ERR_CONFIG',
      'kafka.tls.key',
    );
    // A password or private key file others may read is refused, like the federation key files.
    writeFileSync(join(dir, 'pw-open'), SECRET, { mode: 0o644 });
    chmodSync(join(dir, 'pw-open'), 0o644);
    const open = await expectWhaleError(
      () => parseKafka({ sasl: { mechanism: 'plain', username: 'u', passwordFile: 'pw-open' } }, dir, noEnv),
      'ERR_CONFIG',
      'kafka.sasl.passwordFile',
    );
    expect(open.message).toMatch(/readable by group or others \(mode 644\); chmod 600 it/);
    expect(open.message).not.toContain(SECRET);
    await expectWhaleError(
      () =>
        kafkaOptionsFromEnv(
          readEnv({
            KAFKA_SASL_MECHANISM: 'plain',
            KAFKA_SASL_USERNAME: 'u',
            KAFKA_SASL_PASSWORD_FILE: join(dir, 'pw-open'),
          }),
        ),
      'ERR_CONFIG',
      'KAFKA_SASL_PASSWORD_FILE',
    );
    await expectWhaleError(
      () => parseKafka({ tls: { certFile: 'ca.pem', keyFile: 'pw-open' } }, dir, noEnv),
      'ERR_CONFIG',
      'kafka.tls.keyFile',
    );
  });

  it('the file names the user, the environment holds the password; SASL turns TLS on; the password stays hidden', () => {
    const k = parseKafka(
      {
        brokers: ['b-1.example:9096'],
        sasl: { mechanism: 'scram-sha-512', username: 'whale' },
        tls: { caFile: 'ca.pem' },
      },
      dir,
      readEnv({ KAFKA_SASL_PASSWORD_FILE: join(dir, 'pw') }),
    );
    expect(k.brokers).toEqual(['b-1.example:9096']);
    expect(k.sasl).toMatchObject({ mechanism: 'scram-sha-512', username: 'whale' });
    expect(k.sasl!.password).toBe(SECRET); // the file's trailing newline is dropped
    expect(k.tls).toMatchObject({ ca: expect.stringContaining('BEGIN CERTIFICATE') });
    expect(JSON.stringify(k)).not.toContain(SECRET);
    expect(inspect(k, { depth: 10 })).not.toContain(SECRET);
    // Variables replace the file's values; KAFKA_TLS=0 is plaintext even with SASL.
    const plain = parseKafka(
      { sasl: { mechanism: 'plain', username: 'file-user', passwordFile: 'pw' } },
      dir,
      readEnv({ KAFKA_TLS: '0', KAFKA_SASL_USERNAME: 'env-user', KAFKA_BROKERS: 'k:9092' }),
    );
    expect(plain).toMatchObject({ brokers: ['k:9092'], sasl: { mechanism: 'plain', username: 'env-user' } });
    expect(plain.tls).toBeUndefined();
    const env = kafkaOptionsFromEnv(
      readEnv({
        KAFKA_BROKERS: 'a:1, b:2',
        KAFKA_SASL_MECHANISM: 'SCRAM-SHA-256',
        KAFKA_SASL_USERNAME: 'u',
        KAFKA_SASL_PASSWORD: SECRET,
        KAFKA_CLIENT_ID: 'whale-prod',
      }),
    );
    expect(env).toMatchObject({
      brokers: ['a:1', 'b:2'],
      clientId: 'whale-prod',
      tls: true,
      sasl: { mechanism: 'scram-sha-256', username: 'u' },
    });
    expect(JSON.stringify(env)).not.toContain(SECRET);
  });

  it('topics: defaults, per-topic overrides (a .dlq follows its topic), extra topics', () => {
    const k = parseKafka(
      {
        topics: {
          partitions: 6,
          replicationFactor: 3,
          retentionMs: 604_800_000,
          overrides: { 'whale.metrics': { partitions: 1, retentionMs: 3_600_000 } },
          extra: ['my.topic'],
        },
      },
      dir,
      noEnv,
    );
    const plan = new Map(topicPlan(k.topics).map((p) => [p.topic, p.spec]));
    expect(plan.get('whale.user.requests')).toEqual({ partitions: 6, replicationFactor: 3, retentionMs: 604_800_000 });
    expect(plan.get('whale.metrics')).toEqual({ partitions: 1, replicationFactor: 3, retentionMs: 3_600_000 });
    expect(plan.get('whale.metrics.dlq')).toEqual({ partitions: 1, replicationFactor: 3, retentionMs: 3_600_000 });
    expect(plan.get('my.topic')).toEqual({ partitions: 6, replicationFactor: 3, retentionMs: 604_800_000 });
    expect(plan.has('whale.replies.dlq')).toBe(true);
    expect(parseKafka({ topics: { provision: false } }, dir, noEnv).topics.provision).toBe(false);
  });
});

describe('provisioning on a cluster with a controller (kafkajs admin replaced by a fake)', () => {
  it('creates only the missing topics, with partitions, replication factor and retention.ms per topic', async () => {
    const { created } = fakeAdmin({ 'whale.user.requests': 6, 'whale.metrics': 3 });
    const k = parseKafka(
      {
        topics: {
          partitions: 6,
          retentionMs: 604_800_000,
          overrides: { 'whale.metrics': { partitions: 1 }, 'whale.events': { replicationFactor: 2, retentionMs: -1 } },
        },
      },
      dir,
      noEnv,
    );
    const admin = new KafkaTopicAdmin({ brokers: ['b:9092'] });
    const r = await admin.provision(topicPlan(k.topics));
    expect(r.existing.sort()).toEqual(['whale.metrics', 'whale.user.requests']);
    expect(r.mismatched).toEqual([{ topic: 'whale.metrics', partitions: 3, wanted: 1 }]);
    expect(r.unsupported).toBeUndefined();
    expect(created).toHaveLength(1);
    const call = created[0] as {
      waitForLeaders: boolean;
      topics: Array<{ topic: string; numPartitions: number; replicationFactor: number; configEntries?: unknown[] }>;
    };
    expect(call.waitForLeaders).toBe(true);
    const byName = new Map(call.topics.map((t) => [t.topic, t]));
    expect(byName.has('whale.user.requests')).toBe(false);
    expect(byName.has('whale.metrics')).toBe(false);
    expect(byName.get('whale.metrics.dlq')).toEqual({
      topic: 'whale.metrics.dlq',
      numPartitions: 1,
      replicationFactor: 3,
      configEntries: [{ name: 'retention.ms', value: '604800000' }],
    });
    expect(byName.get('whale.events')).toEqual({
      topic: 'whale.events',
      numPartitions: 6,
      replicationFactor: 2,
      configEntries: [{ name: 'retention.ms', value: '-1' }],
    });
    expect(byName.get('whale.user.responses')).toMatchObject({ numPartitions: 6, replicationFactor: 3 });
    expect(r.created.sort()).toEqual(call.topics.map((t) => t.topic).sort());
    expect(await admin.list()).not.toContain('__consumer_offsets');
    await admin.close();
  });

  it('a principal without the ACL is ERR_FORBIDDEN (not retried as an outage), a refused login ERR_UNAUTHENTICATED', async () => {
    // Shaped as kafkajs throws them (KafkaJSAggregateError of KafkaJSCreateTopicError, KafkaJSSASLAuthenticationError).
    const kafkaError = (name: string, message: string, extra: Record<string, unknown> = {}) =>
      Object.assign(new Error(message), { name, ...extra });
    const denied = kafkaError('KafkaJSAggregateError', 'Topic creation errors', {
      errors: [
        kafkaError('KafkaJSCreateTopicError', 'Not authorized to access topics', {
          type: 'TOPIC_AUTHORIZATION_FAILED',
          topic: 'whale.events',
        }),
      ],
    });
    fakeAdmin({}, denied);
    const e = await expectWhaleError(
      () => new KafkaTopicAdmin({ brokers: ['b:9092'] }).create([{ topic: 'whale.events', spec: { partitions: 3 } }]),
      'ERR_FORBIDDEN',
    );
    expect(e.message).toMatch(/cannot create topics on b:9092: whale\.events: TOPIC_AUTHORIZATION_FAILED/);
    expect(e.retriable).toBe(false);
    const { admin } = fakeAdmin({});
    admin.listTopics = async () => {
      throw kafkaError('KafkaJSSASLAuthenticationError', 'SASL SCRAM SHA512 authentication failed: bad credentials');
    };
    const login = await expectWhaleError(
      () => new KafkaTopicAdmin({ brokers: ['b:9092'], sasl: saslOptions('scram-sha-512', 'u', SECRET) }).list(),
      'ERR_UNAUTHENTICATED',
    );
    expect(login.message).not.toContain(SECRET);
  });
});

describe('what kafkajs receives', () => {
  it('KafkaBus passes TLS and SASL to new Kafka() as given (and plaintext by default)', async () => {
    const sasl = saslOptions('scram-sha-512', 'whale', SECRET);
    const bus = new KafkaBus({
      brokers: ['b-1:9096'],
      clientId: 'c1',
      tls: { ca: 'PEM-CA', servername: 'kafka.example', rejectUnauthorized: true },
      sasl,
      logger: silentLogger,
    });
    const cfg = made.at(-1)!;
    expect(cfg).toMatchObject({
      clientId: 'c1',
      brokers: ['b-1:9096'],
      ssl: { ca: 'PEM-CA', servername: 'kafka.example', rejectUnauthorized: true },
    });
    const s = cfg.sasl as { mechanism: string; username: string; password: string };
    expect([s.mechanism, s.username, s.password]).toEqual(['scram-sha-512', 'whale', SECRET]);
    await bus.close();
    const plain = new KafkaBus({ brokers: ['b-1:9092'], logger: silentLogger });
    expect(made.at(-1)!.ssl).toBeUndefined();
    expect(made.at(-1)!.sasl).toBeUndefined();
    await plain.close();
    new KafkaBus({ brokers: ['b-1:9093'], tls: true, logger: silentLogger });
    expect(made.at(-1)!.ssl).toBe(true);
  });

  it('the topic admin (whale topics, provisioning) connects the same way', async () => {
    const admin = new KafkaTopicAdmin({ brokers: ['b-1:9096'], tls: true, sasl: saslOptions('plain', 'key', SECRET) });
    expect(made.at(-1)).toMatchObject({
      brokers: ['b-1:9096'],
      ssl: true,
      sasl: { mechanism: 'plain', username: 'key' },
    });
    expect((made.at(-1)!.sasl as { password: string }).password).toBe(SECRET);
    await admin.close();
  });

  it('a bad option given in code is ERR_INVALID_OPTION naming it', async () => {
    await expectWhaleError(
      () => new KafkaBus({ brokers: ['b:1'], tls: { cert: 'PEM' }, logger: silentLogger }),
      'ERR_INVALID_OPTION',
      'options.tls.key',
    );
    await expectWhaleError(
      () =>
        new KafkaBus({
          brokers: ['b:1'],
          sasl: { mechanism: 'plain', username: '', password: 'x' },
          logger: silentLogger,
        }),
      'ERR_INVALID_OPTION',
      'options.sasl.username',
    );
    await expectWhaleError(
      () => new KafkaBus({ brokers: ['b:1'], tls: 'yes' as unknown as boolean, logger: silentLogger }),
      'ERR_INVALID_OPTION',
      'options.tls',
    );
  });
});

describe('consumer lag bookkeeping', () => {
  it('lag per partition from batch events; a partition a rebalance gives to another member goes', () => {
    const handlers = new Map<string, (e: { payload: unknown }) => void>();
    const consumer = {
      events: { START_BATCH_PROCESS: 'start', END_BATCH_PROCESS: 'end', GROUP_JOIN: 'join' },
      on: (ev: string, h: (e: { payload: unknown }) => void) => {
        handlers.set(ev, h);
        return () => handlers.delete(ev);
      },
    };
    const t = new LagTracker();
    const stop = t.watch(consumer as unknown as import('kafkajs').Consumer, 'g.t');
    const batch = (partition: number, batchSize: number, offsetLagLow: string, offsetLag: string) => ({
      payload: { topic: 't', partition, batchSize, offsetLagLow, offsetLag },
    });
    handlers.get('start')!(batch(0, 3, '4', '2')); // high watermark 10, batch 5..7: 5 left before it
    expect(t.snapshot()).toEqual([{ group: 'g.t', topic: 't', partition: 0, lag: 5 }]);
    handlers.get('end')!(batch(0, 3, '4', '2'));
    handlers.get('start')!(batch(1, 1, '0', '0'));
    expect(t.snapshot().map((l) => [l.partition, l.lag])).toEqual([
      [0, 2],
      [1, 1],
    ]);
    handlers.get('join')!({ payload: { memberAssignment: { t: [1] } } });
    expect(t.snapshot().map((l) => l.partition)).toEqual([1]);
    stop();
    expect(t.snapshot()).toEqual([]);
    expect(handlers.size).toBe(0);
  });
});
