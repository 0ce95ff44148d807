/** Stable error codes of Smart Whale core. Match on `code`, never on message text. */
export type WhaleErrorCode =
  | 'ERR_INVALID_ARG'
  | 'ERR_INVALID_OPTION'
  | 'ERR_NO_CLIENTS'
  | 'ERR_SHAPE_MISMATCH'
  | 'ERR_INVALID_WEIGHT'
  | 'ERR_NON_FINITE'
  | 'ERR_DEVICE_UNAVAILABLE'
  | 'ERR_CUDA'
  | 'ERR_UNSUPPORTED'
  | 'ERR_OUT_OF_MEMORY'
  | 'ERR_NATIVE'
  | 'ERR_NATIVE_NOT_FOUND'
  | 'ERR_NATIVE_LOAD'
  // Tensor blobs (core/memory/codec)
  | 'ERR_TRUNCATED'
  | 'ERR_BAD_MAGIC'
  | 'ERR_UNKNOWN_VERSION'
  | 'ERR_UNKNOWN_CODEC'
  | 'ERR_CORRUPT'
  | 'ERR_CHECKSUM'
  // Transport and services
  | 'ERR_TIMEOUT'
  | 'ERR_BUS_CLOSED'
  /** A backend (Kafka, Redis, a database) cannot be reached. */
  | 'ERR_UNAVAILABLE'
  | 'ERR_INVALID_MESSAGE'
  | 'ERR_NOT_FOUND'
  | 'ERR_CONFLICT'
  // Serving (config, models, HTTP)
  | 'ERR_CONFIG'
  | 'ERR_MODEL_NOT_FOUND'
  | 'ERR_MODEL_NOT_READY'
  | 'ERR_PAYLOAD_TOO_LARGE'
  // Model lifecycle and adapters (core/base/model, models/)
  | 'ERR_INVALID_STATE'
  | 'ERR_MODEL_LOAD'
  | 'ERR_MODEL_RUN'
  // Scheduling (core/processing/task-scheduler)
  | 'ERR_OVERLOADED'
  // Resource management (core/resource-management): a model or tenant over its quota
  | 'ERR_QUOTA_EXCEEDED'
  | 'ERR_DEADLINE_EXCEEDED'
  | 'ERR_CANCELLED'
  | 'ERR_SHUTTING_DOWN'
  | 'ERR_EXECUTION_FAILED'
  | 'ERR_MODEL_REMOVED'
  // Federation security (core/federation/security, core/federation/privacy)
  | 'ERR_BAD_SIGNATURE'
  | 'ERR_REPLAY'
  | 'ERR_UNKNOWN_IDENTITY'
  | 'ERR_REVOKED'
  | 'ERR_FORBIDDEN'
  | 'ERR_BELOW_THRESHOLD'
  // API keys (server/auth): no valid key where one is needed (401), a key without the role is ERR_FORBIDDEN (403)
  | 'ERR_UNAUTHENTICATED';

export interface WhaleErrorDetails {
  /** The argument or option at fault, e.g. `weights[3]` or `options.beta`. */
  field?: string;
  /** Index of the client an aggregation error is about. */
  client?: number;
  /** Whether retrying the same call may succeed (e.g. a transient device error). */
  retriable?: boolean;
  cause?: unknown;
  [key: string]: unknown;
}

export class WhaleError extends Error {
  readonly code: WhaleErrorCode;
  readonly retriable: boolean;
  readonly field: string | undefined;
  readonly client: number | undefined;
  readonly details: Readonly<WhaleErrorDetails>;

  constructor(code: WhaleErrorCode, message: string, details: WhaleErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'WhaleError';
    this.code = code;
    this.retriable = details.retriable ?? false;
    this.field = details.field;
    this.client = details.client;
    this.details = details;
  }
}

export function isWhaleError(err: unknown, code?: WhaleErrorCode): err is WhaleError {
  return err instanceof WhaleError && (code === undefined || err.code === code);
}
