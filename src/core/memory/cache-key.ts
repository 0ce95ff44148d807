/**
 * One id per (prefix, namespace, key), used by every tier: the L1 map key, the
 * Redis key and (hashed) the disk file name. `%` and `:` are percent-escaped
 * in the prefix and the namespace, so the first two `:` of an id always
 * delimit them and the key may contain anything: `model-a/emb` + `doc:42`
 * and `model-a/emb:doc` + `42` are different ids. Names without `%` or `:`
 * keep the readable `prefix:namespace:key` form.
 */
import { WhaleError } from '../base/errors.js';

const escape = (s: string): string => s.replace(/[%:]/g, (c) => (c === '%' ? '%25' : '%3A'));

export function checkNamespace(ns: unknown): asserts ns is string {
  if (typeof ns !== 'string' || ns.length === 0) throw new WhaleError('ERR_INVALID_ARG', 'namespace: must be a non-empty string', { field: 'namespace' });
}

export function cacheId(prefix: string, ns: string, key: unknown): string {
  if (typeof key !== 'string' || key.length === 0) throw new WhaleError('ERR_INVALID_ARG', 'key: must be a non-empty string', { field: 'key' });
  return `${escape(prefix)}:${escape(ns)}:${key}`;
}
