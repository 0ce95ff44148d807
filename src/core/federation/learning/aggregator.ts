import { WhaleError } from '../../../common/errors.js';
import type { NativeAggregateOptions, NativeAggregateResult, NativeStrategy } from '../../../native/binding.js';
import { callNative, callNativeAsync } from '../../../native/call.js';
import { parseDevice } from '../../../native/device.js';
import { native } from '../../../native/loader.js';
import type { AggregationResult, AggregatorOptions, ClientUpdates } from './types.js';
import { asyncSavingsBytes, checkKrum, resolveOptions, toRows, toWeights, type ResolvedOptions } from './validate.js';

interface Prepared {
  opts: NativeAggregateOptions;
  params: number;
  used: number[];
  skipped: number[];
}

/**
 * Aggregates client updates with one strategy on the native engine.
 *
 *   const agg = new Aggregator({ strategy: 'trimmed-mean', beta: 0.2 });
 *   const { params } = await agg.aggregate(updates, examplesPerClient);
 *
 * Median and trimmed mean are unweighted (coordinate-wise order statistics);
 * FedAvg and the final average of (Multi-)Krum use the weights.
 */
export class Aggregator {
  readonly options: Readonly<ResolvedOptions>;
  private readonly device: ReturnType<typeof parseDevice>;

  constructor(options: AggregatorOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new WhaleError('ERR_INVALID_OPTION', 'options: expected an object with a strategy', { field: 'options' });
    }
    this.options = resolveOptions(options);
    this.device = parseDevice(options.device, 'options.device');
  }

  /**
   * Runs off the JS thread when that saves enough JS-thread time (see
   * asyncThresholdBytes); the inputs are then copied before it returns, so
   * callers may change, transfer or resize them while it runs.
   */
  async aggregate(updates: ClientUpdates, weights?: ArrayLike<number>): Promise<AggregationResult> {
    const prep = this.prepare(updates, weights);
    const savings = asyncSavingsBytes(this.options.strategy, prep.opts.clients.length, prep.params);
    if (savings < this.options.asyncThresholdBytes)
      return this.finish(
        prep,
        callNative(() => native().aggregate(prep.opts, false)),
      );
    const res = await callNativeAsync(() => native().aggregate(prep.opts, true));
    return this.finish(prep, res);
  }

  /** Runs on the calling thread; for small inputs or worker threads. */
  aggregateSync(updates: ClientUpdates, weights?: ArrayLike<number>): AggregationResult {
    const prep = this.prepare(updates, weights);
    return this.finish(
      prep,
      callNative(() => native().aggregate(prep.opts, false)),
    );
  }

  private prepare(updates: ClientUpdates, weightsIn: ArrayLike<number> | undefined): Prepared {
    const o = this.options;
    let rows = toRows(updates);
    let weights = toWeights(weightsIn, rows.length);
    let used = rows.map((_, i) => i);
    const skipped: number[] = [];
    if (o.nonFinite === 'skip') {
      const counts = callNative(() => native().nonFiniteCounts(rows));
      counts.forEach((c, i) => {
        if (c > 0) skipped.push(i);
      });
      if (skipped.length > 0) {
        used = used.filter((i) => counts[i] === 0);
        if (used.length === 0) {
          throw new WhaleError(
            'ERR_NO_CLIENTS',
            'clients: every client update holds non-finite values; nothing to aggregate',
            {
              field: 'clients',
            },
          );
        }
        rows = used.map((i) => rows[i]!);
        weights = Float64Array.from(used, (i) => weights[i]!);
      }
    }
    const n = rows.length;
    const strategy: NativeStrategy = o.strategy === 'multi-krum' ? 'krum' : o.strategy;
    let m = 1;
    if (strategy === 'krum') {
      m = o.strategy === 'multi-krum' ? (o.m ?? n - o.f) : 1;
      checkKrum(n, o.f, m);
    }
    const opts: NativeAggregateOptions = {
      strategy,
      clients: rows,
      weights,
      beta: o.beta,
      f: o.f,
      m,
      checkFinite: true,
      maxMemoryBytes: o.maxMemoryBytes,
      ...this.device,
    };
    return { opts, params: rows[0]!.length, used, skipped };
  }

  private finish(prep: Prepared, res: NativeAggregateResult): AggregationResult {
    // Without `out` the binding returns a new array it wrote while no JS could see it.
    const params = res.params!;
    const result: AggregationResult = { params, device: res.device, used: prep.used, skipped: prep.skipped };
    if (res.selected && res.scores) {
      result.selected = Array.from(res.selected, (i) => prep.used[i]!);
      result.scores = res.scores;
    }
    return result;
  }
}
