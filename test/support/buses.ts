/** Bus factories for the contract suites: the same tests on LocalBus and on KafkaBus over the mock cluster. */
import { Kafka, logLevel, type Consumer } from 'kafkajs';

import { createLogger, silentLogger, type Logger } from '../../src/common/logger.js';
import type { Bus } from '../../src/transport/bus.js';
import { KafkaBus } from '../../src/transport/kafka-bus.js';
import { LocalBus } from '../../src/transport/local-bus.js';
import { KafkaMock } from './kafka-mock.js';

export interface RawRecord {
  value: Buffer;
  key: string | undefined;
  headers: Record<string, string>;
}

export interface RawCollector {
  /** Resolves with the records once there are `count` (or what there is after timeoutMs). */
  take(count: number, timeoutMs?: number): Promise<RawRecord[]>;
}

async function waitFor(records: RawRecord[], count: number, timeoutMs: number): Promise<RawRecord[]> {
  const end = Date.now() + timeoutMs;
  while (records.length < count && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  return records;
}

export interface BusHarness {
  name: 'local' | 'kafka';
  /** A fresh bus on the shared backend (a new process, as far as the bus is concerned). */
  bus(): Bus;
  /** Creates topics (partitions) before use; the mock cluster needs it, LocalBus ignores it. */
  createTopics(topics: string[], partitions?: number): Promise<void>;
  /** Starts collecting a topic's records undecoded (to inspect dead letters); call before they are produced. */
  collect(topic: string): Promise<RawCollector>;
  mock?: KafkaMock;
  stop(): Promise<void>;
}

export async function localHarness(): Promise<BusHarness> {
  // One shared LocalBus plays the broker: "fresh" buses are the same instance, as in one process.
  const shared = new LocalBus();
  return {
    name: 'local',
    bus: () => shared,
    createTopics: async () => undefined,
    collect: async (topic) => ({
      take: async (count, timeoutMs = 5000) => {
        const end = Date.now() + timeoutMs;
        while (shared.retained(topic).length < count && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
        return shared.retained(topic).map((r) => ({ value: r.data, key: r.key, headers: r.headers }));
      },
    }),
    stop: () => shared.close(),
  };
}

/** kafkajs warnings stay quiet unless WHALE_TEST_KAFKA_LOG=1 (to see why a join or fetch stalls). */
function testKafkaLogger(): Logger {
  return process.env.WHALE_TEST_KAFKA_LOG === '1' ? createLogger('kafka-bus') : silentLogger;
}

export async function kafkaHarness(topics: Array<[string, number]> = []): Promise<BusHarness> {
  const mock = await KafkaMock.start([['whale.replies', 1], ...topics.filter(([t]) => t !== 'whale.replies')]);
  const buses: KafkaBus[] = [];
  const inspectors: Consumer[] = [];
  const admin = new Kafka({ brokers: mock.brokers, logLevel: logLevel.NOTHING, clientId: 'test-inspector' });
  return {
    name: 'kafka',
    mock,
    bus: () => {
      // sessionTimeoutMs 6000 (Kafka's smallest by default): the mock completes a rebalance that a
      // new member starts only after sessionTimeout - 1 s, so 10 s would make each second member wait 9 s.
      const b = new KafkaBus({
        brokers: mock.brokers,
        idempotent: false,
        sessionTimeoutMs: 6000,
        logger: testKafkaLogger(),
      });
      buses.push(b);
      return b;
    },
    createTopics: async (names, partitions = 3) => {
      for (const t of names) await mock.command(`topic ${t} ${partitions}`);
    },
    collect: async (topic) => {
      const consumer = admin.consumer({ groupId: `inspect-${topic}-${Math.random()}`, maxWaitTimeInMs: 50 });
      inspectors.push(consumer);
      const out: RawRecord[] = [];
      const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ message }) => {
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(message.headers ?? {})) if (v !== undefined) headers[k] = v.toString();
          out.push({ value: message.value ?? Buffer.alloc(0), key: message.key?.toString(), headers });
        },
      });
      await joined;
      return { take: (count, timeoutMs = 15_000) => waitFor(out, count, timeoutMs) };
    },
    stop: async () => {
      await Promise.allSettled(inspectors.map((c) => c.disconnect()));
      await Promise.allSettled(buses.map((b) => b.close()));
      await mock.stop();
    },
  };
}
