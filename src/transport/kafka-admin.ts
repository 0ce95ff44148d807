/**
 * Topics on a Kafka cluster through kafkajs's admin client: list, describe,
 * create, and provision (create the missing ones of a plan at start, report
 * those whose partition count differs from it). Smart Whale's topics are the
 * AsyncAPI channels (src/transport/topics.ts) and their `.dlq` twins;
 * partitions, replication factor and retention come per topic from the
 * `kafka.topics` configuration (src/config/kafka.ts).
 *
 * Existing topics are never changed: adding partitions would move keys to
 * other partitions and break per-key ordering, so a mismatch is reported
 * (`whale topics describe` shows it), not "fixed".
 *
 * librdkafka's mock cluster (the tests' Kafka peer) answers Metadata and
 * offsets but offers no CreateTopics/DescribeConfigs API and reports no
 * controller; against such a cluster create() fails with ERR_UNSUPPORTED and
 * provision() leaves missing topics to broker auto-creation with a warning.
 */
import { Kafka, logLevel, type Admin, type ITopicConfig } from 'kafkajs';

import { WhaleError } from '../common/errors.js';
import { dlqTopic } from './bus.js';
import { kafkaSecurity, type KafkaSecurityOptions } from './kafka-options.js';
import { allTopics } from './topics.js';

export interface TopicSpec {
  partitions: number;
  /** Copies of each partition; default (when absent): min(3, brokers in the cluster). */
  replicationFactor?: number;
  /** `retention.ms` of a topic created here; absent: the broker's default. */
  retentionMs?: number;
}

/** The `kafka.topics` settings: which topics to provision, with which spec. */
export interface TopicProvisioning {
  /** Create missing topics when the node starts (default true). */
  provision: boolean;
  /** Spec of every topic without an entry in `overrides`. */
  defaults: TopicSpec;
  /** Per topic name (a `.dlq` topic without its own entry uses its source topic's). */
  overrides: Record<string, Partial<TopicSpec>>;
  /** Topics to provision besides Smart Whale's own. */
  extra: string[];
}

export const DEFAULT_TOPIC_SPEC: Readonly<TopicSpec> = Object.freeze({ partitions: 3 });

export function defaultProvisioning(): TopicProvisioning {
  return { provision: true, defaults: { ...DEFAULT_TOPIC_SPEC }, overrides: {}, extra: [] };
}

export interface TopicPlan {
  topic: string;
  spec: TopicSpec;
}

/** Every topic Smart Whale uses (and its `.dlq`), plus `extra`, each with its spec. */
export function topicPlan(p: TopicProvisioning = defaultProvisioning()): TopicPlan[] {
  return planFor([...new Set([...allTopics().flatMap((t) => [t, dlqTopic(t)]), ...p.extra])], p);
}

/** Each of `names` with its spec: its `overrides` entry (a `.dlq` topic falls back to its source's), else `defaults`. */
export function planFor(names: string[], p: TopicProvisioning = defaultProvisioning()): TopicPlan[] {
  return names.map((topic) => {
    const source = topic.endsWith('.dlq') ? topic.slice(0, -'.dlq'.length) : undefined;
    const o = p.overrides[topic] ?? (source === undefined ? undefined : p.overrides[source]) ?? {};
    return { topic, spec: { ...p.defaults, ...o } };
  });
}

export interface PartitionInfo {
  partition: number;
  leader: number;
  replicas: number[];
  isr: number[];
  /** Offsets: the oldest retained and the next to be written (high watermark). */
  low: string;
  high: string;
}

export interface TopicInfo {
  name: string;
  partitions: PartitionInfo[];
  /** `retention.ms` as the cluster reports it; undefined when it cannot tell (no DescribeConfigs). */
  retentionMs?: number;
}

/** A consumer group's position on one partition (KafkaTopicAdmin.groupLag). */
export interface GroupLag {
  group: string;
  topic: string;
  partition: number;
  /** The next offset to be written. */
  high: string;
  /** The group's committed offset (the next message it will handle); absent when it never committed here. */
  committed?: string;
  /** high - committed; absent with committed. */
  lag?: number;
}

export interface ProvisionReport {
  created: string[];
  existing: string[];
  /** Existing topics whose partition count is not the plan's. */
  mismatched: Array<{ topic: string; partitions: number; wanted: number }>;
  /** Missing topics left to auto-creation because the cluster cannot create topics (why in `unsupported`). */
  skipped: string[];
  unsupported?: string;
}

export interface KafkaAdminOptions extends KafkaSecurityOptions {
  brokers: string[];
  clientId?: string;
  /** Attempts per admin request (default 5). */
  retries?: number;
  /** Reaching the cluster (the admin's connection) fails after this long with ERR_UNAVAILABLE (default 10 s, as KafkaBus). */
  connectTimeoutMs?: number;
}

export class KafkaTopicAdmin {
  private readonly admin: Admin;
  private readonly brokers: string[];
  private connected: Promise<void> | undefined;
  private readonly connectTimeoutMs: number;

  constructor(o: KafkaAdminOptions) {
    if (!Array.isArray(o.brokers) || o.brokers.length === 0) {
      throw new WhaleError(
        'ERR_INVALID_OPTION',
        'options.brokers: at least one broker address is required (KAFKA_BROKERS or kafka.brokers)',
        { field: 'options.brokers' },
      );
    }
    this.brokers = [...o.brokers];
    this.connectTimeoutMs = o.connectTimeoutMs ?? 10_000;
    // kafkajs's own log stays off: every failure reaches the caller as one WhaleError carrying its message.
    const kafka = new Kafka({
      clientId: o.clientId ?? 'smart-whale',
      brokers: o.brokers,
      ...kafkaSecurity(o),
      retry: { retries: o.retries ?? 5, initialRetryTime: 100, maxRetryTime: 2000 },
      logLevel: logLevel.NOTHING,
    });
    this.admin = kafka.admin();
  }

  /** Topic names on the cluster (internal `__…` topics left out), sorted. */
  async list(): Promise<string[]> {
    const names = await this.call('list topics', () => this.admin.listTopics());
    return names.filter((n) => !n.startsWith('__')).sort();
  }

  /** Partitions (leader, replicas, in-sync replicas, offsets) and retention of each topic; ERR_NOT_FOUND for one that does not exist. */
  async describe(topics: string[]): Promise<TopicInfo[]> {
    const existing = new Set(await this.list());
    const missing = topics.filter((t) => !existing.has(t));
    if (missing.length > 0)
      throw new WhaleError(
        'ERR_NOT_FOUND',
        `topics: no topic ${missing.join(', ')} on the Kafka cluster ${this.brokers.join(',')}`,
        { field: 'topics' },
      );
    if (topics.length === 0) return [];
    const meta = await this.call('describe topics', () => this.admin.fetchTopicMetadata({ topics }));
    const retention = await this.retention(topics);
    const out: TopicInfo[] = [];
    for (const t of meta.topics) {
      const offsets = await this.call(`read offsets of ${t.name}`, () => this.admin.fetchTopicOffsets(t.name));
      const at = new Map(offsets.map((o) => [o.partition, o]));
      out.push({
        name: t.name,
        partitions: t.partitions
          .map((p) => ({
            partition: p.partitionId,
            leader: p.leader,
            replicas: p.replicas,
            isr: p.isr,
            low: at.get(p.partitionId)?.low ?? '0',
            high: at.get(p.partitionId)?.high ?? '0',
          }))
          .sort((a, b) => a.partition - b.partition),
        ...(retention.has(t.name) ? { retentionMs: retention.get(t.name)! } : {}),
      });
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  /**
   * Creates the topics of `plans` that do not exist (partitions, replication
   * factor, retention.ms); returns the names created. ERR_UNSUPPORTED when the
   * cluster cannot create topics through the admin API.
   */
  async create(plans: TopicPlan[]): Promise<string[]> {
    const existing = new Set(await this.list());
    const todo = plans.filter((p) => !existing.has(p.topic));
    if (todo.length === 0) return [];
    const cluster = await this.call('describe the cluster', () => this.admin.describeCluster());
    const controllerKnown = cluster.controller !== null && cluster.brokers.some((b) => b.nodeId === cluster.controller);
    if (!controllerKnown) {
      throw new WhaleError(
        'ERR_UNSUPPORTED',
        `kafka: the cluster on ${this.brokers.join(',')} reports no controller (controller id ${String(cluster.controller)}), so topics cannot be created through the admin API (librdkafka's mock cluster is such a peer): create them with the cluster's own tools or rely on auto-creation`,
      );
    }
    const rf = Math.min(3, cluster.brokers.length);
    const topics: ITopicConfig[] = todo.map(({ topic, spec }) => ({
      topic,
      numPartitions: spec.partitions,
      replicationFactor: spec.replicationFactor ?? rf,
      ...(spec.retentionMs === undefined
        ? {}
        : { configEntries: [{ name: 'retention.ms', value: String(spec.retentionMs) }] }),
    }));
    await this.call('create topics', () => this.admin.createTopics({ topics, waitForLeaders: true }));
    return todo.map((p) => p.topic);
  }

  /** Creates what is missing of `plans` and reports what differs; see ProvisionReport. */
  async provision(plans: TopicPlan[]): Promise<ProvisionReport> {
    const existingNames = new Set(await this.list());
    const existing = plans.filter((p) => existingNames.has(p.topic));
    const report: ProvisionReport = {
      created: [],
      existing: existing.map((p) => p.topic),
      mismatched: [],
      skipped: [],
    };
    if (existing.length > 0) {
      const meta = await this.call('describe topics', () =>
        this.admin.fetchTopicMetadata({ topics: existing.map((p) => p.topic) }),
      );
      const want = new Map(existing.map((p) => [p.topic, p.spec.partitions]));
      for (const t of meta.topics) {
        const wanted = want.get(t.name);
        if (wanted !== undefined && t.partitions.length !== wanted)
          report.mismatched.push({ topic: t.name, partitions: t.partitions.length, wanted });
      }
    }
    try {
      report.created = await this.create(plans.filter((p) => !existingNames.has(p.topic)));
    } catch (err) {
      if (!(err instanceof WhaleError && err.code === 'ERR_UNSUPPORTED')) throw err;
      report.skipped = plans.filter((p) => !existingNames.has(p.topic)).map((p) => p.topic);
      report.unsupported = err.message;
    }
    return report;
  }

  async close(): Promise<void> {
    // A cluster that never answered must not hold the caller: the disconnect is waited for 1 s at most.
    if (this.connected)
      await Promise.race([
        this.admin.disconnect().catch(() => undefined),
        new Promise((r) => setTimeout(r, 1000).unref()),
      ]);
    this.connected = undefined;
  }

  /**
   * Lag of the consumer group `groupId` (the Kafka group id; KafkaBus names its groups
   * `<group>.<topic>`) on every partition of `topics`: the high watermark minus the group's
   * committed offset, as `kafka-consumer-groups --describe` shows it. A partition the group never
   * committed has no committed offset and no lag (undefined).
   */
  async groupLag(groupId: string, topics: string[]): Promise<GroupLag[]> {
    if (topics.length === 0) return [];
    const committed = await this.call(`read the committed offsets of group ${groupId}`, () =>
      this.admin.fetchOffsets({ groupId, topics }),
    );
    const out: GroupLag[] = [];
    for (const t of committed) {
      const offsets = await this.call(`read offsets of ${t.topic}`, () => this.admin.fetchTopicOffsets(t.topic));
      const high = new Map(offsets.map((o) => [o.partition, o.high]));
      for (const p of t.partitions) {
        const h = high.get(p.partition);
        if (h === undefined) continue;
        const c = BigInt(p.offset);
        out.push({
          group: groupId,
          topic: t.topic,
          partition: p.partition,
          high: h,
          ...(c < 0n ? {} : { committed: p.offset, lag: Number(BigInt(h) > c ? BigInt(h) - c : 0n) }),
        });
      }
    }
    return out.sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1));
  }

  /** retention.ms per topic, or an empty map when the cluster cannot describe configs. */
  private async retention(topics: string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    try {
      await this.connect();
      const r = await this.admin.describeConfigs({
        resources: topics.map((name) => ({
          type: 2 /* ConfigResourceTypes.TOPIC */,
          name,
          configNames: ['retention.ms'],
        })),
        includeSynonyms: false,
      });
      for (const res of r.resources) {
        const v = res.configEntries.find((e) => e.configName === 'retention.ms')?.configValue;
        if (v !== undefined && v !== null && Number.isFinite(Number(v))) out.set(res.resourceName, Number(v));
      }
    } catch {
      // No DescribeConfigs (or no controller to send it to): retention stays unknown.
    }
    return out;
  }

  private connect(): Promise<void> {
    this.connected ??= bounded(
      this.admin.connect(),
      this.connectTimeoutMs,
      () =>
        new WhaleError(
          'ERR_UNAVAILABLE',
          `kafka: cannot reach ${this.brokers.join(',')} within ${this.connectTimeoutMs} ms`,
          { retriable: true },
        ),
    );
    const c = this.connected;
    c.catch(() => {
      if (this.connected === c) this.connected = undefined;
    });
    return c;
  }

  /** Runs an admin request; kafkajs errors become ERR_UNAVAILABLE / ERR_UNSUPPORTED naming what was attempted and the brokers. */
  private async call<T>(what: string, f: () => Promise<T>): Promise<T> {
    try {
      await this.connect();
      return await f();
    } catch (err) {
      if (err instanceof WhaleError) throw err;
      const e = err as Error & { type?: string; errors?: Array<{ type?: string }> };
      const types = [e.type, ...(Array.isArray(e.errors) ? e.errors.map((x) => x.type) : [])].filter(
        (t): t is string => typeof t === 'string',
      );
      // Credentials refused, a principal without the ACL, an API the cluster lacks: retrying will not help.
      const code =
        e.name === 'KafkaJSSASLAuthenticationError'
          ? 'ERR_UNAUTHENTICATED'
          : types.some((t) => t.endsWith('AUTHORIZATION_FAILED'))
            ? 'ERR_FORBIDDEN'
            : e.name === 'KafkaJSServerDoesNotSupportApiKey' || types.includes('UNSUPPORTED_VERSION')
              ? 'ERR_UNSUPPORTED'
              : 'ERR_UNAVAILABLE';
      const detail =
        e.name === 'KafkaJSAggregateError' || e.name === 'KafkaJSCreateTopicError' ? aggregateMessage(err) : e.message;
      throw new WhaleError(code, `kafka: cannot ${what} on ${this.brokers.join(',')}: ${detail}`, {
        retriable: code === 'ERR_UNAVAILABLE',
        cause: err,
      });
    }
  }
}

function aggregateMessage(err: unknown): string {
  const e = err as { message: string; errors?: Array<{ topic?: string; message?: string; type?: string }> };
  if (!Array.isArray(e.errors) || e.errors.length === 0) return e.message;
  return e.errors.map((x) => `${x.topic ? `${x.topic}: ` : ''}${x.type ?? x.message ?? 'error'}`).join('; ');
}

/** `p`, or `timeout()`'s error after ms (p's own later failure is ignored). */
function bounded<T>(p: Promise<T>, ms: number, timeout: () => Error): Promise<T> {
  p.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(timeout()), ms))),
  ]).finally(() => clearTimeout(timer));
}
