/**
 * smart-whale-core/knowledge: knowledge sharing among models: the knowledge manager, its log, stores and vector index.
 * Explicit named exports (no `export *`); src/index.ts re-exports them all.
 */
export {
  type CanRead,
  type DamagedRecord,
  type ForgetWhat,
  type KnowledgeFilter,
  type KnowledgeHit,
  type KnowledgeInput,
  knowledgeInputFrom,
  type KnowledgeItem,
  KnowledgeManager,
  type KnowledgeManagerOptions,
  type KnowledgePrivacy,
  type KnowledgeSearch,
  type KnowledgeSink,
  knowledgeSink,
  NO_LABEL,
  type ReceivedKnowledge,
  type RecoveryReport,
  VectorIndex,
  type VectorIndexOptions,
  type VectorMetric,
  type VectorSearchOptions,
  type VectorSearchResult,
  type VectorStorage,
  visibleTo,
  inputEmbedding,
  answerSummary,
} from '../core/federation/knowledge-sharing/index.js';
