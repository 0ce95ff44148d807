/**
 * Rényi DP of the sampled Gaussian mechanism (Mironov 2017; Mironov, Talwar,
 * Zhang 2019, "Rényi Differential Privacy of the Sampled Gaussian Mechanism")
 * and its conversion to (ε, δ) with the bound of Balle et al. 2020
 * ("Hypothesis testing interpretations and Rényi DP", Prop. 12), as Opacus and
 * dp_accounting compute it.
 *
 * The mechanism: each of T steps samples every record (here: every client)
 * with probability q and adds N(0, σ²·C²) to the sum of updates clipped to C.
 */
import { WhaleError } from '../../../common/errors.js';
import { logAbsBinom, logAdd, logErfc, logSub } from './log-math.js';

/** Opacus's default orders: 1 + x/10 for x = 1..99, then 12..63. */
export const DEFAULT_ORDERS: readonly number[] = Object.freeze([
  ...Array.from({ length: 99 }, (_, i) => 1 + (i + 1) / 10),
  ...Array.from({ length: 52 }, (_, i) => 12 + i),
]);

/** log A_α for an integer order: a finite binomial sum. */
function logAInt(q: number, sigma: number, alpha: number): number {
  let logA = -Infinity;
  const lq = Math.log(q),
    l1q = Math.log1p(-q);
  for (let i = 0; i <= alpha; i++) {
    const s = logAbsBinom(alpha, i) + i * lq + (alpha - i) * l1q + (i * i - i) / (2 * sigma * sigma);
    logA = logAdd(logA, s);
  }
  return logA;
}

/** Terms of the fractional series tried before falling back to the convexity bound. */
const FRACTIONAL_SERIES_TERMS = 10_000;

/**
 * log A_α for a fractional order: the two-sided series of Mironov et al. 2019, Sec. 3.3,
 * or undefined when it has not converged within FRACTIONAL_SERIES_TERMS terms (large σ
 * with q near 1/2 makes its terms decay only polynomially: millions of terms).
 */
function logAFrac(q: number, sigma: number, alpha: number): number | undefined {
  let logA0 = -Infinity,
    logA1 = -Infinity;
  const z0 = sigma * sigma * Math.log(1 / q - 1) + 0.5;
  const lq = Math.log(q),
    l1q = Math.log1p(-q),
    s2 = Math.SQRT2 * sigma;
  // binom(α, i)'s sign and log magnitude, updated term by term in the order logAbsBinom sums
  // them (the same doubles, in O(1) a term instead of O(i)).
  let sign = 1,
    logCoef = 0;
  for (let i = 0; i < FRACTIONAL_SERIES_TERMS; i++) {
    if (i > 0) {
      const f = alpha - i + 1;
      logCoef += Math.log(Math.abs(f / i));
      if (f < 0) sign = -sign;
    }
    const j = alpha - i;
    const logS0 =
      logCoef + i * lq + j * l1q + (i * i - i) / (2 * sigma * sigma) + Math.log(0.5) + logErfc((i - z0) / s2);
    const logS1 =
      logCoef + j * lq + i * l1q + (j * j - j) / (2 * sigma * sigma) + Math.log(0.5) + logErfc((z0 - j) / s2);
    if (sign > 0) {
      logA0 = logAdd(logA0, logS0);
      logA1 = logAdd(logA1, logS1);
    } else if (sign < 0) {
      logA0 = logSub(logA0, logS0);
      logA1 = logSub(logA1, logS1);
    }
    if (Math.max(logS0, logS1) < -30) return logAdd(logA0, logA1);
  }
  return undefined;
}

/**
 * An upper bound of log A_α between the integer orders around α: A_α = E[exp(α·L)] is a
 * moment generating function, so log A_α is convex in α and lies below the chord
 * (A_1 = 1). The ε it gives is a valid, slightly conservative bound, at a cost of
 * O(α) terms whatever σ is.
 */
function logAChord(q: number, sigma: number, alpha: number): number {
  const lo = Math.floor(alpha),
    hi = lo + 1,
    t = alpha - lo;
  const logLo = lo === 1 ? 0 : logAInt(q, sigma, lo);
  return (1 - t) * logLo + t * logAInt(q, sigma, hi);
}

/** RDP of one step at order α (> 1). */
function rdpOneStep(q: number, sigma: number, alpha: number): number {
  if (q === 0) return 0;
  if (sigma === 0) return Infinity;
  if (q === 1) return alpha / (2 * sigma * sigma);
  if (alpha === Infinity) return Infinity;
  const logA = Number.isInteger(alpha)
    ? logAInt(q, sigma, alpha)
    : (logAFrac(q, sigma, alpha) ?? logAChord(q, sigma, alpha));
  return logA / (alpha - 1);
}

export interface SampledGaussian {
  /** Sampling rate q in [0, 1]. */
  sampleRate: number;
  /** σ: noise standard deviation over the clipping norm (>= 0). */
  noiseMultiplier: number;
  /** Number of steps (rounds) T. */
  steps: number;
}

function checkMechanism(m: SampledGaussian): void {
  if (!(typeof m.sampleRate === 'number' && m.sampleRate >= 0 && m.sampleRate <= 1)) {
    throw new WhaleError('ERR_INVALID_ARG', `sampleRate: must be a number in [0, 1], got ${m.sampleRate}`, {
      field: 'sampleRate',
    });
  }
  if (!(typeof m.noiseMultiplier === 'number' && m.noiseMultiplier >= 0 && Number.isFinite(m.noiseMultiplier))) {
    throw new WhaleError('ERR_INVALID_ARG', `noiseMultiplier: must be a finite number >= 0, got ${m.noiseMultiplier}`, {
      field: 'noiseMultiplier',
    });
  }
  if (!(Number.isInteger(m.steps) && m.steps >= 0)) {
    throw new WhaleError('ERR_INVALID_ARG', `steps: must be an integer >= 0, got ${m.steps}`, { field: 'steps' });
  }
}

/** Integer orders cost O(α) terms; orders beyond this bound nothing useful. */
const MAX_ORDER = 10_000;

function checkOrders(orders: readonly number[]): void {
  if (orders.length === 0) throw new WhaleError('ERR_INVALID_ARG', 'orders: must not be empty', { field: 'orders' });
  orders.forEach((a, i) => {
    if (!(typeof a === 'number' && a > 1 && (a <= MAX_ORDER || a === Infinity))) {
      throw new WhaleError(
        'ERR_INVALID_ARG',
        `orders[${i}]: must be a number in (1, ${MAX_ORDER}] or Infinity, got ${a}`,
        { field: `orders[${i}]` },
      );
    }
  });
}

/** RDP ε_α of T steps at each order (RDP composes additively). */
export function computeRdp(m: SampledGaussian, orders: readonly number[] = DEFAULT_ORDERS): number[] {
  checkMechanism(m);
  checkOrders(orders);
  return orders.map((a) => rdpOneStep(m.sampleRate, m.noiseMultiplier, a) * m.steps);
}

export interface PrivacySpent {
  epsilon: number;
  /** The order at which the bound is tightest (NaN when ε is infinite). */
  order: number;
}

/**
 * (ε, δ) from RDP values: ε = min over α of rdp_α + log((α-1)/α) - (log δ + log α)/(α-1)
 * (Balle et al. 2020), never below 0.
 */
export function rdpToEpsilon(
  rdp: readonly number[],
  delta: number,
  orders: readonly number[] = DEFAULT_ORDERS,
): PrivacySpent {
  if (!(typeof delta === 'number' && delta > 0 && delta < 1)) {
    throw new WhaleError('ERR_INVALID_ARG', `delta: must be a number in (0, 1), got ${delta}`, { field: 'delta' });
  }
  checkOrders(orders);
  if (rdp.length !== orders.length)
    throw new WhaleError('ERR_SHAPE_MISMATCH', `rdp: ${rdp.length} values for ${orders.length} orders`, {
      field: 'rdp',
    });
  let best = Infinity,
    order = NaN;
  for (let i = 0; i < orders.length; i++) {
    const a = orders[i]!;
    const eps = rdp[i]! + Math.log((a - 1) / a) - (Math.log(delta) + Math.log(a)) / (a - 1);
    if (eps < best) {
      best = eps;
      order = a;
    }
  }
  return { epsilon: Math.max(0, best), order };
}

/** ε for δ after T steps of the sampled Gaussian mechanism, and the optimal order. */
export function epsilonFor(
  m: SampledGaussian,
  delta: number,
  orders: readonly number[] = DEFAULT_ORDERS,
): PrivacySpent {
  return rdpToEpsilon(computeRdp(m, orders), delta, orders);
}

export interface NoiseSearch {
  sampleRate: number;
  steps: number;
  targetEpsilon: number;
  delta: number;
  /** Stop when the ε reached is within this of the target (Opacus's default 0.01). */
  epsilonTolerance?: number;
  orders?: readonly number[];
}

const MAX_SIGMA = 1e6;

/**
 * The smallest σ (to the tolerance) whose ε is at most the target: Opacus's
 * get_noise_multiplier search (double σ from 20 until ε fits, then bisect from 0),
 * so the σ it returns is the one Opacus returns.
 */
export function noiseMultiplierFor(s: NoiseSearch): number {
  if (!(typeof s.targetEpsilon === 'number' && s.targetEpsilon > 0 && Number.isFinite(s.targetEpsilon))) {
    throw new WhaleError('ERR_INVALID_ARG', `targetEpsilon: must be a finite number > 0, got ${s.targetEpsilon}`, {
      field: 'targetEpsilon',
    });
  }
  const tol = s.epsilonTolerance ?? 0.01;
  if (!(tol > 0))
    throw new WhaleError('ERR_INVALID_ARG', `epsilonTolerance: must be > 0, got ${tol}`, { field: 'epsilonTolerance' });
  const eps = (sigma: number) =>
    epsilonFor({ sampleRate: s.sampleRate, noiseMultiplier: sigma, steps: s.steps }, s.delta, s.orders).epsilon;
  let low = 0,
    high = 10,
    epsHigh = Infinity;
  while (epsHigh > s.targetEpsilon) {
    high *= 2;
    if (high > MAX_SIGMA)
      throw new WhaleError(
        'ERR_INVALID_ARG',
        `targetEpsilon: ${s.targetEpsilon} cannot be reached (σ > ${MAX_SIGMA})`,
        { field: 'targetEpsilon' },
      );
    epsHigh = eps(high);
  }
  // Opacus stops when ε is within the tolerance; the iteration cap also ends the search
  // where the tolerance is finer than ε can resolve (huge targets): σ known to 1e-12.
  while (s.targetEpsilon - epsHigh > tol && high - low > high * 1e-12) {
    const mid = (low + high) / 2;
    const e = eps(mid);
    if (e < s.targetEpsilon) {
      high = mid;
      epsHigh = e;
    } else {
      low = mid;
    }
  }
  return high;
}
