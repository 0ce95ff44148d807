/**
 * Log-space arithmetic for the RDP accountant: sums of terms that overflow or
 * underflow a double when exponentiated (orders up to a few hundred, tails of
 * erfc far below 1e-308).
 */

/** log(e^a + e^b). */
export function logAdd(a: number, b: number): number {
  const hi = Math.max(a, b),
    lo = Math.min(a, b);
  if (hi === -Infinity) return -Infinity;
  return hi + Math.log1p(Math.exp(lo - hi));
}

/** log(e^a - e^b) for a >= b (-Infinity when equal). */
export function logSub(a: number, b: number): number {
  if (b > a) throw new RangeError('logSub: the result would be negative');
  if (b === -Infinity) return a;
  if (a === b) return -Infinity;
  // log(e^a - e^b) = a + log(1 - e^(b-a)); expm1 keeps precision when b is close to a.
  return a + Math.log(-Math.expm1(b - a));
}

const LOG_SQRT_PI = 0.5 * Math.log(Math.PI);

/**
 * log(erfc(x)) to near double precision for every finite x.
 * |x| < 3: erf from the all-positive series erf(x) = 2/sqrt(pi) e^(-x^2) sum 2^n x^(2n+1) / (2n+1)!!
 * (no cancellation); x >= 3: the continued fraction of e^(x^2) erfc(x), evaluated bottom-up.
 */
export function logErfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x === Infinity) return -Infinity;
  if (x === -Infinity) return Math.log(2);
  if (x >= 3) return -x * x - LOG_SQRT_PI + Math.log(erfcxContinuedFraction(x));
  if (x <= -3) return Math.log(2 - Math.exp(-x * x - LOG_SQRT_PI) * erfcxContinuedFraction(-x));
  return Math.log1p(-erfSeries(x));
}

function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x,
    sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (Math.abs(term) < 1e-17 * Math.abs(sum)) break;
  }
  return (2 / Math.sqrt(Math.PI)) * Math.exp(-x2) * sum;
}

/** sqrt(pi) e^(x^2) erfc(x) = 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))), x >= 3. */
function erfcxContinuedFraction(x: number): number {
  let f = x;
  for (let k = 120; k >= 1; k--) f = x + k / 2 / f;
  return 1 / f;
}

/** log |binom(a, k)| for real a and integer k >= 0 (a product, exact for integer a up to rounding). */
export function logAbsBinom(a: number, k: number): number {
  let s = 0;
  for (let j = 1; j <= k; j++) s += Math.log(Math.abs((a - j + 1) / j));
  return s;
}

/** Sign of binom(a, k) for real a and integer k >= 0 (0 when a is an integer below k). */
export function signBinom(a: number, k: number): number {
  let sign = 1;
  for (let j = 1; j <= k; j++) {
    const f = a - j + 1;
    if (f === 0) return 0;
    if (f < 0) sign = -sign;
  }
  return sign;
}
