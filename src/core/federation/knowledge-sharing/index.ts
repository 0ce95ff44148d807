export { KnowledgeManager, type KnowledgeManagerOptions, type ForgetWhat } from './knowledge-manager.js';
export {
  VectorIndex,
  NO_LABEL,
  type VectorIndexOptions,
  type VectorSearchOptions,
  type VectorSearchResult,
  type VectorMetric,
  type VectorStorage,
} from './vector-index.js';
export { knowledgeSink, knowledgeInputFrom, type KnowledgeSink, type ReceivedKnowledge } from './federation-sink.js';
export { visibleTo, type CanRead } from './access.js';
export { inputEmbedding, answerSummary } from './answer-embedding.js';
export type {
  KnowledgeInput,
  KnowledgeItem,
  KnowledgeFilter,
  KnowledgeSearch,
  KnowledgeHit,
  KnowledgePrivacy,
  DamagedRecord,
  RecoveryReport,
} from './types.js';
