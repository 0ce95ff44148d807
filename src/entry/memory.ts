/**
 * smart-whale-core/memory: the tiered cache (memory, disk, Redis) and its values.
 * Explicit named exports (no `export *`); src/index.ts re-exports them all.
 */
export {
  ByteLru,
  type ByteLruStats,
  type CacheStats,
  type CacheValue,
  decodeInt8Ref,
  type DecodeOptions,
  decodeTensor,
  decodeTensorAsync,
  defaultCacheDir,
  encodeInt8Ref,
  type EncodeOptions,
  encodeTensor,
  encodeTensorAsync,
  inspectTensor,
  MAX_TTL_MS,
  type NamespacePolicy,
  relativeL2Error,
  type SparseUpdate,
  TENSOR_CODECS,
  type TensorBlobInfo,
  type TensorCodec,
  type Tier,
  TieredCache,
  type TieredCacheOptions,
  TopKCompressor,
  type TopKOptions,
} from '../core/memory/index.js';
