/**
 * MessagingService: the facade that starts and stops the three services in
 * order on one bus and one state store, and publishes metrics and events.
 * Configuration: KAFKA_BROKERS (else the in-process LocalBus), REDIS_URL
 * (else in-memory state), WHALE_NODE_ID, WHALE_FEDERATION_SECRET or
 * WHALE_FEDERATION_KEY_FILE. A bus or store it created itself is closed by
 * shutdown() and created anew by the next initialize(); one passed in is the
 * caller's to close.
 */
import { hostname } from 'node:os';

import { readEnv, type EnvSource, type WhaleEnv } from '../common/env.js';
import { createLogger, type Logger } from '../common/logger.js';
import type { Bus } from '../transport/bus.js';
import { createEnvelope } from '../transport/envelope.js';
import type { TopicProvisioning } from '../transport/kafka-admin.js';
import { KafkaBus, type KafkaBusOptions } from '../transport/kafka-bus.js';
import { kafkaOptionsFromEnv } from '../transport/kafka-options.js';
import { LocalBus } from '../transport/local-bus.js';
import { TopicManager } from '../transport/topic-manager.js';
import { TOPICS } from '../transport/topics.js';
import { DataRequestService, type DataRequestOptions } from './data-request-service.js';
import { FederationService, type ModelHandler, type Privacy } from './federation-service.js';
import { MemoryStateStore, RedisStateStore, type StateStore } from './state-store.js';
import { UserService, type SessionInfo } from './user-service.js';
import { Lifecycle } from './lifecycle.js';
import { requireFinite, requireId, requireJson, requireStringRecord } from '../common/validate.js';

export interface MessagingServiceOptions {
  bus?: Bus;
  store?: StateStore;
  nodeId?: string;
  logger?: Logger;
  env?: NodeJS.ProcessEnv;
  /**
   * Kafka connection, security, producer and topic provisioning (whale.config.json's `kafka`,
   * src/config/kafka.ts). Default: the KAFKA_* variables, topics provisioned with the defaults.
   * No brokers: the in-process LocalBus.
   */
  kafka?: MessagingKafkaOptions;
}

export interface MessagingKafkaOptions extends Omit<KafkaBusOptions, 'logger'> {
  /** Topics created at initialize() when missing (default: Smart Whale's topics, 3 partitions each). */
  topics?: TopicProvisioning;
}

export class MessagingService {
  readonly nodeId: string;
  readonly federation: FederationService;
  readonly user: UserService;
  readonly data: DataRequestService;
  /** Creates the services' topics at start and each hosted model's own topic (Kafka; a no-op in-process). */
  readonly topics: TopicManager;
  private readonly logger: Logger;
  private readonly env: WhaleEnv;
  private readonly envSource: EnvSource | undefined;
  private readonly kafka: MessagingKafkaOptions;
  private readonly ownsBus: boolean;
  private readonly ownsStore: boolean;
  private readonly lifecycle = new Lifecycle('messaging service');
  private currentBus: Bus;
  private currentStore: StateStore;
  private started = false;
  /** Shut down: owned bus and store are closed and must be recreated before the next start. */
  private closed = false;

  constructor(o: MessagingServiceOptions = {}) {
    this.envSource = o.env;
    this.env = readEnv(o.env);
    this.logger = o.logger ?? createLogger('messaging');
    this.nodeId = o.nodeId ?? this.env.nodeId ?? hostname();
    requireId(this.nodeId, 'nodeId');
    this.kafka = o.kafka ?? kafkaOptionsFromEnv(this.env);
    this.ownsBus = o.bus === undefined;
    this.ownsStore = o.store === undefined;
    this.currentBus = o.bus ?? this.createBus();
    this.currentStore = o.store ?? this.createStore();
    // Topics are created only on a Kafka bus this service made (one passed in is the caller's to provision).
    const { topics: _t, ...cluster } = this.kafka;
    this.topics = new TopicManager({
      ...(this.ownsBus && this.currentBus.kind === 'kafka' ? { kafka: { ...cluster, topics: this.kafka.topics } } : {}),
      logger: this.logger,
    });
    this.federation = new FederationService(this.bus, this.store, {
      nodeId: this.nodeId,
      topics: this.topics,
      ...(this.envSource ? { env: this.envSource } : {}),
      logger: this.logger,
    });
    this.user = new UserService(this.bus, this.store, { nodeId: this.nodeId });
    this.data = new DataRequestService(this.bus, this.store, { nodeId: this.nodeId });
  }

  get bus(): Bus {
    return this.currentBus;
  }

  get store(): StateStore {
    return this.currentStore;
  }

  async initialize(): Promise<void> {
    if (this.started) return;
    if (this.closed) this.reopen();
    await this.provisionTopics();
    await this.federation.initialize();
    await this.user.initialize();
    await this.data.initialize();
    this.started = true;
    this.lifecycle.started();
    this.logger.info('messaging started', { bus: this.bus.kind, nodeId: this.nodeId });
  }

  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.lifecycle.stopped();
    await this.data.shutdown();
    await this.user.shutdown();
    await this.federation.shutdown();
    await this.topics.close();
    this.closed = true;
    this.started = false;
    if (this.ownsBus) await this.bus.close();
    if (this.ownsStore) await this.store.close();
  }

  private reopen(): void {
    if (this.ownsBus) this.currentBus = this.createBus();
    if (this.ownsStore) this.currentStore = this.createStore();
    for (const s of [this.federation, this.user, this.data]) s.rebind(this.currentBus, this.currentStore);
    this.closed = false;
  }

  private createBus(): Bus {
    const { topics: _topics, ...kafka } = this.kafka;
    return kafka.brokers.length > 0 ? new KafkaBus({ ...kafka, logger: this.logger }) : new LocalBus();
  }

  /**
   * Creates the missing Kafka topics (the TopicManager, src/transport/topic-manager.ts) before the
   * services subscribe, on a Kafka bus this service created. Existing topics are left as they are
   * (a partition count that differs from the configuration is logged); a cluster that cannot create
   * topics through the admin API (librdkafka's mock) leaves them to auto-creation, with a warning.
   */
  private async provisionTopics(): Promise<void> {
    await this.topics.ensureServiceTopics();
  }

  private createStore(): StateStore {
    const url = this.env.redisUrl;
    return url ? new RedisStateStore(url) : new MemoryStateStore();
  }

  registerModel(modelId: string, handler: ModelHandler = {}): void {
    this.federation.registerModel(modelId, handler);
  }

  shareKnowledge(source: string, target: string, data: unknown, opts: { privacy?: Privacy } = {}): Promise<void> {
    return this.federation.shareKnowledge(source, target, data, opts);
  }

  requestCollaboration(
    source: string,
    problem: unknown,
    opts: { timeoutMs?: number; targets?: string[]; channel?: 'shared' | 'model' } = {},
  ): Promise<string> {
    return this.federation.requestCollaboration(source, problem, opts);
  }

  respondToCollaboration(requestId: string, responder: string, solution: unknown): Promise<void> {
    return this.federation.respondToCollaboration(requestId, responder, solution);
  }

  streamResponse(sessionId: string, chunk: unknown, opts: { final?: boolean } = {}): Promise<number> {
    return this.user.streamResponse(sessionId, chunk, opts);
  }

  sendThinkingProcess(sessionId: string, thought: unknown): Promise<number> {
    return this.user.sendThinkingProcess(sessionId, thought);
  }

  /** Opens a user's session (UserService); opts.model ties it to the model that serves it. */
  registerUserSession(
    userId: string,
    metadata: Record<string, unknown> = {},
    opts: { model?: string } = {},
  ): Promise<SessionInfo> {
    return this.user.registerUserSession(userId, metadata, opts);
  }

  /** Ends a user's session (on any node: sessions live in the state store, Redis when REDIS_URL is set). */
  endUserSession(sessionId: string, reason?: string): Promise<SessionInfo> {
    return this.user.endUserSession(sessionId, reason);
  }

  requestData(modelId: string, query: unknown, opts: DataRequestOptions = {}): Promise<string> {
    return this.data.requestData(modelId, query, opts);
  }

  /** Several data requests of one model under one batch id (every query checked before the first is sent). */
  requestBatchData(
    modelId: string,
    queries: ReadonlyArray<{ query: unknown; options?: DataRequestOptions }>,
  ): Promise<{ batchId: string; requestIds: string[] }> {
    return this.data.requestBatch(modelId, queries);
  }

  async publishMetric(name: string, value: number, labels: Record<string, string> = {}): Promise<void> {
    requireId(name, 'name');
    requireFinite(value, 'value');
    requireStringRecord(labels, 'labels');
    this.lifecycle.assertOpen();
    await this.bus.publish(
      TOPICS.metrics,
      createEnvelope({ type: 'Metric', source: this.nodeId, payload: { name, value, labels } }),
      { key: name },
    );
  }

  async publishEvent(type: string, data: unknown = {}): Promise<void> {
    requireId(type, 'type');
    requireJson(data, 'data');
    this.lifecycle.assertOpen();
    await this.bus.publish(
      TOPICS.events,
      createEnvelope({ type: 'Event', source: this.nodeId, payload: { type, data } }),
      { key: type },
    );
  }

  /** Starts everything and runs until SIGINT/SIGTERM, then shuts down in order. */
  async run(signal?: AbortSignal): Promise<void> {
    await this.initialize();
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      signal?.addEventListener('abort', stop, { once: true });
    });
    await this.shutdown();
  }
}

let shared: MessagingService | undefined;

/**
 * The process-wide MessagingService, configured from the environment and created on the first call
 * (importing the package creates nothing; nothing connects until initialize()).
 */
export function messagingService(): MessagingService {
  return (shared ??= new MessagingService());
}

/** messagingService().federation */
export function federationService(): FederationService {
  return messagingService().federation;
}

/** messagingService().user */
export function userService(): UserService {
  return messagingService().user;
}

/** messagingService().data */
export function dataRequestService(): DataRequestService {
  return messagingService().data;
}
