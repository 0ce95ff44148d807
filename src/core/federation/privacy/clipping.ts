/** L2 clipping of one client's update (the sensitivity bound of DP-FedAvg). */
import { WhaleError } from '../../../common/errors.js';

export function l2Norm(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return Math.sqrt(s);
}

export interface Clipped {
  /** The norm before clipping. */
  norm: number;
  /** The factor applied: min(1, C / norm). */
  scale: number;
}

/** Scales `v` in place to L2 norm at most `clip`. */
export function clipInPlace(v: Float32Array, clip: number): Clipped {
  if (!(clip > 0 && Number.isFinite(clip)))
    throw new WhaleError('ERR_INVALID_ARG', `clip: must be a finite number > 0, got ${clip}`, { field: 'clip' });
  const norm = l2Norm(v);
  if (!Number.isFinite(norm))
    throw new WhaleError('ERR_NON_FINITE', 'update: contains NaN or Infinity', { field: 'update' });
  // float32 rounding of the scaled values may land a hair above C: scale slightly below the exact factor.
  const scale = norm > clip ? (clip / norm) * (1 - 1e-6) : 1;
  if (scale !== 1) for (let i = 0; i < v.length; i++) v[i]! *= scale;
  return { norm, scale };
}
