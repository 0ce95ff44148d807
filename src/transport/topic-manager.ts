/**
 * TopicManager: creates the topics a node needs on Kafka through the admin
 * API (KafkaTopicAdmin), with the partitions, replication factor and
 * retention of the `kafka.topics` configuration: the services' topics at
 * start, and each hosted model's own topic (modelTopic) when the model is
 * hosted. On the in-process bus (no Kafka) every call is a no-op: topics are
 * just names there.
 *
 * Existing topics are left as they are (a partition count that differs from
 * the configuration is logged). A cluster that cannot create topics through
 * the admin API (librdkafka's mock) leaves them to auto-creation, with a
 * warning. A topic is asked for once per manager: hosting a model again costs
 * no admin round trip.
 */
import { silentLogger, type Logger } from '../common/logger.js';
import { dlqTopic } from './bus.js';
import {
  KafkaTopicAdmin,
  defaultProvisioning,
  planFor,
  topicPlan,
  type KafkaAdminOptions,
  type ProvisionReport,
  type TopicPlan,
  type TopicProvisioning,
} from './kafka-admin.js';
import { modelTopic } from './topics.js';

/** What the manager needs of an admin client (KafkaTopicAdmin; tests may pass their own). */
export interface TopicAdmin {
  provision(plans: TopicPlan[]): Promise<ProvisionReport>;
  close(): Promise<void>;
}

export interface TopicManagerOptions {
  /** The cluster (brokers, TLS, SASL) and `kafka.topics`; absent or no brokers: the local bus, nothing to create. */
  kafka?: KafkaAdminOptions & { topics?: TopicProvisioning };
  /** Makes the admin client (default: a KafkaTopicAdmin on `kafka`). */
  admin?: () => TopicAdmin;
  logger?: Logger;
}

export class TopicManager {
  /** Whether topics are created (a Kafka cluster with provisioning on). */
  readonly enabled: boolean;
  private readonly provisioning: TopicProvisioning;
  private readonly logger: Logger;
  private readonly asked = new Set<string>();
  private admin: TopicAdmin | undefined;

  constructor(private readonly o: TopicManagerOptions = {}) {
    this.provisioning = o.kafka?.topics ?? defaultProvisioning();
    this.enabled = (o.kafka?.brokers?.length ?? 0) > 0 && this.provisioning.provision !== false;
    this.logger = o.logger ?? silentLogger;
  }

  /** The topics a hosted model owns (today its collaboration topic). */
  modelTopics(model: string): string[] {
    return [modelTopic(model)];
  }

  /** The plan (topic and spec, `.dlq` twins included) of the models' own topics. */
  modelPlan(models: readonly string[]): TopicPlan[] {
    return planFor(
      models.flatMap((m) => this.modelTopics(m)).flatMap((t) => [t, dlqTopic(t)]),
      this.provisioning,
    );
  }

  /** Creates the services' topics (the AsyncAPI channels, their `.dlq` twins, `kafka.topics.extra`). */
  ensureServiceTopics(): Promise<ProvisionReport | undefined> {
    return this.ensure(topicPlan(this.provisioning));
  }

  /** Creates each model's own topics (partitions from `kafka.topics`: defaults, or an override by topic name). */
  ensureModelTopics(models: readonly string[]): Promise<ProvisionReport | undefined> {
    return this.ensure(this.modelPlan(models));
  }

  /** Creates these topics (and their `.dlq` twins) with the configured specs. */
  ensureTopics(topics: readonly string[]): Promise<ProvisionReport | undefined> {
    return this.ensure(
      planFor(
        [...topics].flatMap((t) => [t, dlqTopic(t)]),
        this.provisioning,
      ),
    );
  }

  async close(): Promise<void> {
    const a = this.admin;
    this.admin = undefined;
    await a?.close();
  }

  private async ensure(plans: TopicPlan[]): Promise<ProvisionReport | undefined> {
    if (!this.enabled) return undefined;
    const todo = plans.filter((p) => !this.asked.has(p.topic));
    if (todo.length === 0) return undefined;
    this.admin ??= this.o.admin?.() ?? new KafkaTopicAdmin(this.o.kafka!);
    const r = await this.admin.provision(todo);
    for (const p of todo) this.asked.add(p.topic);
    if (r.created.length > 0) this.logger.info('kafka topics created', { topics: r.created.join(',') });
    for (const m of r.mismatched) {
      this.logger.warn(
        `kafka topic ${m.topic} has ${m.partitions} partitions, the configuration asks for ${m.wanted}: left as is (adding partitions would move keys)`,
      );
    }
    if (r.unsupported)
      this.logger.warn(
        `kafka topics not provisioned (${r.skipped.length} missing, left to auto-creation): ${r.unsupported}`,
      );
    return r;
  }
}
