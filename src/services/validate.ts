import { WhaleError } from '../core/base/errors.js';

/** Throws ERR_INVALID_ARG naming `field` unless v is a non-empty string. */
export function requireId(v: unknown, field: string): void {
  if (typeof v !== 'string' || v.length === 0) throw new WhaleError('ERR_INVALID_ARG', `${field}: must be a non-empty string`, { field });
}
