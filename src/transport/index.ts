export * from './bus.js';
export * from './envelope.js';
export { LocalBus, partitionOf, type LocalBusOptions, type LocalBusStats } from './local-bus.js';
export { KafkaBus, type KafkaBusOptions } from './kafka-bus.js';
export {
  DEFAULT_TOPIC_SPEC,
  defaultProvisioning,
  KafkaTopicAdmin,
  planFor,
  topicPlan,
  type GroupLag,
  type KafkaAdminOptions,
  type PartitionInfo,
  type ProvisionReport,
  type TopicInfo,
  type TopicPlan,
  type TopicProvisioning,
  type TopicSpec,
} from './kafka-admin.js';
export { type ConsumerLag } from './kafka-lag.js';
export {
  kafkaOptionsFromEnv,
  kafkaSecurity,
  resolveKafkaSecurity,
  SASL_MECHANISMS,
  saslOptions,
  type KafkaSaslOptions,
  type KafkaSecurityOptions,
  type KafkaTlsOptions,
  type SaslMechanism,
} from './kafka-options.js';
export { TOPICS, allTopics, KNOWLEDGE_SEARCH_TOPIC, modelTopic, payloadProblem, type ChannelId } from './topics.js';
export { TopicManager, type TopicAdmin, type TopicManagerOptions } from './topic-manager.js';
