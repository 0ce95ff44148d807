/**
 * smart-whale-core/common: errors (WhaleError and its codes), the logger (and its per-request context) and the tracing helpers.
 * Explicit named exports (no `export *`); src/index.ts re-exports them all.
 */
export { isWhaleError, WhaleError, type WhaleErrorCode, type WhaleErrorDetails } from '../common/errors.js';
export { createLogger, type Logger, type LogLevel, silentLogger } from '../common/logger.js';
export { logContextFields, REQUEST_ID_HEADER, SAFE_REQUEST_ID, withLogContext } from '../common/logger.js';
export {
  activeTraceId,
  endSpan,
  extractTraceContext,
  injectTraceHeaders,
  inTrace,
  runInSpan,
  setTracingActive,
  startSpan,
  TRACER_NAME,
  tracingActive,
  withSpan,
} from '../common/trace.js';
