/**
 * Request context → one-hot feature indices for the contextual bandit:
 * [0] bias, [1..3] level (quick/normal/deep), [4..7] size (rows ≤ 1, ≤ 8,
 * ≤ 64, more), [8..19] level × size cell, [20..20+T) tenant bucket (FNV-1a of
 * the tenant mod T). An unknown level or tenant sets no bit of its group.
 */
import type { Level } from '../../processing/processing-pipeline.js';

export interface RouteContext {
  rows?: number;
  level?: Level;
  tenant?: string;
  session?: string;
  /** The id feedback will name; generated when absent. */
  requestId?: string;
}

const LEVEL_INDEX: Record<string, number> = { quick: 0, normal: 1, deep: 2 };

export function featureDim(tenantBuckets: number): number {
  return 20 + tenantBuckets;
}

export function sizeBucket(rows: number): number {
  return rows <= 1 ? 0 : rows <= 8 ? 1 : rows <= 64 ? 2 : 3;
}

export function featurize(ctx: RouteContext, tenantBuckets: number): number[] {
  const x = [0];
  const size = sizeBucket(ctx.rows ?? 1);
  x.push(4 + size);
  const level = ctx.level === undefined ? undefined : LEVEL_INDEX[ctx.level];
  if (level !== undefined) x.push(1 + level, 8 + level * 4 + size);
  if (ctx.tenant !== undefined && tenantBuckets > 0) x.push(20 + (fnv1a(ctx.tenant) % tenantBuckets));
  return x;
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}
