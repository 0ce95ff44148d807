/** Options of the streaming anomaly detector (native/anomaly/detector.h documents the algorithm). */
import { WhaleError } from '../../base/errors.js';

export interface AnomalyDetectorOptions {
  /** Decision threshold on the score in (0, 1]; a point is an anomaly when score >= threshold. Default 0.9. */
  threshold?: number;
  /** Points scored 0 while the detector learns the series. Default 200. */
  warmupPoints?: number;
  /** Points scored 0 after a reported anomaly, so an event is reported once. Default 200. */
  refractoryPoints?: number;
  /** Pattern length in blocks. Default 8. */
  window?: number;
  /** Patterns remembered per time scale (memory per series grows with it). Default 64. */
  codebookSize?: number;
  /** Time scales: block sizes 1, 4, 16, 64, ... Default 4. */
  levels?: number;
  /** Smallest distance (fraction of the value range) that makes a pattern novel. Default 0.05. */
  vigilance?: number;
  /** A pattern is also novel beyond `spread` x the mean nearest distance. Default 2. */
  spread?: number;
  /** Points over which the rates of novel patterns and of range excursions (and the recent novelties' size) are averaged. Default 1000. */
  rateHorizon?: number;
  /** A value beyond the seen range by more than this fraction of it is a range excursion. Default 0.02. */
  rangeTolerance?: number;
}

export type ResolvedAnomalyOptions = Required<AnomalyDetectorOptions>;

export const ANOMALY_DEFAULTS: Readonly<ResolvedAnomalyOptions> = Object.freeze({
  threshold: 0.9,
  warmupPoints: 200,
  refractoryPoints: 200,
  window: 8,
  codebookSize: 64,
  levels: 4,
  vigilance: 0.05,
  spread: 2,
  rateHorizon: 1000,
  rangeTolerance: 0.02,
});

/** [min, max, integer, min exclusive] per option. */
const LIMITS: Record<keyof ResolvedAnomalyOptions, [number, number, boolean, boolean]> = {
  threshold: [0, 1, false, true],
  warmupPoints: [0, 1e8, true, false],
  refractoryPoints: [0, 1e8, true, false],
  window: [1, 256, true, false],
  codebookSize: [1, 4096, true, false],
  levels: [1, 8, true, false],
  vigilance: [0, 10, false, true],
  spread: [0, 1000, false, false],
  rateHorizon: [1, 1e12, false, false],
  rangeTolerance: [0, 100, false, false],
};

/** Checks every option (ERR_INVALID_OPTION naming `options.<name>`) and fills in the defaults. */
export function resolveAnomalyOptions(options: AnomalyDetectorOptions | undefined): ResolvedAnomalyOptions {
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new WhaleError('ERR_INVALID_OPTION', 'options: expected an object', { field: 'options' });
  }
  const out: ResolvedAnomalyOptions = { ...ANOMALY_DEFAULTS };
  for (const [key, value] of Object.entries(options ?? {})) {
    const field = `options.${key}`;
    if (!(key in LIMITS)) throw new WhaleError('ERR_INVALID_OPTION', `${field}: unknown option`, { field });
    if (value === undefined) continue;
    const [lo, hi, integer, loOpen] = LIMITS[key as keyof ResolvedAnomalyOptions];
    const ok = typeof value === 'number' && Number.isFinite(value) && (loOpen ? value > lo : value >= lo) && value <= hi && (!integer || Number.isInteger(value));
    if (!ok) {
      const range = `${loOpen ? '(' : '['}${lo}, ${hi}]`;
      throw new WhaleError('ERR_INVALID_OPTION', `${field}: expected ${integer ? 'an integer' : 'a number'} in ${range}, got ${String(value)}`, { field });
    }
    out[key as keyof ResolvedAnomalyOptions] = value as number;
  }
  return out;
}
