/**
 * The tiered cache's options and their validation. Every bad option is a
 * WhaleError naming the field (`options.namespaces["a/b"].ttlMs`), raised by
 * the constructor, so nothing is discovered later as a silent failed write.
 */
import { WhaleError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import { intOption } from '../../common/validate.js';
import type { EncodeOptions } from './codec.js';
import type { CacheValue } from './value-codec.js';

export type Tier = 'l1' | 'l2' | 'l3';
const TIERS: readonly Tier[] = ['l1', 'l2', 'l3'];

/** Longest TTL accepted: 10 years (expiry times stay exact integers in every tier). */
export const MAX_TTL_MS = 10 * 365 * 24 * 3600 * 1000;
/** Bytes of a disk key given in options (HMAC-SHA256 key). */
export const MIN_DISK_KEY_BYTES = 32;

export interface NamespacePolicy {
  /** Default TTL of the namespace's entries, 0 < ttlMs <= MAX_TTL_MS (none: they live until evicted). */
  ttlMs?: number;
  /** Tiers used by this namespace (default: every configured tier). */
  tiers?: Tier[];
  /** 'through' (default): set() resolves once every tier has it; 'behind': L1 now, the rest in the background. */
  write?: 'through' | 'behind';
  /** Read-through: called on a miss in every tier; its value is stored and returned. */
  loader?: (key: string) => Promise<CacheValue | undefined>;
  /** How top-level Float32Array values are encoded for L2/L3 (default int8, block 64). */
  tensor?: EncodeOptions;
}

export interface TieredCacheOptions {
  /** L1 budget in bytes (default 64 MiB). */
  l1MaxBytes?: number;
  /** Redis URL for L2 (default $REDIS_URL; without one there is no L2). */
  redisUrl?: string;
  redisCommandTimeoutMs?: number;
  /** L3 directory (default $WHALE_CACHE_DIR, else $XDG_CACHE_HOME/smart-whale or ~/.cache/smart-whale); false for none. */
  diskDir?: string | false;
  /** L3 budget in bytes (default 1 GiB). */
  diskMaxBytes?: number;
  /** Key authenticating disk entries (>= 32 bytes); default: a random key kept 0600 in the directory. */
  diskKey?: Uint8Array;
  /** Prefix of every id (default 'whale'): ids are prefix:namespace:key, see cache-key.ts. */
  keyPrefix?: string;
  namespaces?: Record<string, NamespacePolicy>;
  logger?: Logger;
}

const bad = (field: string, message: string): WhaleError =>
  new WhaleError('ERR_INVALID_OPTION', `${field}: ${message}`, { field });
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** True when ttl is a usable TTL in ms; the caller raises its own error code. */
function validTtl(ttl: unknown): ttl is number {
  return typeof ttl === 'number' && ttl > 0 && ttl <= MAX_TTL_MS; // NaN fails both comparisons
}

const ttlRule = `must be a number of ms in (0, ${MAX_TTL_MS}] (10 years)`;

/** A TTL passed to set()/setMany(): ERR_INVALID_ARG with field 'ttlMs'. */
export function checkTtlArg(ttl: unknown): number | undefined {
  if (ttl === undefined || validTtl(ttl)) return ttl;
  throw new WhaleError('ERR_INVALID_ARG', `ttlMs: ${ttlRule}, got ${describe(ttl)}`, { field: 'ttlMs' });
}

function positiveInt(o: Record<string, unknown>, name: string): void {
  intOption(o[name], 1, `options.${name}`);
}

function checkPolicy(ns: string, p: unknown): void {
  const at = `options.namespaces[${JSON.stringify(ns)}]`;
  if (!isRecord(p)) throw bad(at, `must be an object, got ${describe(p)}`);
  if (p.ttlMs !== undefined && !validTtl(p.ttlMs)) throw bad(`${at}.ttlMs`, `${ttlRule}, got ${describe(p.ttlMs)}`);
  if (p.tiers !== undefined && !(Array.isArray(p.tiers) && p.tiers.every((t) => TIERS.includes(t as Tier)))) {
    throw bad(`${at}.tiers`, `must be an array of 'l1', 'l2', 'l3', got ${describe(p.tiers)}`);
  }
  if (p.write !== undefined && p.write !== 'through' && p.write !== 'behind')
    throw bad(`${at}.write`, `must be 'through' or 'behind', got ${describe(p.write)}`);
  if (p.loader !== undefined && typeof p.loader !== 'function')
    throw bad(`${at}.loader`, `must be a function, got ${describe(p.loader)}`);
  if (p.tensor !== undefined && !isRecord(p.tensor))
    throw bad(`${at}.tensor`, `must be an object, got ${describe(p.tensor)}`);
}

export function checkCacheOptions(o: unknown): asserts o is TieredCacheOptions {
  if (!isRecord(o)) throw bad('options', `must be an object, got ${describe(o)}`);
  positiveInt(o, 'l1MaxBytes');
  positiveInt(o, 'diskMaxBytes');
  positiveInt(o, 'redisCommandTimeoutMs');
  if (o.redisUrl !== undefined && typeof o.redisUrl !== 'string')
    throw bad('options.redisUrl', `must be a string, got ${describe(o.redisUrl)}`);
  if (o.diskDir !== undefined && o.diskDir !== false && !(typeof o.diskDir === 'string' && o.diskDir.length > 0)) {
    throw bad('options.diskDir', `must be a non-empty path or false, got ${describe(o.diskDir)}`);
  }
  if (o.diskKey !== undefined && !(o.diskKey instanceof Uint8Array && o.diskKey.length >= MIN_DISK_KEY_BYTES)) {
    throw bad('options.diskKey', `must be a Uint8Array of at least ${MIN_DISK_KEY_BYTES} random bytes`);
  }
  if (o.keyPrefix !== undefined && !(typeof o.keyPrefix === 'string' && o.keyPrefix.length > 0)) {
    throw bad('options.keyPrefix', `must be a non-empty string, got ${describe(o.keyPrefix)}`);
  }
  if (o.namespaces !== undefined) {
    if (!isRecord(o.namespaces)) throw bad('options.namespaces', `must be an object, got ${describe(o.namespaces)}`);
    for (const [ns, p] of Object.entries(o.namespaces)) checkPolicy(ns, p);
  }
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint' || v == null) return String(v);
  return Array.isArray(v) ? 'an array' : `a ${typeof v}`;
}
