/**
 * Checks client updates before aggregation: type (Float32Array), length,
 * finite values, and an L2-norm bound relative to the round's median norm
 * (an update more than `normFactor` times the median is flagged, or dropped).
 * Also content hashes of claim-checked blobs (sha256).
 */
import { createHash, timingSafeEqual } from 'node:crypto';

import { WhaleError } from '../../../common/errors.js';

export interface IntegrityOptions {
  /** Expected number of values (the model's parameter count). */
  length: number;
  /** Norm above normFactor × the round's median norm is an outlier (default 3; Infinity disables). */
  normFactor?: number;
  /** 'drop' outliers before aggregation (default) or only 'flag' them. */
  onOutlier?: 'drop' | 'flag';
}

export interface CheckedUpdate {
  clientId: string;
  values: Float32Array;
}

export interface Refused {
  clientId: string;
  reason: 'dtype' | 'shape' | 'non-finite' | 'norm';
  detail: string;
  norm?: number;
}

export interface RoundCheck<U extends CheckedUpdate> {
  kept: U[];
  refused: Refused[];
  /** Outliers that were kept because onOutlier is 'flag'. */
  flagged: Refused[];
  medianNorm: number;
  norms: Map<string, number>;
}

export class IntegrityChecker {
  readonly normFactor: number;
  readonly onOutlier: 'drop' | 'flag';

  constructor(readonly o: IntegrityOptions) {
    if (!(Number.isInteger(o.length) && o.length > 0))
      throw new WhaleError('ERR_INVALID_OPTION', `length: must be an integer > 0, got ${o.length}`, {
        field: 'length',
      });
    this.normFactor = o.normFactor ?? 3;
    if (!(this.normFactor >= 1))
      throw new WhaleError('ERR_INVALID_OPTION', `normFactor: must be >= 1, got ${this.normFactor}`, {
        field: 'normFactor',
      });
    this.onOutlier = o.onOutlier ?? 'drop';
    if (this.onOutlier !== 'drop' && this.onOutlier !== 'flag')
      throw new WhaleError('ERR_INVALID_OPTION', `onOutlier: 'drop' or 'flag', got ${String(this.onOutlier)}`, {
        field: 'onOutlier',
      });
  }

  /** Shape/dtype/finite problems of one update, or undefined; the norm when it passed. */
  inspect(clientId: string, values: unknown): Refused | { norm: number } {
    if (!(values instanceof Float32Array))
      return { clientId, reason: 'dtype', detail: `expected Float32Array, got ${describe(values)}` };
    if (values.length !== this.o.length)
      return { clientId, reason: 'shape', detail: `${values.length} values, expected ${this.o.length}` };
    let s = 0;
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (!Number.isFinite(v)) return { clientId, reason: 'non-finite', detail: `values[${i}] is ${v}` };
      s += v * v;
    }
    return { norm: Math.sqrt(s) };
  }

  /** Checks a round's updates; outliers relative to the median norm of the valid ones are dropped or flagged. */
  checkRound<U extends CheckedUpdate>(updates: readonly U[]): RoundCheck<U> {
    const refused: Refused[] = [],
      flagged: Refused[] = [];
    const valid: Array<{ u: U; norm: number }> = [];
    for (const u of updates) {
      const r = this.inspect(u.clientId, u.values);
      if ('reason' in r) refused.push(r);
      else valid.push({ u, norm: r.norm });
    }
    const sorted = valid.map((v) => v.norm).sort((a, b) => a - b);
    const n = sorted.length;
    const medianNorm = n === 0 ? NaN : n % 2 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
    const kept: U[] = [];
    const bound = this.normFactor * medianNorm;
    for (const { u, norm } of valid) {
      if (n >= 3 && norm > bound) {
        const r: Refused = {
          clientId: u.clientId,
          reason: 'norm',
          detail: `norm ${norm.toPrecision(4)} > ${this.normFactor} × median ${medianNorm.toPrecision(4)}`,
          norm,
        };
        if (this.onOutlier === 'drop') {
          refused.push(r);
          continue;
        }
        flagged.push(r);
      }
      kept.push(u);
    }
    return { kept, refused, flagged, medianNorm, norms: new Map(valid.map((v) => [v.u.clientId, v.norm])) };
  }
}

/** sha256 of a blob, hex. */
export function contentHash(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** ERR_CHECKSUM naming `field` when the blob's sha256 is not `expected`. */
export function verifyContentHash(bytes: Uint8Array, expected: string, field = 'blob'): void {
  const got = Buffer.from(contentHash(bytes), 'hex'),
    want = Buffer.from(expected, 'hex');
  if (want.length !== got.length || !timingSafeEqual(got, want)) {
    throw new WhaleError(
      'ERR_CHECKSUM',
      `${field}: content hash mismatch (sha256 ${got.toString('hex').slice(0, 16)}…, expected ${expected.slice(0, 16)}…)`,
      { field },
    );
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v !== 'object') return typeof v;
  return (v as object).constructor?.name ?? 'object';
}
