/** Knowledge items as the KnowledgeManager keeps them. */
export type KnowledgePrivacy = 'standard' | 'anonymous' | 'encrypted';

export interface KnowledgeInput {
  /** Stable id; storing the same id again replaces the item (idempotent redelivery). Default: a random UUID. */
  id?: string;
  /** Versioning key, scoped by source model: a newer item with the same key supersedes the old one. */
  key?: string;
  topic: string;
  /** Absent for anonymous knowledge. */
  sourceModel?: string;
  /** A model id, or 'all' (default). Encrypted items are seen only by their target. */
  targetModel?: string;
  privacy?: KnowledgePrivacy;
  /** JSON payload. */
  data: unknown;
  /** The item's vector: floats, or a memory-module blob (encodeTensor). */
  embedding?: Float32Array | readonly number[] | Uint8Array;
  /** Text to embed with the configured embedder when no embedding is given. */
  text?: string;
  /** Explicit version: an item older than the one stored under its key is ignored. */
  version?: number;
  /** When the knowledge was produced (ms since the epoch); default now. */
  time?: number;
  ttlMs?: number;
}

export interface KnowledgeItem {
  id: string;
  key: string;
  version: number;
  topic: string;
  sourceModel?: string;
  targetModel: string;
  privacy: KnowledgePrivacy;
  data: unknown;
  time: number;
  storedAt: number;
  expiresAt?: number;
  /** Whether the item has a vector in the index. */
  hasVector: boolean;
}

export interface KnowledgeFilter {
  topic?: string | readonly string[];
  sourceModel?: string;
  /** Items produced at or after this time (ms since the epoch). */
  since?: number;
}

export interface KnowledgeSearch {
  vector?: Float32Array | readonly number[];
  text?: string;
  k?: number;
  filter?: KnowledgeFilter;
  /** The model asking: it sees only what it may (see access.ts). Omitted: the node itself, which never sees encrypted items. */
  as?: string;
  /** Inverted lists visited (approximate search); default the index's. */
  nprobe?: number;
  exact?: boolean;
}

export interface KnowledgeHit {
  item: KnowledgeItem;
  /** l2: squared distance; ip: -dot; cosine: 1 - cosine similarity. Smaller is closer. */
  distance: number;
}

/** What a restart found in storage that it could not use. */
export interface DamagedRecord {
  source: 'disk' | 'redis';
  /** Byte offset in the log (disk) or the Redis key. */
  where: string;
  /** The item's id when it could still be read. */
  id?: string;
  code: string;
  reason: string;
}

export interface RecoveryReport {
  items: number;
  damaged: DamagedRecord[];
  /** Bytes of an unfinished last write dropped from the log (never acknowledged). */
  tornTailBytes: number;
}
