/**
 * The router's exploration arithmetic (see route-optimizer.ts): the optimism
 * bonus in units of the quality feedback's own spread, the per-context cap on
 * explorations, and the per-feature decision counts a context is measured by.
 */

/** The largest variance of a reward in [0, 1]: the spread assumed before the feedback shows its own. */
export const NOISE_PRIOR = 0.25;
/** Smallest variance used for the bonus (σ = 0.01), so a perfectly steady reward still has some width. */
export const NOISE_FLOOR = 1e-4;
/**
 * Empirical Bernstein bound (UCB-V, Audibert, Munos & Szepesvári 2009): σ·√(2ζ ln t/n) + 3bζ ln t/n.
 * With α = √(2ζ ln t) and range b = 1, the second term is 1.5·α²/n.
 */
const RANGE_TERM = 1.5;

/** α·(σ̂·w + 1.5·α·w²) for a variance σ̂² and a LinUCB width w = √(xᵀA⁻¹x) (≈ 1/√tries in a one-hot context). */
export function optimism(alpha: number, variance: number, width: number): number {
  return alpha * (Math.sqrt(variance) * width + RANGE_TERM * alpha * width * width);
}

/**
 * Explorations allowed among n decisions of a context with k arms: (k·n²)^⅓, i.e. a share of
 * about (k/n)^⅓, ε-greedy's schedule when the gaps are unknown (regret O(n^⅔)).
 */
export function exploreBudget(k: number, n: number): number {
  return Math.cbrt(k * n * n);
}

/** The smallest count among x's features: the decisions made in x's context, at most (x is one-hot per group). */
export function minOver(counts: Float64Array, x: ArrayLike<number>): number {
  let m = Infinity;
  for (let k = 0; k < x.length; k++) if (counts[x[k]!]! < m) m = counts[x[k]!]!;
  return m;
}

export function fadeAll(v: Float64Array, g: number): void {
  for (let i = 0; i < v.length; i++) v[i]! *= g;
}
