export * from './codec.js';
export { encodeInt8Ref, decodeInt8Ref, relativeL2Error } from './codec-reference.js';
export { TopKCompressor, type SparseUpdate, type TopKOptions } from './topk.js';
export { ByteLru, type ByteLruStats } from './byte-lru.js';
export {
  TieredCache,
  MAX_TTL_MS,
  type CacheStats,
  type NamespacePolicy,
  type Tier,
  type TieredCacheOptions,
} from './tiered-cache.js';
export { defaultCacheDir } from './disk-dir.js';
export type { CacheValue } from './cache-value.js';
