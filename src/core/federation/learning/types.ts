import type { DeviceSpec } from '../../../native/device.js';

/** Client updates: one Float32Array per client, or one contiguous clients x params buffer. */
export type ClientUpdates = readonly Float32Array[] | ContiguousUpdates;

export interface ContiguousUpdates {
  data: Float32Array;
  clients: number;
  params: number;
}

export type Strategy = 'fedavg' | 'median' | 'trimmed-mean' | 'krum' | 'multi-krum';

/** What to do with a client whose update holds NaN or ±Infinity. */
export type NonFinitePolicy = 'reject' | 'skip';

export interface AggregatorOptions {
  strategy: Strategy;
  /** Trimmed mean: fraction cut from each side, 0 <= beta < 0.5 (default 0.1). */
  beta?: number;
  /** Krum: number of Byzantine clients tolerated; needs n >= 2f + 3 (default 0). */
  f?: number;
  /** Multi-Krum: clients averaged after selection (default n - f); Krum uses 1. */
  m?: number;
  /** Default 'auto'. */
  device?: DeviceSpec;
  /** Default 'reject': a typed error naming the client. */
  nonFinite?: NonFinitePolicy;
  /**
   * aggregate() runs off the JS thread when the JS-thread time that saves is
   * at least this many input-byte equivalents (0: always). An async call
   * copies its input on the JS thread first, so FedAvg (as fast as that copy)
   * stays on it; median/trimmed-mean count 15 x their input, (Multi-)Krum
   * every pair of rows (O(n^2 p)). Default 1 MiB.
   */
  asyncThresholdBytes?: number;
  /**
   * Bound on the native memory one call may allocate (Krum's n x n distances,
   * the copy an async call makes of its inputs): above it the call fails with
   * ERR_OUT_OF_MEMORY before allocating. Default: a quarter of the machine's memory.
   */
  maxMemoryBytes?: number;
}

export interface AggregationResult {
  /** The aggregated parameters. */
  params: Float32Array;
  /** Device it ran on, e.g. 'cpu' or 'cuda:0'. */
  device: string;
  /** Clients that took part (original indices), after any skipping. */
  used: number[];
  /** Clients dropped for non-finite values (policy 'skip'). */
  skipped: number[];
  /** Krum: selected clients (original indices), best first. */
  selected?: number[];
  /** Krum: score per used client (same order as `used`). */
  scores?: Float64Array;
}
