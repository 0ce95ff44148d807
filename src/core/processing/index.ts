export { TaskScheduler, type TaskSchedulerOptions, type SchedulerStats } from './task-scheduler.js';
export type { BatchExecutor, BatchingConfig, TaskRequest } from './scheduler-config.js';
export type { ModelSchedulerStats } from './scheduler-stats.js';
export { ReferenceSchedulerEngine } from './scheduler-reference.js';
export { createSchedulerEngine, type SchedulerEngine, type EngineKind } from './scheduler-engine.js';
export {
  ModelHost,
  type AddVersionOptions,
  type HostedModelStatus,
  type HostedState,
  type ModelHostOptions,
  type ModelVersionInfo,
  type VersionProvenance,
} from './model-host.js';
export { ProcessingOptimizer, type Allocation, type ProcessingOptimizerOptions } from './processing-optimizer.js';
export {
  ProcessingPipeline,
  LEVELS,
  combine,
  type InferenceRequest,
  type InferenceResult,
  type MemberAnswer,
  type Level,
  type PipelineOptions,
  type ResponseCache,
  type TaskScheduling,
} from './processing-pipeline.js';
export { streamRequest, type StreamSource, type StreamStep } from './generation.js';
