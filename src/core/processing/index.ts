export { TaskScheduler, type TaskSchedulerOptions, type SchedulerStats } from './task-scheduler.js';
export type { BatchExecutor, BatchingConfig, TaskRequest } from './scheduler-config.js';
export type { ModelSchedulerStats } from './scheduler-stats.js';
export { ReferenceSchedulerEngine } from './scheduler-reference.js';
export { createSchedulerEngine, type SchedulerEngine, type EngineKind } from './scheduler-engine.js';
