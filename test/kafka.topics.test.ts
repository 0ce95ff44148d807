// Topic provisioning, `whale topics` and consumer lag against librdkafka's mock cluster (a real Kafka protocol peer).
// The mock answers Metadata and offsets but has no CreateTopics/DescribeConfigs API and reports controller 0, so
// here creation is shown to fail cleanly (ERR_UNSUPPORTED, provisioning warns and goes on); topics the launcher
// created stand for topics a real cluster would have.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { isWhaleError } from '../src/common/errors.js';
import { silentLogger, type Logger } from '../src/common/logger.js';
import { main } from '../src/cli/main.js';
import { registerConsumerLagCollector } from '../src/core/monitoring/metrics/kafka-lag.js';
import { WhaleMetrics } from '../src/core/monitoring/metrics/whale-metrics.js';
import { MessagingService } from '../src/services/messaging-service.js';
import { MemoryStateStore } from '../src/services/state-store.js';
import { dlqTopic } from '../src/transport/bus.js';
import { createEnvelope } from '../src/transport/envelope.js';
import { defaultProvisioning, KafkaTopicAdmin, topicPlan } from '../src/transport/kafka-admin.js';
import { KafkaBus } from '../src/transport/kafka-bus.js';
import { allTopics, modelTopic, TOPICS } from '../src/transport/topics.js';
import { expectWhaleError } from './helpers.js';
import { KafkaMock } from './support/kafka-mock.js';

const LAG_TOPIC = 'lag.test';

function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const rec = (level: string) => (msg: string, fields?: Record<string, unknown>) =>
    void lines.push(`${level} ${msg}${fields ? ` ${JSON.stringify(fields)}` : ''}`);
  return { lines, debug: () => undefined, info: rec('info'), warn: rec('warn'), error: rec('error') };
}

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (s) => void (out += s), err: (s) => void (err += s) });
  return { code, out, err };
}

async function until(f: () => boolean, ms = 15_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!f() && Date.now() < end) await new Promise((r) => setTimeout(r, 25));
  return f();
}

describe('kafka topics on the mock cluster', () => {
  let mock: KafkaMock;
  let admin: KafkaTopicAdmin;
  // Every Smart Whale topic (3 partitions) except whale.events (missing) and whale.metrics (1 partition: differs).
  const present = allTopics()
    .flatMap((t) => [t, dlqTopic(t)])
    .filter((t) => t !== TOPICS.events);

  beforeAll(async () => {
    mock = await KafkaMock.start([
      ...present.map((t): [string, number] => [t, t === TOPICS.metrics ? 1 : 3]),
      [LAG_TOPIC, 1],
    ]);
    admin = new KafkaTopicAdmin({ brokers: mock.brokers });
  }, 60_000);
  afterAll(async () => {
    await admin?.close();
    await mock?.stop();
  });

  it('provision: finds the existing topics, reports the partition mismatch, and cannot create on the mock', async () => {
    const r = await admin.provision(topicPlan(defaultProvisioning()));
    expect(r.existing).toEqual(
      expect.arrayContaining([TOPICS.userRequests, dlqTopic(TOPICS.userRequests), TOPICS.replies]),
    );
    expect(r.existing).not.toContain(TOPICS.events);
    expect(r.mismatched).toEqual([{ topic: TOPICS.metrics, partitions: 1, wanted: 3 }]);
    expect(r.created).toEqual([]);
    expect(r.skipped).toEqual([TOPICS.events]);
    expect(r.unsupported).toMatch(/reports no controller/);
  });

  it('describe: partitions with leader, replicas, in-sync replicas and offsets; a missing topic is ERR_NOT_FOUND', async () => {
    const [t] = await admin.describe([TOPICS.userRequests]);
    expect(t!.name).toBe(TOPICS.userRequests);
    expect(t!.partitions.map((p) => p.partition)).toEqual([0, 1, 2]);
    for (const p of t!.partitions) {
      expect(p.replicas.length).toBeGreaterThan(0);
      expect(p.replicas).toContain(p.leader);
      expect(p.high).toBe('0');
    }
    expect(t!.retentionMs).toBeUndefined(); // the mock has no DescribeConfigs
    await expectWhaleError(() => admin.describe(['no.such.topic']), 'ERR_NOT_FOUND', 'topics');
  });

  it('create: ERR_UNSUPPORTED on a cluster without a controller; nothing to do when the topics exist', async () => {
    const e = await expectWhaleError(
      () => admin.create([{ topic: TOPICS.events, spec: { partitions: 3, retentionMs: 60_000 } }]),
      'ERR_UNSUPPORTED',
    );
    expect(e.message).toMatch(/cannot be created through the admin API/);
    expect(await admin.create([{ topic: TOPICS.userRequests, spec: { partitions: 3 } }])).toEqual([]);
  });

  it('MessagingService provisions at initialize: warns about the mismatch and the missing topic, then runs', async () => {
    const logger = recordingLogger();
    const messaging = new MessagingService({
      nodeId: 'prov-node',
      store: new MemoryStateStore(),
      logger,
      kafka: { brokers: mock.brokers, idempotent: false, sessionTimeoutMs: 6000, topics: defaultProvisioning() },
    });
    try {
      await messaging.initialize();
      expect(messaging.bus.kind).toBe('kafka');
      expect(logger.lines.join('\n')).toMatch(
        /warn kafka topic whale\.metrics has 1 partitions, the configuration asks for 3/,
      );
      expect(logger.lines.join('\n')).toMatch(/warn kafka topics not provisioned \(1 missing, left to auto-creation\)/);
    } finally {
      await messaging.shutdown();
    }
  }, 120_000);

  it('whale topics list / describe / create', async () => {
    const b = ['--brokers', mock.brokers.join(',')];
    const list = await cli(['topics', 'list', ...b]);
    expect(list.code).toBe(0);
    expect(list.out).toContain(`  ${TOPICS.userRequests}\n`);
    expect(list.out).toContain(`* ${TOPICS.events}\n`);
    // The built-in configuration's model (mnist) has its own topic and its .dlq twin, missing here.
    expect(list.out).toContain(`* ${modelTopic('mnist')}\n`);
    expect(list.out).toContain(`* ${modelTopic('mnist')}.dlq\n`);
    expect(list.err).toMatch(/\* = missing \(3\)/);
    const all = await cli(['topics', 'list', '--all', '--json', ...b]);
    expect(JSON.parse(all.out)).toContainEqual({ name: LAG_TOPIC, whale: false, exists: true });

    const d = await cli(['topics', 'describe', TOPICS.metrics, '--json', ...b]);
    expect(d.code).toBe(0);
    const [m] = JSON.parse(d.out) as Array<{
      name: string;
      partitions: unknown[];
      messages: string;
      differs: string[];
    }>;
    expect(m).toMatchObject({ name: TOPICS.metrics, messages: '0' });
    expect(m!.partitions).toHaveLength(1);
    expect(m!.differs[0]).toMatch(/^partitions 1, configured 3/);
    const text = await cli(['topics', 'describe', TOPICS.userRequests, ...b]);
    expect(text.out).toMatch(
      /^whale\.user\.requests {2}partitions 3 {2}replication \d {2}messages 0 {2}retention unknown\n/,
    );
    expect(text.out).toMatch(/\n {2}0: leader \d+ {2}replicas [\d,]+ {2}isr [\d,]+ {2}offsets 0\.\.0\n/);

    const dry = await cli(['topics', 'create', '--dry-run', TOPICS.events, ...b]);
    expect(dry).toMatchObject({
      code: 0,
      out: `${TOPICS.events}  partitions 3  replication min(3, brokers)  retention: broker default\n`,
    });
    const dryAll = await cli(['topics', 'create', '--dry-run', ...b]);
    expect(dryAll.out).toContain(`${modelTopic('mnist')}  partitions 3  replication min(3, brokers)`);
    const create = await cli(['topics', 'create', TOPICS.events, ...b]);
    expect(create.code).toBe(1);
    expect(create.err).toMatch(
      /^whale topics: kafka: the cluster on .+ reports no controller .+ \[ERR_UNSUPPORTED\]\n$/,
    );
    const exists = await cli(['topics', 'create', TOPICS.userRequests, ...b]);
    expect(exists).toMatchObject({ code: 0, out: `exists  ${TOPICS.userRequests}\n` });

    expect((await cli(['topics', 'describe', 'no.such.topic', ...b])).code).toBe(2);
    expect((await cli(['topics', 'frobnicate', ...b])).code).toBe(2);
    expect((await cli(['topics', 'list', '--dry-run', ...b])).code).toBe(2);
    expect((await cli(['topics', 'list', '--nope'])).code).toBe(2);
    expect((await cli(['help', 'topics'])).out).toMatch(/^Usage: whale topics list/);
  }, 60_000);

  it('whale topics without any broker is a configuration error (exit 2)', async () => {
    const saved = process.env.KAFKA_BROKERS;
    delete process.env.KAFKA_BROKERS;
    try {
      const r = await cli(['topics', 'list']);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(
        /no Kafka brokers: set KAFKA_BROKERS, kafka\.brokers in the configuration, or --brokers \[ERR_CONFIG\]/,
      );
    } finally {
      if (saved !== undefined) process.env.KAFKA_BROKERS = saved;
    }
  });

  it('consumer lag: rises while a handler holds a batch, back to 0 once handled, exposed as whale_kafka_consumer_lag', async () => {
    const producer = new KafkaBus({ brokers: mock.brokers, idempotent: false, logger: silentLogger });
    const consumer = new KafkaBus({
      brokers: mock.brokers,
      idempotent: false,
      sessionTimeoutMs: 6000,
      logger: silentLogger,
    });
    const metrics = new WhaleMetrics({ processMetrics: false });
    registerConsumerLagCollector(metrics, () => consumer);
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    let handled = 0;
    try {
      await consumer.subscribe(
        LAG_TOPIC,
        async () => {
          await gate;
          handled++;
        },
        { group: 'lag' },
      );
      for (let i = 0; i < 5; i++)
        await producer.publish(
          LAG_TOPIC,
          createEnvelope({ type: 'Event', source: 'test', payload: { type: 't', data: { i } } }),
        );
      const lagOf = () => consumer.consumerLag().find((l) => l.group === `lag.${LAG_TOPIC}` && l.partition === 0)?.lag;
      expect(await until(() => (lagOf() ?? 0) > 0)).toBe(true);
      expect(lagOf()).toBeLessThanOrEqual(5);
      expect(await metrics.registry.getSingleMetricAsString('whale_kafka_consumer_lag')).toMatch(
        new RegExp(
          `whale_kafka_consumer_lag\\{group="lag\\.${LAG_TOPIC.replace('.', '\\.')}",topic="${LAG_TOPIC.replace('.', '\\.')}",partition="0"\\} [1-5]\\n?$`,
          'm',
        ),
      );
      // The group as the cluster sees it (committed offsets): nothing committed yet while the handler holds.
      const group = `lag.${LAG_TOPIC}`;
      expect(await admin.groupLag(group, [LAG_TOPIC])).toEqual([{ group, topic: LAG_TOPIC, partition: 0, high: '5' }]);
      release();
      expect(await until(() => handled === 5 && lagOf() === 0)).toBe(true);
      expect(await metrics.registry.getSingleMetricAsString('whale_kafka_consumer_lag')).toMatch(/partition="0"\} 0/);
      expect(await admin.groupLag(group, [LAG_TOPIC])).toEqual([
        { group, topic: LAG_TOPIC, partition: 0, high: '5', committed: '5', lag: 0 },
      ]);
      for (let i = 0; i < 2; i++)
        await producer.publish(
          LAG_TOPIC,
          createEnvelope({ type: 'Event', source: 'test', payload: { type: 't', data: { i } } }),
        );
      await consumer.close();
      const d = await cli(['topics', 'describe', LAG_TOPIC, '--group', group, '--brokers', mock.brokers.join(',')]);
      expect(d.out).toMatch(
        new RegExp(
          `^${LAG_TOPIC.replace('.', '\\.')} {2}partitions 1 .* {2}group ${group.replace(/\./g, '\\.')} lag [0-2]\n {2}0: .* {2}offsets 0\\.\\.7 {2}committed [5-7] {2}lag [0-2]\n$`,
        ),
      );
      expect((await cli(['topics', 'list', '--group', group, '--brokers', mock.brokers.join(',')])).code).toBe(2);
    } catch (err) {
      if (isWhaleError(err)) throw new Error(`${err.code}: ${err.message}`);
      throw err;
    } finally {
      release();
      await consumer.close();
      await producer.close();
    }
  }, 60_000);
});
