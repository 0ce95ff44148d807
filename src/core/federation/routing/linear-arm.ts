/**
 * Ridge regression of a reward on the context features, as LinUCB keeps it
 * per arm: A = λI + Σ x xᵀ, b = Σ r x, θ = A⁻¹b; the estimate for x is θᵀx
 * with uncertainty √(xᵀA⁻¹x). With a discount γ < 1 old observations fade
 * (A ← γA + (1 − γ)λI + x xᵀ, b ← γb + r x), so the arm follows a changing
 * environment while A stays well conditioned. A⁻¹ is refreshed on update
 * (Sherman–Morrison when γ = 1, else Gauss–Jordan on the small d×d matrix).
 * Features are one-hot: x is given as the indices of its 1 entries, so an
 * estimate costs O(nnz²) whatever d is.
 */
export class LinearArm {
  private readonly A: Float64Array;
  private readonly Ainv: Float64Array;
  private readonly b: Float64Array;
  private readonly theta: Float64Array;
  private readonly work: Float64Array;
  observations = 0;

  constructor(readonly dim: number, private readonly ridge: number, private readonly discount: number) {
    this.A = new Float64Array(dim * dim);
    this.Ainv = new Float64Array(dim * dim);
    for (let i = 0; i < dim; i++) {
      this.A[i * dim + i] = ridge;
      this.Ainv[i * dim + i] = 1 / ridge;
    }
    this.b = new Float64Array(dim);
    this.theta = new Float64Array(dim);
    this.work = new Float64Array(dim * dim * 2);
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
    for (let i = 0; i < x.length; i++) for (let j = 0; j < x.length; j++) s += this.Ainv[x[i]! * d + x[j]!]!;
    return Math.sqrt(Math.max(0, s));
  }

  update(indices: ArrayLike<number>, reward: number): void {
    const d = this.dim;
    const x = new Float64Array(d);
    for (let i = 0; i < indices.length; i++) x[indices[i]!] = 1;
    if (this.discount === 1) this.shermanMorrison(x, indices, reward);
    else this.discounted(x, reward);
    for (let i = 0; i < d; i++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += this.Ainv[i * d + j]! * this.b[j]!;
      this.theta[i] = s;
    }
    this.observations++;
  }

  /** A⁻¹ ← A⁻¹ − (A⁻¹x)(A⁻¹x)ᵀ / (1 + xᵀA⁻¹x) (A itself is only kept for the discounted form). */
  private shermanMorrison(x: Float64Array, indices: ArrayLike<number>, reward: number): void {
    const d = this.dim;
    const u = this.work.subarray(0, d);
    let denom = 1;
    for (let i = 0; i < d; i++) {
      let s = 0;
      for (let k = 0; k < indices.length; k++) s += this.Ainv[i * d + indices[k]!]!;
      u[i] = s;
      denom += x[i]! * s;
    }
    for (let i = 0; i < d; i++) {
      this.b[i]! += reward * x[i]!;
      for (let j = 0; j < d; j++) {
        this.Ainv[i * d + j]! -= (u[i]! * u[j]!) / denom;
      }
    }
  }

  private discounted(x: Float64Array, reward: number): void {
    const d = this.dim;
    const g = this.discount;
    const shrink = (1 - g) * this.ridge;
    for (let i = 0; i < d; i++) {
      this.b[i] = g * this.b[i]! + reward * x[i]!;
      for (let j = 0; j < d; j++) this.A[i * d + j] = g * this.A[i * d + j]! + x[i]! * x[j]! + (i === j ? shrink : 0);
    }
    this.invert();
  }

  /** Gauss–Jordan with partial pivoting on [A | I]; A is symmetric positive definite. */
  private invert(): void {
    const d = this.dim;
    const w = this.work;
    const cols = 2 * d;
    for (let i = 0; i < d; i++) {
      for (let j = 0; j < d; j++) {
        w[i * cols + j] = this.A[i * d + j]!;
        w[i * cols + d + j] = i === j ? 1 : 0;
      }
    }
    for (let c = 0; c < d; c++) {
      let p = c;
      for (let r = c + 1; r < d; r++) if (Math.abs(w[r * cols + c]!) > Math.abs(w[p * cols + c]!)) p = r;
      if (p !== c) for (let k = 0; k < cols; k++) [w[c * cols + k], w[p * cols + k]] = [w[p * cols + k]!, w[c * cols + k]!];
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
