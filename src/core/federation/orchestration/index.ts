export { ModelCoordinator, type FederationSummary } from './model-coordinator.js';
export type { ModelCoordinatorOptions, RoundDetail, FederationEvaluation } from './coordinator-options.js';
export type { RoundResult } from './round-result.js';
export { TaskManager, type TaskState, type RejectReason, type Rejection } from './task-manager.js';
export { ClaimCheck, DEFAULT_INLINE_BYTES, refBytes, type BlobRef, type TensorRef } from './claim-check.js';
export { CheckpointStore, type Checkpoint } from './checkpoint-store.js';
export { DiskKv, MemoryKv, RedisKv, openKv, type KeyValueStore } from './kv-store.js';
export { selectClients } from './client-selector.js';
export { FEDERATION_TOPICS } from './topics.js';
export type {
  ClientsRegistered,
  FederationEnded,
  LearnerLeft,
  RoundConfig,
  RoundStarted,
  TaskFailed,
  UpdateSubmitted,
  Uplink,
} from './messages.js';
export {
  FederatedLearner,
  type FederatedLearnerOptions,
  type LearnerStats,
} from '../learning/client/federated-learner.js';
export {
  LearningOptimizer,
  type LearningOptimizerOptions,
  type ServerLrSchedule,
} from '../learning/client/learning-optimizer.js';
export { LearnerPool, type LearnerPoolOptions } from '../learning/client/learner-pool.js';
