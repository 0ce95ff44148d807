/**
 * Plain-TypeScript double-precision reference of the native ART scorer
 * (native/anomaly/art_detector.cpp, which documents the method), operation for
 * operation in the same order, so tests can compare the two. Slow; use
 * AnomalyDetector({ method: 'art' }) in production.
 */
import type { ResolvedAnomalyOptions } from './anomaly-detector-options.js';

/** Fuzzy ART's choice parameter (Carpenter, Grossberg and Rosen 1991). */
export const ART_ALPHA = 1e-3;
/** A new cluster this many times the allowed size (or the first one) counts as maximally novel. */
export const ART_MAX_EXCESS = 10;
/** Blocks a time scale sees before it may score. */
export const ART_MIN_BLOCKS = 20;

/** One time scale: Fuzzy ART categories over windows of block means. */
class ReferenceArtLevel {
  private filled = 0;
  private acc = 0;
  private blocks = 0;
  private used = 0;
  private rate = 0;
  private peak = 1;
  private meanDeficit = 0;
  private readonly win: Float64Array;
  private readonly lo: Float64Array;
  private readonly hi: Float64Array;
  private readonly size: Float64Array;
  private readonly last: Float64Array;

  constructor(
    private readonly o: ResolvedAnomalyOptions,
    private readonly block: number,
    private readonly span: number,
  ) {
    this.win = new Float64Array(o.artWindow);
    this.lo = new Float64Array(o.artWindow * o.artCategories);
    this.hi = new Float64Array(o.artWindow * o.artCategories);
    this.size = new Float64Array(o.artCategories);
    this.last = new Float64Array(o.artCategories);
  }

  categories(): number {
    return this.used;
  }

  push(x: number, range: number, scoring: boolean): number {
    const o = this.o;
    this.acc += x;
    if (++this.filled < this.block) return 0;
    const v = this.acc / this.block;
    this.acc = 0;
    this.filled = 0;
    const w = o.artWindow;
    const K = o.artCategories;
    this.win.copyWithin(0, 1);
    this.win[w - 1] = v;
    if (this.blocks++ < w - 1) return 0;

    const inv = 1 / range;
    // Per-series vigilance: with artSpread > 0 a mismatch is also judged against the level's
    // typical one (artSpread x the mean best-match deficit, kept in value units).
    const gap = Math.max(1 - o.artVigilanceLow, o.artSpread * this.meanDeficit * inv);
    const low = 1 - gap;
    const high = 1 - gap * ((1 - o.artVigilance) / (1 - o.artVigilanceLow));
    let bestT = -Infinity;
    let bi = -1;
    let biM = 0;
    let bestM = -Infinity;
    for (let k = 0; k < this.used; k++) {
      let enl = 0;
      for (let j = 0; j < w; j++) {
        const xj = this.win[j]!;
        enl += Math.max(this.hi[j * K + k]!, xj) - Math.min(this.lo[j * K + k]!, xj);
      }
      const e = enl * inv;
      const m = 1 - e / w;
      const t = (w - e) / (ART_ALPHA + w - this.size[k]! * inv);
      if (m > bestM) bestM = m;
      if (m >= low && t > bestT) {
        bestT = t;
        bi = k;
        biM = m;
      }
    }
    const newCluster = bi < 0;
    const excess = this.used === 0 ? ART_MAX_EXCESS : Math.min((1 - bestM) / gap, ART_MAX_EXCESS);
    let out = 0;
    if (scoring && newCluster && this.blocks > w + ART_MIN_BLOCKS) {
      const r = excess / this.peak;
      out = Math.max(0, 1 - (this.rate * this.span) / (r * r));
    }
    const a = Math.min(this.block / o.rateHorizon, 1);
    this.rate += a * ((newCluster ? 1 : 0) - this.rate);
    this.peak += a * (1 - this.peak);
    if (newCluster && this.used > 0) this.peak = Math.max(this.peak, excess);
    if (this.used > 0)
      this.meanDeficit += a * (Math.min((1 - bestM) * range, 4 * this.meanDeficit + gap * range) - this.meanDeficit);

    if (bi >= 0 && biM >= high) {
      // Resonance: Fuzzy ART learning, w <- beta (I ^ w) + (1 - beta) w, on the box corners.
      const beta = o.artLearningRate;
      let size = 0;
      for (let j = 0; j < w; j++) {
        const i = j * K + bi;
        const xj = this.win[j]!;
        this.lo[i] = beta * Math.min(this.lo[i]!, xj) + (1 - beta) * this.lo[i]!;
        this.hi[i] = beta * Math.max(this.hi[i]!, xj) + (1 - beta) * this.hi[i]!;
        size += this.hi[i]! - this.lo[i]!;
      }
      this.size[bi] = size;
      this.last[bi] = this.blocks;
    } else {
      // A new category (in the cluster of \`bi\`, or a new cluster): fast commit; when the set is
      // full, the least recently chosen category makes room.
      let slot = 0;
      if (this.used < K) slot = this.used++;
      else for (let k = 1; k < K; k++) if (this.last[k]! < this.last[slot]!) slot = k;
      for (let j = 0; j < w; j++) this.lo[j * K + slot] = this.hi[j * K + slot] = this.win[j]!;
      this.size[slot] = 0;
      this.last[slot] = this.blocks;
    }
    return out;
  }
}

/** The raw ART score of each point (no warm-up or refractory gating: the caller applies them). */
export class ReferenceArtScorer {
  private n = 0;
  private min = 0;
  private max = 0;
  private readonly levels: ReferenceArtLevel[] = [];

  constructor(o: ResolvedAnomalyOptions) {
    const slowest = 4 ** (o.levels - 1);
    for (let l = 0, block = 1; l < o.levels; l++, block *= 4)
      this.levels.push(new ReferenceArtLevel(o, block, slowest / block));
  }

  /** Categories in use, per time scale. */
  categories(): number[] {
    return this.levels.map((l) => l.categories());
  }

  push(x: number, scoring: boolean): number {
    if (this.n++ === 0) this.min = this.max = x;
    this.min = Math.min(this.min, x);
    this.max = Math.max(this.max, x);
    const range = Math.max(this.max - this.min, 1e-12 * Math.max(Math.abs(this.max), Math.abs(this.min)), 1e-300);
    let out = 0;
    for (const level of this.levels) out = Math.max(out, level.push(x, range, scoring));
    return out;
  }
}
