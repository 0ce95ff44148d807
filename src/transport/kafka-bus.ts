/**
 * Bus on Kafka (kafkajs). Producer: acks=all, idempotent by default, retries
 * with backoff (a broker that is down is waited for, not skipped). Consumers:
 * one per subscription in its group, manual commits after the handler
 * succeeded or the message was dead-lettered.
 */
import {
  Kafka,
  logLevel,
  Partitioners,
  type Consumer,
  type ConsumerRunConfig,
  type IHeaders,
  type Producer,
} from 'kafkajs';

import { WhaleError } from '../common/errors.js';
import { createLogger, type Logger } from '../common/logger.js';
import { dlqTopic, DLQ_HEADERS, type Handler, type SubscribeOptions, type Subscription } from './bus.js';
import { assertHandler, deliver, DeliveryAborted, deliveryPolicy } from './delivery.js';
import { BaseBus } from './base-bus.js';
import { intOption } from '../common/validate.js';
import { asBuffer, assertRawPublish, assertTopic } from './outgoing.js';
import { kafkaSecurity, type KafkaSecurityOptions } from './kafka-options.js';
import { LagTracker, type ConsumerLag } from './kafka-lag.js';

/** `tls` and `sasl` (KafkaSecurityOptions, src/transport/kafka-options.ts) reach secured clusters. */
export interface KafkaBusOptions extends KafkaSecurityOptions {
  brokers: string[];
  clientId?: string;
  /**
   * Idempotent producer (default true). librdkafka's mock cluster used in
   * tests reports no controller, which kafkajs needs for InitProducerId, so
   * the tests turn it off (acks=all and one request in flight keep ordering).
   */
  idempotent?: boolean;
  /** How long subscribe() waits for the consumer to join its group (default 30 s). */
  joinTimeoutMs?: number;
  /**
   * Consumer session (and rebalance) timeout, ms (default 10 s; Kafka brokers
   * accept 6 s to 30 min by default). A member silent this long is dropped
   * from its group; librdkafka's mock cluster also waits about this long
   * before completing a rebalance that a new member started.
   */
  sessionTimeoutMs?: number;
  /**
   * Until the bus has reached a broker once, connecting (the producer, a consumer and its subscription)
   * fails after this long with one ERR_UNAVAILABLE naming the brokers and kafkajs's last error (default
   * 10 s; kafka.connectTimeoutMs), instead of a minute of retries. Once connected, outages are ridden out
   * with retries as before. kafkajs's own log lines are held back until then (the error sums them up),
   * and afterwards a line repeated within 30 s is logged once.
   */
  connectTimeoutMs?: number;
  logger?: Logger;
}

/** A kafkajs log line said again within this long is not logged again. */
const KAFKAJS_REPEAT_MS = 30_000;

export class KafkaBus extends BaseBus {
  readonly kind = 'kafka' as const;
  private readonly kafka: Kafka;
  private readonly idempotent: boolean;
  private readonly joinTimeoutMs: number;
  private readonly sessionTimeoutMs: number;
  private readonly logger: Logger;
  private producer: Promise<Producer> | undefined;
  private readonly consumers = new Set<Consumer>();
  private readonly lag = new LagTracker();
  private readonly brokers: string[];
  private readonly connectTimeoutMs: number;
  /** A broker answered once: from then on connection problems are retried, not fatal. */
  private reachedOnce = false;
  private lastConnectError: string | undefined;
  private readonly logged = new Map<string, number>();

  constructor(o: KafkaBusOptions) {
    super('kafka');
    if (!Array.isArray(o.brokers) || o.brokers.length === 0) {
      throw new WhaleError(
        'ERR_INVALID_OPTION',
        'options.brokers: at least one broker address is required (KAFKA_BROKERS)',
        { field: 'options.brokers' },
      );
    }
    this.brokers = [...o.brokers];
    this.logger = o.logger ?? createLogger('kafka-bus');
    this.idempotent = o.idempotent ?? true;
    this.joinTimeoutMs = intOption(o.joinTimeoutMs, 30_000, 'options.joinTimeoutMs', 100, 3_600_000);
    this.sessionTimeoutMs = intOption(o.sessionTimeoutMs, 10_000, 'options.sessionTimeoutMs', 1000, 1_800_000);
    this.connectTimeoutMs = intOption(o.connectTimeoutMs, 10_000, 'options.connectTimeoutMs', 100, 3_600_000);
    const log = this.logger;
    const security = kafkaSecurity(o);
    this.kafka = new Kafka({
      clientId: o.clientId ?? 'smart-whale',
      brokers: o.brokers,
      ...security,
      retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 2000 },
      logLevel: logLevel.WARN,
      logCreator: () => (entry) => {
        const error = (entry.log as { error?: unknown }).error;
        if (!this.reachedOnce) {
          // Connecting: the ERR_UNAVAILABLE after connectTimeoutMs says it once, with the last reason.
          if (entry.level <= logLevel.ERROR || error)
            this.lastConnectError = typeof error === 'string' && error ? error : entry.log.message;
          return;
        }
        const key = `${entry.namespace}|${entry.log.message}`;
        const now = Date.now();
        if (now - (this.logged.get(key) ?? -Infinity) < KAFKAJS_REPEAT_MS) return;
        if (this.logged.size >= 256) this.logged.clear();
        this.logged.set(key, now);
        const level = entry.level <= logLevel.ERROR ? 'error' : 'warn';
        log[level](`kafkajs: ${entry.log.message}`, {
          namespace: entry.namespace,
          ...(typeof error === 'string' ? { error } : {}),
        });
      },
    });
  }

  async publishRaw(
    topic: string,
    data: Buffer,
    opts: { key?: string; headers?: Record<string, string> } = {},
  ): Promise<void> {
    this.assertOpen();
    assertRawPublish(topic, data, opts);
    const producer = await this.getProducer();
    await producer.send({
      topic,
      acks: -1,
      messages: [
        {
          value: asBuffer(data),
          ...(opts.key === undefined ? {} : { key: opts.key }),
          ...(opts.headers ? { headers: opts.headers } : {}),
        },
      ],
    });
  }

  async subscribe(topic: string, handler: Handler, opts: SubscribeOptions): Promise<Subscription> {
    this.assertOpen();
    assertTopic(topic);
    assertHandler(handler);
    const policy = deliveryPolicy(opts);
    // Groups are scoped to their topic (as in LocalBus): one Kafka group per (group, topic),
    // so a service may use one group name for several topics without cross-assignment.
    const consumer = this.kafka.consumer({
      groupId: `${opts.group}.${topic}`,
      sessionTimeout: this.sessionTimeoutMs,
      rebalanceTimeout: this.sessionTimeoutMs,
      heartbeatInterval: Math.min(500, Math.floor(this.sessionTimeoutMs / 10)),
      maxWaitTimeInMs: 50,
      retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 2000 },
    });
    this.consumers.add(consumer);
    const stopLag = this.lag.watch(consumer, `${opts.group}.${topic}`);
    // Ready = joined and one fetch done: only then is a new group's start offset
    // ("latest") resolved, so a message published after subscribe() resolves is seen.
    let timer: NodeJS.Timeout | undefined;
    const ready = new Promise<void>((resolve, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new WhaleError(
              'ERR_TIMEOUT',
              `consumer group ${opts.group} did not join ${topic} within ${this.joinTimeoutMs} ms`,
              { retriable: true },
            ),
          ),
        this.joinTimeoutMs,
      );
      consumer.on(consumer.events.GROUP_JOIN, () => {
        const off = consumer.on(consumer.events.FETCH, () => {
          off();
          clearTimeout(timer);
          resolve();
        });
      });
    });
    // Settled below or abandoned when connecting fails: never an unhandled rejection.
    ready.catch(() => undefined);
    const abandon = async (err: unknown): Promise<never> => {
      clearTimeout(timer);
      this.consumers.delete(consumer);
      stopLag();
      // A broker that never answered must not hold the caller: the disconnect is waited for 1 s at most.
      await Promise.race([
        consumer.disconnect().catch(() => undefined),
        new Promise((r) => setTimeout(r, 1000).unref()),
      ]);
      if (err instanceof WhaleError) throw err;
      throw new WhaleError(
        'ERR_UNAVAILABLE',
        `kafka: cannot subscribe to ${topic} on ${this.brokers.join(',')}: ${(err as Error)?.message ?? String(err)}`,
        {
          retriable: true,
          cause: err,
        },
      );
    };
    try {
      await this.connecting(
        (async () => {
          await consumer.connect();
          await consumer.subscribe({ topic, fromBeginning: opts.fromBeginning ?? false });
        })(),
        () => consumer.disconnect(),
      );
    } catch (err) {
      return abandon(err);
    }
    const runConfig: ConsumerRunConfig = {
      autoCommit: false,
      partitionsConsumedConcurrently: 4,
      eachMessage: async ({ topic: t, partition, message }) => {
        const key = message.key?.toString('utf8');
        try {
          await deliver(
            message.value,
            { topic: t, partition, key },
            handler,
            policy,
            (reason, attempts) =>
              this.publishRaw(dlqTopic(t), message.value ?? Buffer.alloc(0), {
                ...(key === undefined ? {} : { key }),
                headers: {
                  ...stringHeaders(message.headers),
                  [DLQ_HEADERS.reason]: reason,
                  [DLQ_HEADERS.topic]: t,
                  [DLQ_HEADERS.attempts]: String(attempts),
                },
              }),
            () => this.closed,
          );
        } catch (err) {
          if (err instanceof DeliveryAborted) return;
          throw err; // kafkajs retries the batch: the message is not committed
        }
        await consumer.commitOffsets([{ topic: t, partition, offset: (BigInt(message.offset) + 1n).toString() }]);
      },
    };
    let closed = false;
    const stopRestarts = this.restartAfterCrash(consumer, runConfig, `${opts.group}.${topic}`, () => closed);
    await consumer.run(runConfig);
    await ready.catch((err) => {
      stopRestarts();
      return abandon(err);
    });
    return {
      close: async () => {
        closed = true;
        stopRestarts();
        this.consumers.delete(consumer);
        stopLag();
        await consumer.disconnect();
      },
    };
  }

  /**
   * kafkajs restarts a crashed consumer only when the error is retriable; on any other (a broker
   * answering a group request with INVALID_REQUEST, as librdkafka's mock does when a second member
   * joins mid-rebalance) it disconnects and the subscription silently stops consuming. Here such a
   * consumer is connected and run again, with backoff, until the bus or the subscription is closed:
   * uncommitted messages are fetched again, so nothing is lost.
   */
  private restartAfterCrash(
    consumer: Consumer,
    runConfig: ConsumerRunConfig,
    group: string,
    subscriptionClosed: () => boolean,
  ): () => void {
    let timer: NodeJS.Timeout | undefined;
    let attempt = 0;
    const stopped = () => this.closed || subscriptionClosed();
    const schedule = () => {
      const delay = Math.min(200 * 2 ** attempt, 5_000);
      attempt++;
      timer = setTimeout(() => void restart(), delay);
    };
    const restart = async () => {
      if (stopped()) return;
      try {
        await consumer.connect();
        await consumer.run(runConfig);
        attempt = 0;
      } catch (err) {
        this.logger.warn('kafka consumer restart failed; trying again', {
          group,
          error: (err as Error)?.message ?? String(err),
        });
        if (!stopped()) schedule();
      }
    };
    const off = consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (payload.restart || stopped()) return;
      this.logger.warn('kafka consumer stopped on a non-retriable error; restarting it', {
        group,
        error: payload.error?.message ?? String(payload.error),
      });
      schedule();
    });
    return () => {
      off();
      clearTimeout(timer);
    };
  }

  /** Consumer lag per (group, topic, partition) of this bus's subscriptions (src/transport/kafka-lag.ts). */
  consumerLag(): ConsumerLag[] {
    return this.lag.snapshot();
  }

  async close(): Promise<void> {
    if (!this.markClosed()) return;
    await Promise.allSettled([...this.consumers].map((c) => c.disconnect()));
    this.consumers.clear();
    if (this.producer) await (await this.producer).disconnect().catch(() => undefined);
  }

  /** `op` (a first connection), bounded by connectTimeoutMs until the bus has reached a broker once. */
  private async connecting<T>(op: Promise<T>, cancel: () => Promise<unknown>): Promise<T> {
    if (this.reachedOnce) return op;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const why = this.lastConnectError ? `: ${this.lastConnectError}` : '';
        reject(
          new WhaleError(
            'ERR_UNAVAILABLE',
            `kafka: cannot reach ${this.brokers.join(',')} within ${this.connectTimeoutMs} ms${why}`,
            { retriable: true },
          ),
        );
      }, this.connectTimeoutMs);
    });
    try {
      const v = await Promise.race([op, deadline]);
      this.reachedOnce = true;
      return v;
    } catch (err) {
      op.catch(() => undefined);
      await Promise.race([cancel().catch(() => undefined), new Promise((r) => setTimeout(r, 1000).unref())]);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  private getProducer(): Promise<Producer> {
    this.producer ??= (async () => {
      const p = this.kafka.producer({
        idempotent: this.idempotent,
        maxInFlightRequests: this.idempotent ? 5 : 1,
        allowAutoTopicCreation: true,
        createPartitioner: Partitioners.DefaultPartitioner,
        retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 2000 },
      });
      await this.connecting(p.connect(), () => p.disconnect());
      return p;
    })();
    this.producer.catch(() => (this.producer = undefined));
    return this.producer;
  }
}

function stringHeaders(h: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h ?? {}))
    if (v !== undefined) out[k] = Array.isArray(v) ? v.join(',') : v.toString();
  return out;
}
