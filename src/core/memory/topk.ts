import { WhaleError } from '../../common/errors.js';
import { callNative } from '../../native/call.js';
import { native } from '../../native/loader.js';

export interface SparseUpdate {
  /** Ascending positions of the kept values. */
  indices: Uint32Array;
  values: Float32Array;
  /** Length of the dense update. */
  length: number;
}

export interface TopKOptions {
  /** Values kept per update; or give `ratio`. */
  k?: number;
  /** Fraction of values kept, in (0, 1]. */
  ratio?: number;
}

/**
 * Top-k sparsifier with error feedback for federated update compression: what
 * a stream does not send is remembered (its residual) and added to its next
 * update, so nothing is lost over rounds, only delayed.
 */
export class TopKCompressor {
  private readonly residuals = new Map<string, Float32Array>();
  private readonly k: number | undefined;
  private readonly ratio: number | undefined;

  constructor(o: TopKOptions) {
    if (typeof o !== 'object' || o === null) {
      throw new WhaleError('ERR_INVALID_OPTION', 'options: expected { k } or { ratio }', { field: 'options' });
    }
    if (o.ratio !== undefined && typeof o.ratio !== 'number') {
      throw new WhaleError('ERR_INVALID_OPTION', `options.ratio: must be a number, got ${typeof o.ratio}`, {
        field: 'options.ratio',
      });
    }
    if (o.k !== undefined && !(Number.isInteger(o.k) && o.k >= 1)) {
      throw new WhaleError('ERR_INVALID_OPTION', `options.k: must be an integer >= 1, got ${o.k}`, {
        field: 'options.k',
      });
    }
    if (o.ratio !== undefined && !(o.ratio > 0 && o.ratio <= 1)) {
      throw new WhaleError('ERR_INVALID_OPTION', `options.ratio: must be in (0, 1], got ${o.ratio}`, {
        field: 'options.ratio',
      });
    }
    if ((o.k === undefined) === (o.ratio === undefined)) {
      throw new WhaleError('ERR_INVALID_OPTION', 'options: give exactly one of k and ratio', { field: 'options' });
    }
    this.k = o.k;
    this.ratio = o.ratio;
  }

  compress(stream: string, update: Float32Array): SparseUpdate {
    if (!(update instanceof Float32Array))
      throw new WhaleError('ERR_INVALID_ARG', 'update: expected a Float32Array', { field: 'update' });
    let residual = this.residuals.get(stream);
    if (residual && residual.length !== update.length) {
      throw new WhaleError(
        'ERR_SHAPE_MISMATCH',
        `update: has ${update.length} values, stream '${stream}' has ${residual.length}; reset() it first`,
        {
          field: 'update',
        },
      );
    }
    residual ??= new Float32Array(update.length);
    const k = this.k ?? Math.max(1, Math.round(this.ratio! * update.length));
    const picked = callNative(() => native().topkFeedback({ update, residual, k }));
    this.residuals.set(stream, residual);
    return { ...picked, length: update.length };
  }

  /** The residual a stream carries into its next round (a copy). */
  residual(stream: string): Float32Array | undefined {
    return this.residuals.get(stream)?.slice();
  }

  reset(stream?: string): void {
    if (stream === undefined) this.residuals.clear();
    else this.residuals.delete(stream);
  }

  static decompress(s: SparseUpdate): Float32Array {
    const bad = (field: string, why: string): never => {
      throw new WhaleError('ERR_INVALID_ARG', `${field}: ${why}`, { field });
    };
    if (typeof s !== 'object' || s === null) bad('update', 'expected { indices, values, length }');
    if (!(Number.isInteger(s.length) && s.length >= 0 && s.length <= 0xffffffff)) {
      bad('length', `must be an integer in [0, 2^32 - 1], got ${String(s.length)}`);
    }
    if (!(s.indices instanceof Uint32Array)) bad('indices', 'expected a Uint32Array');
    if (!(s.values instanceof Float32Array)) bad('values', 'expected a Float32Array');
    if (s.values.length !== s.indices.length)
      bad('values', `has ${s.values.length} entries, indices has ${s.indices.length}`);
    const out = new Float32Array(s.length);
    s.indices.forEach((idx, i) => {
      if (idx >= s.length)
        throw new WhaleError('ERR_CORRUPT', `indices[${i}]: ${idx} is out of range for length ${s.length}`, {
          field: `indices[${i}]`,
        });
      out[idx] = s.values[i]!;
    });
    return out;
  }
}
