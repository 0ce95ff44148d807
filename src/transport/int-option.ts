import { WhaleError } from '../core/base/errors.js';

/**
 * An optional integer option of a bus: `dflt` when absent, else an integer in
 * [min, max], or ERR_INVALID_OPTION naming the field.
 */
export function intOption(v: unknown, dflt: number, field: string, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in [${min}, ${max}]`;
    throw new WhaleError('ERR_INVALID_OPTION', `${field}: must be an integer ${range}, got ${String(v)}`, { field });
  }
  return v;
}
