/**
 * Plain-TypeScript double-precision reference of the native detector
 * (native/anomaly/detector.cpp), operation for operation in the same order, so
 * tests can compare the two. Slow; use AnomalyDetector in production.
 */
import { WhaleError } from '../../../common/errors.js';
import { ReferenceArtScorer } from './anomaly-art-reference.js';
import {
  resolveAnomalyOptions,
  type AnomalyDetectorOptions,
  type ResolvedAnomalyOptions,
} from './anomaly-detector-options.js';

const LEARN_CAP = 50;
const MIN_BLOCKS = 20;
const MAX_EXCESS = 10;
export const MAX_MAGNITUDE = 1e300;

/** The checks the native detector makes on a value (same codes and messages' field). */
export function checkAnomalyValue(value: unknown, field: string): number {
  if (typeof value !== 'number') throw new WhaleError('ERR_INVALID_ARG', `${field}: expected a number`, { field });
  if (!Number.isFinite(value))
    throw new WhaleError('ERR_NON_FINITE', `${field}: must be a finite number, got ${value}`, { field });
  if (Math.abs(value) > MAX_MAGNITUDE)
    throw new WhaleError('ERR_INVALID_ARG', `${field}: magnitude above 1e300 is not supported`, { field });
  return value;
}

class ReferenceLevel {
  private filled = 0;
  private muted = 0;
  private acc = 0;
  private blocks = 0;
  private used = 0;
  private meanDist = 0;
  private rate = 0;
  private peak = 1;
  private readonly win: Float64Array;
  private readonly book: Float64Array;
  private readonly count: Float64Array;
  private readonly last: Float64Array;
  private readonly dist: Float64Array;

  constructor(
    private readonly o: ResolvedAnomalyOptions,
    private readonly block: number,
    private readonly span: number,
  ) {
    this.win = new Float64Array(o.window);
    this.book = new Float64Array(o.window * o.codebookSize);
    this.count = new Float64Array(o.codebookSize);
    this.last = new Float64Array(o.codebookSize);
    this.dist = new Float64Array(o.codebookSize);
  }

  mute(): void {
    this.muted = this.o.window * this.block;
  }

  push(x: number, scale: number, invScale: number, scoring: boolean): number {
    if (this.muted > 0) {
      this.muted--;
      scoring = false;
    }
    this.acc += x;
    if (++this.filled < this.block) return 0;
    const v = this.acc / this.block;
    this.acc = 0;
    this.filled = 0;
    const w = this.o.window;
    const K = this.o.codebookSize;
    this.win.copyWithin(0, 1);
    this.win[w - 1] = v;
    if (this.blocks++ < w - 1) return 0;
    this.dist.fill(0, 0, this.used);
    for (let j = 0; j < w; j++) {
      const wj = this.win[j]!;
      for (let k = 0; k < this.used; k++) {
        const e = (wj - this.book[j * K + k]!) * invScale;
        this.dist[k]! += e * e;
      }
    }
    let best = Infinity;
    let bi = -1;
    for (let k = 0; k < this.used; k++) {
      if (this.dist[k]! < best) {
        best = this.dist[k]!;
        bi = k;
      }
    }
    const dist = Math.sqrt(best / w);
    const vig = Math.max(this.o.spread * this.meanDist * invScale, this.o.vigilance);
    const novel = bi < 0 || dist > vig;
    let out = 0;
    if (scoring && novel && this.blocks > w + MIN_BLOCKS) {
      const excess = bi < 0 ? MAX_EXCESS : Math.min(dist / vig, MAX_EXCESS);
      const r = excess / this.peak;
      out = Math.max(0, 1 - (this.rate * this.span) / (r * r));
    }
    const a = Math.min(this.block / this.o.rateHorizon, 1);
    this.rate += a * ((novel ? 1 : 0) - this.rate);
    this.peak += a * (1 - this.peak);
    if (novel && bi >= 0) this.peak = Math.max(this.peak, Math.min(dist / vig, MAX_EXCESS));
    if (bi >= 0)
      this.meanDist += a * (Math.min(dist * scale, 4 * this.meanDist + this.o.vigilance * scale) - this.meanDist);
    if (novel) {
      let slot = 0;
      if (this.used < K) slot = this.used++;
      else for (let k = 1; k < K; k++) if (this.last[k]! < this.last[slot]!) slot = k;
      for (let j = 0; j < w; j++) this.book[j * K + slot] = this.win[j]!;
      this.count[slot] = 1;
      this.last[slot] = this.blocks;
    } else {
      const c = Math.min(this.count[bi]! + 1, LEARN_CAP);
      this.count[bi] = c;
      this.last[bi] = this.blocks;
      for (let j = 0; j < w; j++) {
        const i = j * K + bi;
        this.book[i]! += (this.win[j]! - this.book[i]!) / c;
      }
    }
    return out;
  }
}

export class ReferenceAnomalyDetector {
  readonly options: ResolvedAnomalyOptions;
  private n = 0;
  private min = 0;
  private max = 0;
  private hold = 0;
  private rangeRate = 0;
  private levels: ReferenceLevel[] = [];
  private art: ReferenceArtScorer | undefined;

  constructor(options?: AnomalyDetectorOptions) {
    this.options = resolveAnomalyOptions(options);
    this.reset();
  }

  reset(): void {
    this.n = this.min = this.max = this.hold = this.rangeRate = 0;
    this.levels = [];
    const slowest = 4 ** (this.options.levels - 1);
    if (this.options.method !== 'art') {
      for (let l = 0, block = 1; l < this.options.levels; l++, block *= 4)
        this.levels.push(new ReferenceLevel(this.options, block, slowest / block));
    }
    this.art = this.options.method === 'whale' ? undefined : new ReferenceArtScorer(this.options);
  }

  /** The score of one point, in [0, 1]. */
  update(value: number): number {
    const x = checkAnomalyValue(value, 'value');
    const o = this.options;
    const warm = this.n >= o.warmupPoints;
    let out: number;
    if (o.method === 'whale') out = this.whale(x, warm);
    else if (o.method === 'art') out = this.art!.push(x, warm);
    else out = 0.5 * (this.whale(x, warm) + this.art!.push(x, warm));
    this.n++;
    if (!warm) return 0;
    if (this.hold > 0) {
      this.hold--;
      return 0;
    }
    if (out >= o.threshold) this.hold = o.refractoryPoints;
    return out;
  }

  /** The whale detector's raw score of x (this.n points before it). */
  private whale(x: number, warm: boolean): number {
    const o = this.options;
    let outside = false;
    let rangeScore = 0;
    if (this.n === 0) {
      this.min = this.max = x;
    } else {
      const margin = o.rangeTolerance * (this.max - this.min);
      const beyond = x > this.max + margin || x < this.min - margin;
      outside = warm && beyond;
      if (beyond) for (const level of this.levels) level.mute();
      rangeScore = 1 - this.rangeRate;
      const a = Math.max(1 / o.rateHorizon, 1 / this.n);
      this.rangeRate += a * ((beyond ? 1 : 0) - this.rangeRate);
      this.min = Math.min(this.min, x);
      this.max = Math.max(this.max, x);
    }
    const scale = Math.max(this.max - this.min, 1e-12 * Math.max(Math.abs(this.max), Math.abs(this.min)), 1e-300);
    const invScale = 1 / scale;
    let out = 0;
    for (const level of this.levels) out = Math.max(out, level.push(x, scale, invScale, warm));
    if (outside) out = Math.max(out, rangeScore);
    return out;
  }
}
