/**
 * The `knowledge` and `collaboration` sections of whale.config.json (the
 * knowledge extension, src/server/extensions/knowledge.ts; docs/knowledge.md):
 *   "knowledge": { "enabled": true, "dim": 64, "metric": "cosine", "dir": "/var/lib/whale/knowledge",
 *                  "redisPrefix": "whale:knowledge", "maxItems": 50000,
 *                  "share": { "answers": true, "sample": 1, "maxPerSecond": 10, "privacy": "standard", "ttlMs": 86400000 } }
 *   "collaboration": { "deep": "auto", "timeoutMs": 5000, "models": ["mnist"] }
 * Both are on by default; with REDIS_URL the knowledge items live in Redis (shared by the nodes).
 */
import { arrayAt, booleanAt, configError, numberAt, objectAt, optional, stringAt } from '../common/validate.js';

export interface KnowledgeShareConfig {
  /** Share an embedding of answered inputs (with the answer) as knowledge. */
  answers: boolean;
  /** Share of answered requests considered, in [0, 1]. */
  sample: number;
  /** At most this many items shared per second by this node (a token bucket). */
  maxPerSecond: number;
  /** 'standard' keeps the source model; 'anonymous' strips it. The privacy guard cleans the data either way. */
  privacy: 'standard' | 'anonymous';
  /** How long a shared item lives (ms). */
  ttlMs: number;
}

export interface KnowledgeConfig {
  enabled: boolean;
  /** Embedding dimension of every item (answered inputs are projected to it). */
  dim: number;
  metric: 'cosine' | 'l2' | 'ip';
  /** Log directory (persistent across restarts); false (default): memory, or Redis with REDIS_URL. */
  dir: string | false;
  /** Key prefix of the items in Redis (REDIS_URL). */
  redisPrefix: string;
  /** Items a node keeps at most: beyond it the oldest shared answers go (checked every minute, with expired items). */
  maxItems: number;
  share: KnowledgeShareConfig;
}

export interface CollaborationConfig {
  /** Ask models on other nodes to join `deep` requests: 'auto' (default) does it over Kafka only. */
  deep: boolean | 'auto';
  /** How long a deep request waits for other nodes' answers (ms; bounded by the request's own timeout). */
  timeoutMs: number;
  /** The models asked (their own topics); default: the deep request's members. */
  models?: string[];
}

export function defaultKnowledgeConfig(): KnowledgeConfig {
  return {
    enabled: true,
    dim: 64,
    metric: 'cosine',
    dir: false,
    redisPrefix: 'whale:knowledge',
    maxItems: 50_000,
    share: { answers: true, sample: 1, maxPerSecond: 10, privacy: 'standard', ttlMs: 24 * 3600 * 1000 },
  };
}

export function parseKnowledge(raw: unknown, resolvePath: (p: string) => string): KnowledgeConfig {
  const d = defaultKnowledgeConfig();
  const k = objectAt(raw ?? {}, 'knowledge', ['enabled', 'dim', 'metric', 'dir', 'redisPrefix', 'maxItems', 'share']);
  const s = objectAt(k.share ?? {}, 'knowledge.share', ['answers', 'sample', 'maxPerSecond', 'privacy', 'ttlMs']);
  let dir: string | false = d.dir;
  if (k.dir === false) dir = false;
  else if (k.dir !== undefined) dir = resolvePath(stringAt(k.dir, 'knowledge.dir'));
  return {
    enabled: optional(k.enabled, (v) => booleanAt(v, 'knowledge.enabled')) ?? d.enabled,
    dim: optional(k.dim, (v) => numberAt(v, 'knowledge.dim', { integer: true, min: 2, max: 4096 })) ?? d.dim,
    metric:
      (optional(k.metric, (v) => stringAt(v, 'knowledge.metric', { oneOf: ['cosine', 'l2', 'ip'] })) as
        KnowledgeConfig['metric'] | undefined) ?? d.metric,
    dir,
    redisPrefix:
      optional(k.redisPrefix, (v) => stringAt(v, 'knowledge.redisPrefix', { pattern: /^[!-~]{1,128}$/ })) ??
      d.redisPrefix,
    maxItems:
      optional(k.maxItems, (v) => numberAt(v, 'knowledge.maxItems', { integer: true, min: 1, max: 100_000_000 })) ??
      d.maxItems,
    share: {
      answers: optional(s.answers, (v) => booleanAt(v, 'knowledge.share.answers')) ?? d.share.answers,
      sample: optional(s.sample, (v) => numberAt(v, 'knowledge.share.sample', { min: 0, max: 1 })) ?? d.share.sample,
      maxPerSecond:
        optional(s.maxPerSecond, (v) => numberAt(v, 'knowledge.share.maxPerSecond', { min: 0, max: 1e6 })) ??
        d.share.maxPerSecond,
      privacy:
        (optional(s.privacy, (v) => stringAt(v, 'knowledge.share.privacy', { oneOf: ['standard', 'anonymous'] })) as
          KnowledgeShareConfig['privacy'] | undefined) ?? d.share.privacy,
      ttlMs:
        optional(s.ttlMs, (v) => numberAt(v, 'knowledge.share.ttlMs', { min: 1, max: 10 * 365 * 24 * 3600 * 1000 })) ??
        d.share.ttlMs,
    },
  };
}

/** The models asked may live on other nodes only: they are not checked against this node's. */
export function parseCollaboration(raw: unknown): CollaborationConfig {
  const c = objectAt(raw ?? {}, 'collaboration', ['deep', 'timeoutMs', 'models']);
  let deep: boolean | 'auto' = 'auto';
  if (c.deep !== undefined) {
    if (c.deep !== 'auto' && typeof c.deep !== 'boolean')
      throw configError('collaboration.deep', `must be true, false or 'auto', got ${JSON.stringify(c.deep)}`);
    deep = c.deep;
  }
  const models = optional(c.models, (v) =>
    arrayAt(v, 'collaboration.models').map((m, i) =>
      stringAt(m, `collaboration.models[${i}]`, { pattern: /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/ }),
    ),
  );
  return {
    deep,
    timeoutMs:
      optional(c.timeoutMs, (v) => numberAt(v, 'collaboration.timeoutMs', { integer: true, min: 1, max: 600_000 })) ??
      5000,
    ...(models && models.length > 0 ? { models } : {}),
  };
}
