export { WhaleError, isWhaleError, type WhaleErrorCode, type WhaleErrorDetails } from './common/errors.js';
export { engine, type DeviceInfo, type DeviceReport, type BuildReport } from './native/engine.js';
export { parseDevice, type DeviceSpec } from './native/device.js';
export { injectNative, native, candidatePaths, loadNativeFrom } from './native/loader.js';
export type { NativeBinding } from './native/binding.js';
export * from './core/federation/learning/index.js';
export * from './core/federation/orchestration/index.js';
export * from './core/federation/knowledge-sharing/index.js';
export * from './core/memory/index.js';
export { createLogger, silentLogger, type Logger, type LogLevel } from './common/logger.js';
export * from './services/index.js';
export * from './transport/index.js';
export * from './core/base/index.js';
export * from './models/index.js';
export * from './core/processing/index.js';
export * from './server/index.js';
export * from './core/monitoring/health/anomaly-detector.js';
export * from './core/monitoring/index.js';
export * from './server/extensions/index.js';
export * from './apps/mnist/index.js';
export {
  loadConfig,
  parseConfig,
  defaultModelConfig,
  CONFIG_FILE,
  type WhaleConfig,
  type ModelConfig,
  type ModelBatching,
  type PipelineConfig,
} from './config/whale-config.js';
export { parseModelResources, parseResources } from './config/resources.js';
export * from './core/resource-management/index.js';
export * from './core/quality/index.js';
export * from './core/federation/routing/index.js';
export * from './core/federation/security/index.js';
export * from './core/federation/privacy/index.js';
