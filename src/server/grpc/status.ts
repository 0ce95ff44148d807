/**
 * The one WhaleError-code → gRPC status table, beside HTTP's
 * (src/transport/http-json.ts, HTTP_STATUS): a request problem is
 * INVALID_ARGUMENT, a missing key UNAUTHENTICATED, a missing role
 * PERMISSION_DENIED, an unknown model NOT_FOUND, a quota RESOURCE_EXHAUSTED,
 * a server that cannot take the request now UNAVAILABLE (clients retry it), a
 * deadline DEADLINE_EXCEEDED, the server's own failure INTERNAL. The class of
 * each answer agrees with HTTP's (4xx ↔ a client status, 503 ↔ UNAVAILABLE or
 * RESOURCE_EXHAUSTED, 504 ↔ DEADLINE_EXCEEDED, 500 ↔ INTERNAL); a test checks it.
 *
 * The error's text is the call's details; its code and field travel in the
 * trailing metadata as `whale-code` and `whale-field`, and a retry hint as
 * `retry-after` (seconds), as the HTTP answer's body and header carry them.
 */
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';

import { WhaleError, type WhaleErrorCode } from '../../common/errors.js';

export const GRPC_STATUS: Readonly<Record<WhaleErrorCode, status>> = {
  // the request is wrong
  ERR_INVALID_ARG: status.INVALID_ARGUMENT,
  ERR_SHAPE_MISMATCH: status.INVALID_ARGUMENT,
  ERR_NON_FINITE: status.INVALID_ARGUMENT,
  ERR_INVALID_MESSAGE: status.INVALID_ARGUMENT,
  ERR_BAD_SIGNATURE: status.UNAUTHENTICATED,
  ERR_UNKNOWN_IDENTITY: status.UNAUTHENTICATED,
  ERR_UNAUTHENTICATED: status.UNAUTHENTICATED,
  ERR_REVOKED: status.PERMISSION_DENIED,
  ERR_FORBIDDEN: status.PERMISSION_DENIED,
  ERR_NOT_FOUND: status.NOT_FOUND,
  ERR_MODEL_NOT_FOUND: status.NOT_FOUND,
  ERR_CONFLICT: status.ABORTED,
  ERR_REPLAY: status.ALREADY_EXISTS,
  ERR_PAYLOAD_TOO_LARGE: status.RESOURCE_EXHAUSTED,
  ERR_QUOTA_EXCEEDED: status.RESOURCE_EXHAUSTED,
  ERR_CANCELLED: status.CANCELLED,
  // the server cannot take it now: retry
  ERR_MODEL_NOT_READY: status.UNAVAILABLE,
  ERR_MODEL_REMOVED: status.UNAVAILABLE,
  ERR_OVERLOADED: status.UNAVAILABLE,
  ERR_SHUTTING_DOWN: status.UNAVAILABLE,
  ERR_UNAVAILABLE: status.UNAVAILABLE,
  ERR_DEADLINE_EXCEEDED: status.DEADLINE_EXCEEDED,
  ERR_TIMEOUT: status.DEADLINE_EXCEEDED,
  // the server's own failure
  ERR_INVALID_OPTION: status.INTERNAL,
  ERR_CONFIG: status.INTERNAL,
  ERR_NO_CLIENTS: status.INTERNAL,
  ERR_INVALID_WEIGHT: status.INTERNAL,
  ERR_BELOW_THRESHOLD: status.INTERNAL,
  ERR_DEVICE_UNAVAILABLE: status.INTERNAL,
  ERR_CUDA: status.INTERNAL,
  ERR_UNSUPPORTED: status.INTERNAL,
  ERR_OUT_OF_MEMORY: status.INTERNAL,
  ERR_NATIVE: status.INTERNAL,
  ERR_NATIVE_NOT_FOUND: status.INTERNAL,
  ERR_NATIVE_LOAD: status.INTERNAL,
  ERR_TRUNCATED: status.INTERNAL,
  ERR_BAD_MAGIC: status.INTERNAL,
  ERR_UNKNOWN_VERSION: status.INTERNAL,
  ERR_UNKNOWN_CODEC: status.INTERNAL,
  ERR_CORRUPT: status.INTERNAL,
  ERR_CHECKSUM: status.INTERNAL,
  ERR_BUS_CLOSED: status.INTERNAL,
  ERR_INVALID_STATE: status.INTERNAL,
  ERR_MODEL_LOAD: status.INTERNAL,
  ERR_MODEL_RUN: status.INTERNAL,
  ERR_EXECUTION_FAILED: status.INTERNAL,
};

/** The error as a call's status: the table's code, the message as details, code/field/retry-after in the metadata. */
export function grpcError(err: unknown): Partial<ServiceError> & { code: status; details: string; metadata: Metadata } {
  const metadata = new Metadata();
  if (err instanceof WhaleError) {
    metadata.set('whale-code', err.code);
    if (err.field) metadata.set('whale-field', err.field);
    const retryAfterMs = Number(err.details.retryAfterMs);
    if (Number.isFinite(retryAfterMs) && retryAfterMs >= 0)
      metadata.set('retry-after', String(Math.ceil(retryAfterMs / 1000)));
    return { code: GRPC_STATUS[err.code] ?? status.INTERNAL, details: err.message, metadata };
  }
  return { code: status.INTERNAL, details: `internal error: ${(err as Error)?.message ?? String(err)}`, metadata };
}
