/**
 * Scores against a reference answer, on tokens (see text.ts):
 * - exactMatch: 1 when the token sequences are equal (so case, punctuation,
 *   spacing and Unicode compatibility forms do not matter), else 0.
 * - tokenF1: harmonic mean of precision (shared tokens / response tokens) and
 *   recall (shared tokens / reference tokens), tokens counted as multisets.
 * - rougeL: ROUGE-L F1: the same with the longest common subsequence as the
 *   shared part. Computed on the first `maxTokens` tokens of each side.
 * Two empty texts match fully (1); exactly one empty scores 0.
 */
import { lcsLength, ngramCounts, overlapCount } from './text.js';

export function exactMatch(response: readonly string[], reference: readonly string[]): number {
  return response.length === reference.length && response.every((t, i) => t === reference[i]) ? 1 : 0;
}

export function tokenF1(response: readonly string[], reference: readonly string[]): number {
  if (response.length === 0 || reference.length === 0) return response.length === reference.length ? 1 : 0;
  const shared = overlapCount(ngramCounts(response, 1), ngramCounts(reference, 1));
  return f1(shared / response.length, shared / reference.length);
}

export function rougeL(response: readonly string[], reference: readonly string[], maxTokens: number): number {
  const r = response.slice(0, maxTokens);
  const ref = reference.slice(0, maxTokens);
  if (r.length === 0 || ref.length === 0) return r.length === ref.length ? 1 : 0;
  const lcs = lcsLength(r, ref);
  return f1(lcs / r.length, lcs / ref.length);
}

function f1(precision: number, recall: number): number {
  return precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
}
