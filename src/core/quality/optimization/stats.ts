/** Interval estimates and two-sample tests used on feedback and quality figures. */

/** Standard normal CDF (Abramowitz–Stegun 7.1.26, |error| < 1.5e-7). */
export function normalCdf(x: number): number {
  const t = 1 / (1 + (0.3275911 * Math.abs(x)) / Math.SQRT2);
  const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const erf = 1 - poly * Math.exp(-(x * x) / 2);
  return x >= 0 ? (1 + erf) / 2 : (1 - erf) / 2;
}

export interface Interval {
  estimate: number;
  low: number;
  high: number;
  n: number;
}

/** Wilson score interval of a rate (z = 1.96: 95 %). n = 0 gives [0, 1] around NaN. */
export function wilson(successes: number, n: number, z = 1.96): Interval {
  if (n === 0) return { estimate: NaN, low: 0, high: 1, n };
  const p = successes / n;
  const z2 = z * z;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / (1 + z2 / n);
  return { estimate: p, low: Math.max(0, centre - half), high: Math.min(1, centre + half), n };
}

/** Normal interval of a mean from its sum and sum of squares. */
export function meanInterval(sum: number, sumSq: number, n: number, z = 1.96): Interval {
  if (n === 0) return { estimate: NaN, low: NaN, high: NaN, n };
  const mean = sum / n;
  const variance = n > 1 ? Math.max(0, (sumSq - n * mean * mean) / (n - 1)) : 0;
  const half = z * Math.sqrt(variance / n);
  return { estimate: mean, low: mean - half, high: mean + half, n };
}

/** One-sided p-value that rate b is below rate a (pooled two-proportion z-test). */
export function proportionDropP(successA: number, nA: number, successB: number, nB: number): number {
  if (nA === 0 || nB === 0) return 1;
  const pooled = (successA + successB) / (nA + nB);
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / nA + 1 / nB));
  if (se === 0) return successB / nB < successA / nA ? 0 : 1;
  return normalCdf((successB / nB - successA / nA) / se);
}

/** One-sided p-value that mean b is below mean a (Welch z-test on sums and squares). */
export function meanDropP(
  a: { sum: number; sumSq: number; n: number },
  b: { sum: number; sumSq: number; n: number },
): number {
  if (a.n < 2 || b.n < 2) return 1;
  const ma = a.sum / a.n;
  const mb = b.sum / b.n;
  const va = Math.max(0, (a.sumSq - a.n * ma * ma) / (a.n - 1));
  const vb = Math.max(0, (b.sumSq - b.n * mb * mb) / (b.n - 1));
  const se = Math.sqrt(va / a.n + vb / b.n);
  if (se === 0) return mb < ma ? 0 : 1;
  return normalCdf((mb - ma) / se);
}
