/**
 * Ridge regression of a reward on the context features, as LinUCB keeps it
 * per arm: A = λI + Σ x xᵀ, b = Σ r x, θ = A⁻¹b; the estimate for x is θᵀx
 * with uncertainty √(xᵀA⁻¹x). With a discount γ < 1 old observations fade
 * (A ← γA + (1 − γ)λI + x xᵀ, b ← γb + r x), so the arm follows a changing
 * environment while A stays well conditioned. When γ = 1 an update is
 * recursive least squares (Sherman–Morrison on A⁻¹, θ ← θ + u(r − xᵀθ)/(1 + xᵀu)
 * with u = A⁻¹x), touching only the features seen so far; else Gauss–Jordan on
 * the small d×d matrix. Features are one-hot: x is given as the indices of its
 * 1 entries, so an estimate costs O(nnz²) whatever d is.
 *
 * The arm also learns the reward's noise: a second regression on the same
 * design, of the standardized innovation e²/(1 + xᵀA⁻¹x), e = r − θᵀx taken
 * before the update (its expectation is σ² when the model is right: RLS's
 * noise estimate), learned around `noisePrior` so that a context with few
 * observations keeps the prior. `noise(x)` is that variance estimate, for a
 * confidence width in units of the observed spread (variance-aware LinUCB).
 */
export class LinearArm {
  private readonly A: Float64Array | undefined;
  private readonly Ainv: Float64Array;
  private readonly b: Float64Array;
  private readonly theta: Float64Array;
  private readonly bNoise: Float64Array;
  private readonly thetaNoise: Float64Array;
  private readonly u: Float64Array;
  private readonly work: Float64Array | undefined;
  /** Features seen in some update, in first-seen order; A⁻¹ differs from I/λ only on these. */
  private readonly active: Int32Array;
  private readonly isActive: Uint8Array;
  private activeN = 0;
  observations = 0;

  constructor(
    readonly dim: number,
    private readonly ridge: number,
    private readonly discount: number,
    private readonly noisePrior = 0.25,
  ) {
    this.Ainv = new Float64Array(dim * dim);
    for (let i = 0; i < dim; i++) this.Ainv[i * dim + i] = 1 / ridge;
    if (discount !== 1) {
      this.A = new Float64Array(dim * dim);
      for (let i = 0; i < dim; i++) this.A[i * dim + i] = ridge;
      this.work = new Float64Array(dim * dim * 2);
    }
    this.b = new Float64Array(dim);
    this.theta = new Float64Array(dim);
    this.bNoise = new Float64Array(dim);
    this.thetaNoise = new Float64Array(dim);
    this.u = new Float64Array(dim);
    this.active = new Int32Array(dim);
    this.isActive = new Uint8Array(dim);
  }

  /** θᵀx. */
  mean(x: ArrayLike<number>): number {
    let s = 0;
    for (let i = 0; i < x.length; i++) s += this.theta[x[i]!]!;
    return s;
  }

  /** √(xᵀA⁻¹x). */
  width(x: ArrayLike<number>): number {
    const d = this.dim;
    let s = 0;
    for (let i = 0; i < x.length; i++) {
      const row = x[i]! * d;
      for (let j = 0; j < x.length; j++) s += this.Ainv[row + x[j]!]!;
    }
    return Math.sqrt(Math.max(0, s));
  }

  /** The reward's variance at x as learned from the prediction errors, within [floor, noisePrior]. */
  noise(x: ArrayLike<number>, floor: number): number {
    let s = this.noisePrior;
    for (let i = 0; i < x.length; i++) s += this.thetaNoise[x[i]!]!;
    return s < floor ? floor : s > this.noisePrior ? this.noisePrior : s;
  }

  update(x: ArrayLike<number>, reward: number): void {
    for (let k = 0; k < x.length; k++) {
      const f = x[k]!;
      if (this.isActive[f] === 0) {
        this.isActive[f] = 1;
        this.active[this.activeN++] = f;
      }
    }
    const err = reward - this.mean(x);
    if (this.discount === 1) this.recursive(x, err);
    else {
      const w = this.width(x);
      this.discounted(x, reward, (err * err) / (1 + w * w) - this.noisePrior);
    }
    this.observations++;
  }

  private recursive(x: ArrayLike<number>, err: number): void {
    const d = this.dim;
    const n = this.activeN;
    const act = this.active;
    const Ainv = this.Ainv;
    const u = this.u;
    let denom = 1;
    for (let a = 0; a < n; a++) {
      const row = act[a]! * d;
      let s = 0;
      for (let k = 0; k < x.length; k++) s += Ainv[row + x[k]!]!;
      u[act[a]!] = s;
    }
    for (let k = 0; k < x.length; k++) denom += u[x[k]!]!;
    const noiseTarget = (err * err) / denom - this.noisePrior; // denom = 1 + xᵀA⁻¹x
    let noisePred = 0;
    for (let k = 0; k < x.length; k++) noisePred += this.thetaNoise[x[k]!]!;
    const g = err / denom;
    const gNoise = (noiseTarget - noisePred) / denom;
    for (let a = 0; a < n; a++) {
      const i = act[a]!;
      const ui = u[i]!;
      this.theta[i]! += ui * g;
      this.thetaNoise[i]! += ui * gNoise;
      const row = i * d;
      const c = ui / denom;
      for (let b = 0; b < n; b++) {
        const j = act[b]!;
        Ainv[row + j]! -= c * u[j]!;
      }
    }
  }

  private discounted(x: ArrayLike<number>, reward: number, noiseTarget: number): void {
    const d = this.dim;
    const g = this.discount;
    const A = this.A!;
    const shrink = (1 - g) * this.ridge;
    for (let i = 0; i < d; i++) {
      this.b[i] = g * this.b[i]!;
      this.bNoise[i] = g * this.bNoise[i]!;
      for (let j = 0; j < d; j++) A[i * d + j] = g * A[i * d + j]! + (i === j ? shrink : 0);
    }
    for (let k = 0; k < x.length; k++) {
      const i = x[k]!;
      this.b[i]! += reward;
      this.bNoise[i]! += noiseTarget;
      for (let l = 0; l < x.length; l++) A[i * d + x[l]!]! += 1;
    }
    this.invert();
    for (let i = 0; i < d; i++) {
      let s = 0;
      let sn = 0;
      for (let j = 0; j < d; j++) {
        s += this.Ainv[i * d + j]! * this.b[j]!;
        sn += this.Ainv[i * d + j]! * this.bNoise[j]!;
      }
      this.theta[i] = s;
      this.thetaNoise[i] = sn;
    }
  }

  /** Gauss–Jordan with partial pivoting on [A | I]; A is symmetric positive definite. */
  private invert(): void {
    const d = this.dim;
    const w = this.work!;
    const A = this.A!;
    const cols = 2 * d;
    for (let i = 0; i < d; i++) {
      for (let j = 0; j < d; j++) {
        w[i * cols + j] = A[i * d + j]!;
        w[i * cols + d + j] = i === j ? 1 : 0;
      }
    }
    for (let c = 0; c < d; c++) {
      let p = c;
      for (let r = c + 1; r < d; r++) if (Math.abs(w[r * cols + c]!) > Math.abs(w[p * cols + c]!)) p = r;
      if (p !== c)
        for (let k = 0; k < cols; k++) [w[c * cols + k], w[p * cols + k]] = [w[p * cols + k]!, w[c * cols + k]!];
      const pivot = w[c * cols + c]!;
      for (let k = 0; k < cols; k++) w[c * cols + k]! /= pivot;
      for (let r = 0; r < d; r++) {
        if (r === c) continue;
        const f = w[r * cols + c]!;
        if (f === 0) continue;
        for (let k = 0; k < cols; k++) w[r * cols + k]! -= f * w[c * cols + k]!;
      }
    }
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) this.Ainv[i * d + j] = w[i * cols + d + j]!;
  }
}
