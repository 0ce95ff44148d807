/**
 * Options of the streaming anomaly detectors (native/anomaly/detector.h documents the 'whale'
 * detector, native/anomaly/art_detector.h the 'art' one).
 */
import { WhaleError } from '../../../common/errors.js';

/** The detectors: 'whale' (multi-scale window novelty), 'art' (dual-vigilance fuzzy ART), 'ensemble' (the mean of both scores). */
export const ANOMALY_METHODS = ['whale', 'art', 'ensemble'] as const;
export type AnomalyMethod = (typeof ANOMALY_METHODS)[number];

export interface AnomalyDetectorOptions {
  /** Which detector scores the points (see ANOMALY_METHODS). Default 'whale'. */
  method?: AnomalyMethod;
  /** Decision threshold on the score in (0, 1]; a point is an anomaly when score >= threshold. Default 0.9 (art 0.7, ensemble 0.5). */
  threshold?: number;
  /** Points scored 0 while the detector learns the series. Default 200. */
  warmupPoints?: number;
  /** Points scored 0 after a reported anomaly, so an event is reported once. Default 200. */
  refractoryPoints?: number;
  /** Pattern length in blocks. Default 8. */
  window?: number;
  /** Patterns remembered per time scale (memory per series grows with it). Default 64. */
  codebookSize?: number;
  /** Time scales (both detectors): block sizes 1, 4, 16, 64, ... Default 4. */
  levels?: number;
  /** Smallest distance (fraction of the value range) that makes a pattern novel. Default 0.05. */
  vigilance?: number;
  /** A pattern is also novel beyond `spread` x the mean nearest distance. Default 2. */
  spread?: number;
  /** Points over which the rates of novel patterns and of range excursions (and the recent novelties' size) are averaged. Default 1000. */
  rateHorizon?: number;
  /** A value beyond the seen range by more than this fraction of it is a range excursion. Default 0.02. */
  rangeTolerance?: number;
  /** art: block means in the window that forms one input pattern (at every time scale). Default 8. */
  artWindow?: number;
  /** art: categories remembered per series (the least recently chosen one is replaced when full). Default 64. */
  artCategories?: number;
  /** art: upper vigilance in (0, 1]: a match at least this good updates the category. Default 0.98 (ensemble 0.95). */
  artVigilance?: number;
  /** art: lower vigilance in (0, min(artVigilance, 0.9999)]: a match below it for every category opens a new cluster (a novelty). Default 0.96 (ensemble 0.9). */
  artVigilanceLow?: number;
  /** art: a mismatch counts as novel beyond artSpread x the series' mean best-match deficit too (0: fixed vigilances). Default 2. */
  artSpread?: number;
  /** art: Fuzzy ART learning rate beta in (0, 1] (1: fast learning). Default 1. */
  artLearningRate?: number;
}

export type ResolvedAnomalyOptions = Required<AnomalyDetectorOptions>;
type NumericOption = Exclude<keyof ResolvedAnomalyOptions, 'method'>;

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
  method: 'whale',
  artWindow: 8,
  artCategories: 64,
  artVigilance: 0.98,
  artVigilanceLow: 0.96,
  artSpread: 2,
  artLearningRate: 1,
});

/**
 * Per method, the defaults that differ from ANOMALY_DEFAULTS: each method's best grid point by mean
 * held-out-category score on the NAB development files (issue 24's rule; bench/RESULTS.md). An
 * option given explicitly always wins.
 */
export const ANOMALY_METHOD_DEFAULTS: Readonly<Record<AnomalyMethod, Readonly<AnomalyDetectorOptions>>> = Object.freeze(
  {
    whale: Object.freeze({}),
    art: Object.freeze({ threshold: 0.7 }),
    ensemble: Object.freeze({ artVigilance: 0.95, artVigilanceLow: 0.9, threshold: 0.5 }),
  },
);

/** [min, max, integer, min exclusive] per option. */
const LIMITS: Record<NumericOption, [number, number, boolean, boolean]> = {
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
  artWindow: [1, 64, true, false],
  artCategories: [1, 4096, true, false],
  artVigilance: [0, 1, false, true],
  artVigilanceLow: [0, 0.9999, false, true],
  artSpread: [0, 1000, false, false],
  artLearningRate: [0, 1, false, true],
};

/** Checks every option (ERR_INVALID_OPTION naming `options.<name>`) and fills in the defaults. */
export function resolveAnomalyOptions(options: AnomalyDetectorOptions | undefined): ResolvedAnomalyOptions {
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new WhaleError('ERR_INVALID_OPTION', 'options: expected an object', { field: 'options' });
  }
  const out: ResolvedAnomalyOptions = { ...ANOMALY_DEFAULTS };
  const method = (options as { method?: unknown } | undefined)?.method;
  if (typeof method === 'string' && Object.hasOwn(ANOMALY_METHOD_DEFAULTS, method))
    Object.assign(out, ANOMALY_METHOD_DEFAULTS[method as AnomalyMethod]);
  for (const [key, value] of Object.entries(options ?? {})) {
    const field = `options.${key}`;
    if (value === undefined && (key === 'method' || Object.hasOwn(LIMITS, key))) continue;
    if (key === 'method') {
      if (!(ANOMALY_METHODS as readonly unknown[]).includes(value)) {
        throw new WhaleError(
          'ERR_INVALID_OPTION',
          `${field}: expected one of ${ANOMALY_METHODS.join(', ')}, got ${String(value)}`,
          { field },
        );
      }
      out.method = value as AnomalyMethod;
      continue;
    }
    if (!Object.hasOwn(LIMITS, key)) throw new WhaleError('ERR_INVALID_OPTION', `${field}: unknown option`, { field });
    const [lo, hi, integer, loOpen] = LIMITS[key as NumericOption];
    const ok =
      typeof value === 'number' &&
      Number.isFinite(value) &&
      (loOpen ? value > lo : value >= lo) &&
      value <= hi &&
      (!integer || Number.isInteger(value));
    if (!ok) {
      const range = `${loOpen ? '(' : '['}${lo}, ${hi}]`;
      throw new WhaleError(
        'ERR_INVALID_OPTION',
        `${field}: expected ${integer ? 'an integer' : 'a number'} in ${range}, got ${String(value)}`,
        { field },
      );
    }
    out[key as NumericOption] = value as number;
  }
  if (out.artVigilanceLow > out.artVigilance) {
    const field = 'options.artVigilanceLow';
    throw new WhaleError(
      'ERR_INVALID_OPTION',
      `${field}: must not exceed artVigilance (${out.artVigilance}), got ${out.artVigilanceLow}`,
      { field },
    );
  }
  return out;
}
