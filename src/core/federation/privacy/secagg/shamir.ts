/**
 * Shamir's t-of-n secret sharing of byte strings over GF(2^8) (the AES field,
 * x^8 + x^4 + x^3 + x + 1), one random polynomial of degree t-1 per byte.
 * Share x-coordinates are 1..255. Fewer than t shares reveal nothing about the secret.
 */
import { randomBytes } from 'node:crypto';

import { WhaleError } from '../../../../common/errors.js';

const EXP = new Uint8Array(510);
const LOG = new Uint8Array(256);
{
  let x = 1;
  for (let i = 0; i < 255; i++) {
    EXP[i] = x;
    LOG[x] = i;
    x ^= (x << 1) ^ (x & 0x80 ? 0x11b : 0); // multiply by the generator 3
    x &= 0xff;
  }
  for (let i = 255; i < 510; i++) EXP[i] = EXP[i - 255]!;
}

const mul = (a: number, b: number): number => (a === 0 || b === 0 ? 0 : EXP[LOG[a]! + LOG[b]!]!);
const div = (a: number, b: number): number => (a === 0 ? 0 : EXP[LOG[a]! + 255 - LOG[b]!]!);

export interface Share {
  x: number;
  y: Uint8Array;
}

/** Shares of `secret` at the given x-coordinates (distinct, 1..255), any `threshold` of which recover it. */
export function split(secret: Uint8Array, xs: readonly number[], threshold: number): Share[] {
  if (!(Number.isInteger(threshold) && threshold >= 1 && threshold <= xs.length)) {
    throw new WhaleError('ERR_INVALID_ARG', `threshold: must be an integer in [1, ${xs.length}], got ${threshold}`, {
      field: 'threshold',
    });
  }
  if (new Set(xs).size !== xs.length || xs.some((x) => !(Number.isInteger(x) && x >= 1 && x <= 255))) {
    throw new WhaleError('ERR_INVALID_ARG', 'xs: must be distinct integers in [1, 255]', { field: 'xs' });
  }
  const coeffs = randomBytes(secret.length * (threshold - 1));
  return xs.map((x) => {
    const y = new Uint8Array(secret.length);
    for (let b = 0; b < secret.length; b++) {
      // Horner: a_{t-1} x^{t-1} + ... + a_1 x + secret
      let acc = 0;
      for (let k = threshold - 2; k >= 0; k--) acc = mul(acc ^ coeffs[b * (threshold - 1) + k]!, x);
      y[b] = acc ^ secret[b]!;
    }
    return { x, y };
  });
}

/** The secret from at least `threshold` shares (Lagrange interpolation at 0); pass exactly the ones to use. */
export function combine(shares: readonly Share[]): Uint8Array {
  if (shares.length === 0) throw new WhaleError('ERR_BELOW_THRESHOLD', 'shares: none given', { field: 'shares' });
  const len = shares[0]!.y.length;
  if (new Set(shares.map((s) => s.x)).size !== shares.length)
    throw new WhaleError('ERR_INVALID_ARG', 'shares: duplicate x-coordinates', { field: 'shares' });
  if (shares.some((s) => s.y.length !== len))
    throw new WhaleError('ERR_SHAPE_MISMATCH', 'shares: of different lengths', { field: 'shares' });
  const out = new Uint8Array(len);
  shares.forEach((si, i) => {
    // l_i(0) = Π_{j≠i} x_j / (x_j - x_i); subtraction is xor in GF(2^8).
    let l = 1;
    shares.forEach((sj, j) => {
      if (j !== i) l = mul(l, div(sj.x, sj.x ^ si.x));
    });
    for (let b = 0; b < len; b++) out[b]! ^= mul(si.y[b]!, l);
  });
  return out;
}
