/**
 * One id per (prefix, namespace, key), used by every tier: the L1 map key, the
 * Redis key and (hashed) the disk file name. `%` and `:` are percent-escaped
 * in the prefix and the namespace, so the first two `:` of an id always
 * delimit them and the key may contain anything: `model-a/emb` + `doc:42`
 * and `model-a/emb:doc` + `42` are different ids. Names without `%` or `:`
 * keep the readable `prefix:namespace:key` form.
 */
import { WhaleError } from '../../common/errors.js';

const escape = (s: string): string => s.replace(/[%:]/g, (c) => (c === '%' ? '%25' : '%3A'));

/**
 * A lone UTF-16 surrogate has no UTF-8 form: Redis and the disk tier would store it as U+FFFD,
 * so two such keys would share one entry and neither would be found again. Refused instead.
 */
// With the u flag a surrogate class matches only surrogates that are not part of a pair.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

function checkWellFormed(field: 'namespace' | 'key', s: string): void {
  const at = s.search(LONE_SURROGATE);
  if (at >= 0)
    throw new WhaleError(
      'ERR_INVALID_ARG',
      `${field}: has a lone UTF-16 surrogate at index ${at}; use well-formed Unicode`,
      { field },
    );
}

export function checkNamespace(ns: unknown): asserts ns is string {
  if (typeof ns !== 'string' || ns.length === 0)
    throw new WhaleError('ERR_INVALID_ARG', 'namespace: must be a non-empty string', { field: 'namespace' });
  checkWellFormed('namespace', ns);
}

export function cacheId(prefix: string, ns: string, key: unknown): string {
  if (typeof key !== 'string' || key.length === 0)
    throw new WhaleError('ERR_INVALID_ARG', 'key: must be a non-empty string', { field: 'key' });
  checkWellFormed('key', key);
  return `${escape(prefix)}:${escape(ns)}:${key}`;
}
