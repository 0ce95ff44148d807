/**
 * A mergeable quantile sketch with relative-error guarantees (the DDSketch
 * construction): a value x > 0 is counted in bucket ceil(log_γ x) with
 * γ = (1 + α)/(1 − α), and a quantile is answered with the bucket's midpoint
 * 2γ^i/(γ + 1), within a factor (1 ± α) of the true sample quantile. Memory
 * grows with log(max/min), not with the number of samples; two sketches with
 * the same α merge by adding bucket counts.
 */
import { WhaleError } from '../../../common/errors.js';

/** Values at or below this count as zero. */
const MIN_POSITIVE = 1e-12;

export class LogSketch {
  private readonly gamma: number;
  private readonly logGamma: number;
  private readonly buckets = new Map<number, number>();
  private zeros = 0;
  count = 0;
  sum = 0;
  min = Infinity;
  max = -Infinity;

  constructor(readonly relativeAccuracy = 0.01) {
    if (!(relativeAccuracy > 0 && relativeAccuracy < 1)) {
      throw new WhaleError('ERR_INVALID_OPTION', 'options.relativeAccuracy: must be in (0, 1)', {
        field: 'options.relativeAccuracy',
      });
    }
    this.gamma = (1 + relativeAccuracy) / (1 - relativeAccuracy);
    this.logGamma = Math.log(this.gamma);
  }

  /** Adds a value >= 0 (latencies, sizes). */
  add(x: number, times = 1): void {
    if (!Number.isFinite(x) || x < 0)
      throw new WhaleError('ERR_INVALID_ARG', `value: must be a finite number >= 0, got ${x}`, { field: 'value' });
    if (x <= MIN_POSITIVE) this.zeros += times;
    else {
      const i = Math.ceil(Math.log(x) / this.logGamma);
      this.buckets.set(i, (this.buckets.get(i) ?? 0) + times);
    }
    this.count += times;
    this.sum += x * times;
    if (x < this.min) this.min = x;
    if (x > this.max) this.max = x;
  }

  merge(other: LogSketch): void {
    if (other.relativeAccuracy !== this.relativeAccuracy) {
      throw new WhaleError('ERR_INVALID_ARG', 'sketch: only sketches with the same relativeAccuracy merge', {
        field: 'sketch',
      });
    }
    for (const [i, c] of other.buckets) this.buckets.set(i, (this.buckets.get(i) ?? 0) + c);
    this.zeros += other.zeros;
    this.count += other.count;
    this.sum += other.sum;
    this.min = Math.min(this.min, other.min);
    this.max = Math.max(this.max, other.max);
  }

  /** The q-quantile (0 ≤ q ≤ 1), NaN when empty; clamped to [min, max]. */
  quantile(q: number): number {
    if (!(q >= 0 && q <= 1)) throw new WhaleError('ERR_INVALID_ARG', `q: must be in [0, 1], got ${q}`, { field: 'q' });
    if (this.count === 0) return NaN;
    const rank = q * (this.count - 1);
    let seen = this.zeros;
    if (rank < seen) return 0;
    for (const i of [...this.buckets.keys()].sort((a, b) => a - b)) {
      seen += this.buckets.get(i)!;
      if (rank < seen) return Math.min(this.max, Math.max(this.min, (2 * this.gamma ** i) / (this.gamma + 1)));
    }
    return this.max;
  }

  get mean(): number {
    return this.count === 0 ? NaN : this.sum / this.count;
  }

  /** Buckets in use (the sketch's size). */
  get size(): number {
    return this.buckets.size + (this.zeros > 0 ? 1 : 0);
  }
}
