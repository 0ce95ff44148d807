/**
 * smart-whale-core/common: errors (WhaleError and its codes) and the logger.
 * Explicit named exports (no `export *`); src/index.ts re-exports them all.
 */
export { isWhaleError, WhaleError, type WhaleErrorCode, type WhaleErrorDetails } from '../common/errors.js';
export { createLogger, type Logger, type LogLevel, silentLogger } from '../common/logger.js';
