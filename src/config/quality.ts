/**
 * The `quality` section of whale.config.json (docs/configuration.md, "Quality"; the quality-routing
 * extension, src/server/extensions/routing.ts):
 *
 *   "quality": { "sampleRate": 0.05, "latencyBudgetMs": 100, "consistency": true, "maxPending": 16, "keepAnswers": 4096 }
 *
 * A `sampleRate` share of the answers the node serves is evaluated off the request path
 * (confidence, latency against the budget, agreement with another ensemble member or version).
 */
import { booleanAt, numberAt, objectAt, optional } from '../common/validate.js';

export interface QualityConfig {
  /** Share of served answers evaluated, in [0, 1] (0: none). */
  sampleRate: number;
  /** An answer slower than this scores below 1 on latency (budget / latency). */
  latencyBudgetMs: number;
  /** Also ask another ensemble member or held version for the same input and score the agreement. */
  consistency: boolean;
  /** Evaluations waiting at most; a sampled answer beyond it is dropped (and counted). */
  maxPending: number;
  /** Answers remembered for labelled feedback (POST /v1/feedback with `label`). */
  keepAnswers: number;
}

export function defaultQualityConfig(): QualityConfig {
  return { sampleRate: 0.05, latencyBudgetMs: 100, consistency: true, maxPending: 16, keepAnswers: 4096 };
}

/** The section (undefined: the defaults); ERR_CONFIG naming the field. */
export function parseQuality(raw: unknown): QualityConfig {
  const d = defaultQualityConfig();
  const q = objectAt(raw ?? {}, 'quality', [
    'sampleRate',
    'latencyBudgetMs',
    'consistency',
    'maxPending',
    'keepAnswers',
  ]);
  return {
    sampleRate: optional(q.sampleRate, (v) => numberAt(v, 'quality.sampleRate', { min: 0, max: 1 })) ?? d.sampleRate,
    latencyBudgetMs:
      optional(q.latencyBudgetMs, (v) => numberAt(v, 'quality.latencyBudgetMs', { min: 0.001, max: 3_600_000 })) ??
      d.latencyBudgetMs,
    consistency: optional(q.consistency, (v) => booleanAt(v, 'quality.consistency')) ?? d.consistency,
    maxPending:
      optional(q.maxPending, (v) => numberAt(v, 'quality.maxPending', { min: 1, max: 10_000, integer: true })) ??
      d.maxPending,
    keepAnswers:
      optional(q.keepAnswers, (v) => numberAt(v, 'quality.keepAnswers', { min: 0, max: 1_000_000, integer: true })) ??
      d.keepAnswers,
  };
}
