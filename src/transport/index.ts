export * from './bus.js';
export * from './envelope.js';
export { LocalBus, partitionOf, type LocalBusOptions, type LocalBusStats } from './local-bus.js';
export { KafkaBus, type KafkaBusOptions } from './kafka-bus.js';
export { TOPICS, allTopics, payloadProblem, type ChannelId } from './topics.js';
