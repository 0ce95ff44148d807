import { WhaleError, type WhaleErrorCode } from '../common/errors.js';

const NATIVE_CODES: ReadonlySet<string> = new Set<WhaleErrorCode>([
  'ERR_INVALID_ARG',
  'ERR_NON_FINITE',
  'ERR_DEVICE_UNAVAILABLE',
  'ERR_CUDA',
  'ERR_UNSUPPORTED',
  'ERR_OUT_OF_MEMORY',
  'ERR_TRUNCATED',
  'ERR_BAD_MAGIC',
  'ERR_UNKNOWN_VERSION',
  'ERR_UNKNOWN_CODEC',
  'ERR_CORRUPT',
  'ERR_CHECKSUM',
]);

/** Turns an error thrown by the addon (plain Error with `code`) into a WhaleError. */
export function fromNativeError(err: unknown): WhaleError {
  if (err instanceof WhaleError) return err;
  const e = err as { code?: unknown; message?: unknown; client?: unknown };
  const code = typeof e.code === 'string' && NATIVE_CODES.has(e.code) ? (e.code as WhaleErrorCode) : 'ERR_NATIVE';
  const message = typeof e.message === 'string' ? e.message : String(err);
  const field = message.match(/^([A-Za-z_][\w.]*(?:\[\d+\])?):/)?.[1];
  return new WhaleError(code, message, {
    field,
    client: typeof e.client === 'number' ? e.client : undefined,
    retriable: code === 'ERR_CUDA',
    cause: err,
  });
}

export function callNative<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw fromNativeError(err);
  }
}

export async function callNativeAsync<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw fromNativeError(err);
  }
}
