/**
 * Streaming, causal anomaly detection per metric series, computed natively
 * (native/anomaly). Each series keeps a fixed amount of state (about 23 KiB with
 * the defaults) however long it runs. See anomaly-detector-options.ts.
 */
import { WhaleError } from '../../../common/errors.js';
import type { NativeAnomalyBankHandle } from '../../../native/binding.js';
import { callNative } from '../../../native/call.js';
import { native } from '../../../native/loader.js';
import {
  resolveAnomalyOptions,
  type AnomalyDetectorOptions,
  type ResolvedAnomalyOptions,
} from './anomaly-detector-options.js';

export * from './anomaly-detector-options.js';

export interface AnomalyPoint {
  /** Anomaly score in [0, 1]. */
  score: number;
  /** score >= options.threshold. */
  anomaly: boolean;
}

export interface AnomalyBatch {
  scores: Float64Array;
  anomalies: Uint8Array;
}

function checkNumber(value: unknown, field: string): void {
  if (typeof value !== 'number') throw new WhaleError('ERR_INVALID_ARG', `${field}: expected a number`, { field });
}

function checkF64(value: unknown, field: string): asserts value is Float64Array {
  if (!(value instanceof Float64Array))
    throw new WhaleError('ERR_INVALID_ARG', `${field}: expected a Float64Array`, { field });
}

function createHandle(options: ResolvedAnomalyOptions): NativeAnomalyBankHandle {
  const { NativeAnomalyBank } = native();
  return callNative(() => new NativeAnomalyBank(options));
}

/** One series. NaN/Infinity: ERR_NON_FINITE; |value| > 1e300 or timestamps going back: ERR_INVALID_ARG; state unchanged. */
export class AnomalyDetector {
  readonly options: ResolvedAnomalyOptions;
  private readonly handle: NativeAnomalyBankHandle;

  constructor(options?: AnomalyDetectorOptions) {
    this.options = resolveAnomalyOptions(options);
    this.handle = createHandle(this.options);
    callNative(() => this.handle.add());
  }

  update(value: number, timestampMs?: number): AnomalyPoint {
    checkNumber(value, 'value');
    if (timestampMs !== undefined) checkNumber(timestampMs, 'timestampMs');
    const score = callNative(() => this.handle.update(0, value, timestampMs));
    return { score, anomaly: score >= this.options.threshold };
  }

  /** Points in time order, all validated before any is applied. */
  updateBatch(values: Float64Array, timestampsMs?: Float64Array): AnomalyBatch {
    checkF64(values, 'values');
    if (timestampsMs !== undefined) {
      checkF64(timestampsMs, 'timestampsMs');
      if (timestampsMs.length !== values.length) {
        throw new WhaleError('ERR_INVALID_ARG', 'timestampsMs: length must equal values.length', {
          field: 'timestampsMs',
        });
      }
    }
    const scores = new Float64Array(values.length);
    const anomalies = new Uint8Array(values.length);
    callNative(() => this.handle.updateSeries(0, values, timestampsMs, scores, anomalies));
    return { scores, anomalies };
  }

  reset(): void {
    callNative(() => this.handle.reset(0));
  }

  /** Native bytes this detector's state holds. */
  stateBytes(): number {
    return this.handle.stateBytes();
  }
}

/** Many named series, one native object; updateMany scores points of many series in one call (series in parallel). */
export class AnomalyDetectorBank {
  readonly options: ResolvedAnomalyOptions;
  private readonly handle: NativeAnomalyBankHandle;
  private readonly index = new Map<string, number>();

  constructor(options?: AnomalyDetectorOptions) {
    this.options = resolveAnomalyOptions(options);
    this.handle = createHandle(this.options);
  }

  private indexOf(series: unknown, field: string): number {
    if (typeof series !== 'string' || series.length === 0) {
      throw new WhaleError('ERR_INVALID_ARG', `${field}: expected a non-empty string`, { field });
    }
    let i = this.index.get(series);
    if (i === undefined) {
      i = callNative(() => this.handle.add());
      this.index.set(series, i);
    }
    return i;
  }

  update(series: string, value: number, timestampMs?: number): AnomalyPoint {
    checkNumber(value, 'value');
    if (timestampMs !== undefined) checkNumber(timestampMs, 'timestampMs');
    const i = this.indexOf(series, 'series');
    const score = callNative(() => this.handle.update(i, value, timestampMs));
    return { score, anomaly: score >= this.options.threshold };
  }

  /** Point i belongs to series[i]; each series' points are taken in the order given. All or nothing. */
  updateMany(series: readonly string[], values: Float64Array, timestampsMs?: Float64Array): AnomalyBatch {
    checkF64(values, 'values');
    if (!Array.isArray(series) || series.length !== values.length) {
      throw new WhaleError('ERR_INVALID_ARG', 'series: expected an array with one name per value', { field: 'series' });
    }
    if (timestampsMs !== undefined) {
      checkF64(timestampsMs, 'timestampsMs');
      if (timestampsMs.length !== values.length) {
        throw new WhaleError('ERR_INVALID_ARG', 'timestampsMs: length must equal values.length', {
          field: 'timestampsMs',
        });
      }
    }
    for (let i = 0; i < series.length; i++) {
      if (typeof series[i] !== 'string' || series[i] === '') {
        throw new WhaleError('ERR_INVALID_ARG', `series[${i}]: expected a non-empty string`, { field: `series[${i}]` });
      }
    }
    const idx = new Uint32Array(series.length);
    for (let i = 0; i < series.length; i++) idx[i] = this.indexOf(series[i], `series[${i}]`);
    const scores = new Float64Array(values.length);
    const anomalies = new Uint8Array(values.length);
    callNative(() => this.handle.updateMany(idx, values, timestampsMs, scores, anomalies));
    return { scores, anomalies };
  }

  /** Forgets what a series learned (it starts again with a warm-up). Unknown names are ignored. */
  reset(series: string): void {
    const i = this.index.get(series);
    if (i !== undefined) callNative(() => this.handle.reset(i));
  }

  /** Names of the series seen so far. */
  series(): string[] {
    return [...this.index.keys()];
  }

  stateBytes(): number {
    return this.handle.stateBytes();
  }
}
