export { WhaleError, isWhaleError, type WhaleErrorCode, type WhaleErrorDetails } from './core/base/errors.js';
export { engine, type DeviceInfo, type DeviceReport, type BuildReport } from './native/engine.js';
export { parseDevice, type DeviceSpec } from './native/device.js';
export { injectNative, native, candidatePaths, loadNativeFrom } from './native/loader.js';
export type { NativeBinding } from './native/binding.js';
export * from './core/federation/learning/index.js';
export * from './core/memory/index.js';
export { createLogger, silentLogger, type Logger, type LogLevel } from './core/base/logger.js';
