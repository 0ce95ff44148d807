/**
 * VectorIndex: the native vector index (native/vindex) behind a typed API.
 * Exact search over float32 or the memory module's int8 blocks (computed on
 * the codes), multi-threaded, CUDA when present; inverted lists (IVF, k-means)
 * once trained, with `nprobe` as the recall/speed knob. Labels are uint32.
 */
import { WhaleError } from '../../../common/errors.js';
import type { NativeVectorIndexHandle, NativeVectorMetric, NativeVectorStorage } from '../../../native/binding.js';
import { callNative, callNativeAsync } from '../../../native/call.js';
import { native } from '../../../native/loader.js';

export type VectorMetric = NativeVectorMetric;
export type VectorStorage = NativeVectorStorage;

export interface VectorIndexOptions {
  dim: number;
  /** Default 'cosine'. */
  metric?: VectorMetric;
  /** 'int8' keeps ~4x less memory (the codec's blockwise absmax format). Default 'f32'. */
  storage?: VectorStorage;
  /** int8 block size, 32..4096 even; default 64. */
  blockSize?: number;
  /** Inverted lists after train() (0: exact only). */
  nlist?: number;
  /** Lists visited per query by default (recall/speed knob). Default 8. */
  nprobe?: number;
}

export interface VectorSearchOptions {
  k: number;
  nprobe?: number;
  /** Scan every row even when trained. */
  exact?: boolean;
  /** Only these labels (bitmap: bit l of byte l >> 3). */
  allow?: Uint8Array;
  /** 'auto' (default), 'cpu' or 'cuda'. The GPU runs exact scans. */
  device?: 'auto' | 'cpu' | 'cuda';
  parallel?: boolean;
}

export interface VectorSearchResult {
  /** nq x k labels, best first; NO_LABEL where fewer than k rows matched. */
  labels: Uint32Array;
  distances: Float32Array;
  device: string;
}

const METRICS: readonly string[] = ['l2', 'ip', 'cosine'];
/** The label of an empty result slot. */
export const NO_LABEL = 4294967295;

function option(cond: boolean, field: string, msg: string): void {
  if (!cond) throw new WhaleError('ERR_INVALID_OPTION', `options.${field}: ${msg}`, { field: `options.${field}` });
}

function isInt(v: unknown, min: number, max: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
}

export class VectorIndex {
  readonly dim: number;
  readonly metric: VectorMetric;
  readonly storage: VectorStorage;
  readonly nlist: number;
  private readonly handle: NativeVectorIndexHandle;
  private training: Promise<void> | undefined;

  constructor(o: VectorIndexOptions) {
    option(typeof o === 'object' && o !== null, '', 'expected an object');
    option(isInt(o.dim, 1, 65536), 'dim', `must be an integer in [1, 65536], got ${String(o.dim)}`);
    option(
      o.metric === undefined || METRICS.includes(o.metric),
      'metric',
      `must be l2, ip or cosine, got ${String(o.metric)}`,
    );
    option(
      o.storage === undefined || o.storage === 'f32' || o.storage === 'int8',
      'storage',
      `must be f32 or int8, got ${String(o.storage)}`,
    );
    option(
      o.blockSize === undefined || (isInt(o.blockSize, 32, 4096) && o.blockSize % 2 === 0),
      'blockSize',
      'must be an even integer in [32, 4096]',
    );
    option(o.nlist === undefined || isInt(o.nlist, 0, 1 << 20), 'nlist', 'must be an integer in [0, 2^20]');
    option(o.nprobe === undefined || isInt(o.nprobe, 1, 1 << 20), 'nprobe', 'must be an integer >= 1');
    this.dim = o.dim;
    this.metric = o.metric ?? 'cosine';
    this.storage = o.storage ?? 'f32';
    this.nlist = o.nlist ?? 0;
    const config = {
      dim: o.dim,
      metric: this.metric,
      storage: this.storage,
      blockSize: o.blockSize ?? 64,
      nlist: this.nlist,
      nprobe: o.nprobe ?? 8,
    };
    this.handle = callNative(() => new (native().NativeVectorIndex)(config));
  }

  get size(): number {
    return this.handle.stats().size;
  }
  get trained(): boolean {
    return this.handle.stats().trained;
  }
  get memoryBytes(): number {
    return this.handle.stats().memoryBytes;
  }

  /** Adds (or replaces) rows: vectors holds labels.length x dim floats. All or nothing. */
  add(labels: Uint32Array, vectors: Float32Array): void {
    this.assertIdle();
    if (!(labels instanceof Uint32Array))
      throw new WhaleError('ERR_INVALID_ARG', 'labels: expected a Uint32Array', { field: 'labels' });
    if (!(vectors instanceof Float32Array) || vectors.length !== labels.length * this.dim) {
      throw new WhaleError(
        'ERR_INVALID_ARG',
        `vectors: expected a Float32Array of ${labels.length} x ${this.dim} values`,
        { field: 'vectors' },
      );
    }
    callNative(() => this.handle.add(labels, vectors));
  }

  /** Adds rows from memory-module blobs (an int8 blob with this block size is stored as is). */
  addBlobs(labels: Uint32Array, blobs: Uint8Array[]): void {
    this.assertIdle();
    callNative(() => this.handle.addBlobs(labels, blobs));
  }

  remove(labels: Uint32Array): number {
    this.assertIdle();
    return callNative(() => this.handle.remove(labels));
  }

  setNprobe(nprobe: number): void {
    if (!isInt(nprobe, 1, 1 << 20))
      throw new WhaleError('ERR_INVALID_ARG', 'nprobe: must be an integer >= 1', { field: 'nprobe' });
    callNative(() => this.handle.setNprobe(nprobe));
  }

  /** The trained centroids (nlist x dim; empty before training). */
  centroids(): Float32Array {
    return callNative(() => this.handle.centroids());
  }

  /**
   * k-means over `samples` (n x dim) or the stored rows; then rows live in nlist
   * inverted lists. `iterations: 0` with exactly nlist samples restores saved centroids.
   */
  async train(o: { samples?: Float32Array; iterations?: number; seed?: number } = {}): Promise<void> {
    this.assertIdle();
    if (o.samples !== undefined && (!(o.samples instanceof Float32Array) || o.samples.length % this.dim !== 0)) {
      throw new WhaleError('ERR_INVALID_ARG', `samples: expected a Float32Array of n x ${this.dim} values`, {
        field: 'samples',
      });
    }
    const opts = { iterations: o.iterations ?? 10, seed: o.seed ?? 1, ...(o.samples ? { samples: o.samples } : {}) };
    this.training = callNativeAsync(() => this.handle.train(opts, true));
    try {
      await this.training;
    } finally {
      this.training = undefined;
    }
  }

  /** Resolves once no training runs (mutations wait for it rather than block the JS thread). */
  async idle(): Promise<void> {
    while (this.training) await this.training.catch(() => undefined);
  }

  /** Batched search: queries holds nq x dim floats; runs off the JS thread. */
  async search(queries: Float32Array, o: VectorSearchOptions): Promise<VectorSearchResult> {
    const opts = this.searchOptions(queries, o);
    return toResult(await callNativeAsync(() => this.handle.search(opts, true)));
  }

  /** The same on the calling thread (small batches). */
  searchSync(queries: Float32Array, o: VectorSearchOptions): VectorSearchResult {
    this.assertIdle();
    return toResult(callNative(() => this.handle.search(this.searchOptions(queries, o), false)));
  }

  private searchOptions(queries: Float32Array, o: VectorSearchOptions) {
    if (!(queries instanceof Float32Array) || queries.length % this.dim !== 0) {
      throw new WhaleError('ERR_INVALID_ARG', `queries: expected a Float32Array of n x ${this.dim} values`, {
        field: 'queries',
      });
    }
    if (!isInt(o.k, 1, 4096))
      throw new WhaleError('ERR_INVALID_ARG', `k: must be an integer in [1, 4096], got ${String(o.k)}`, { field: 'k' });
    if (o.nprobe !== undefined && !isInt(o.nprobe, 1, 1 << 20))
      throw new WhaleError('ERR_INVALID_ARG', 'nprobe: must be an integer >= 1', { field: 'nprobe' });
    return {
      queries,
      k: o.k,
      ...(o.nprobe === undefined ? {} : { nprobe: o.nprobe }),
      ...(o.exact === undefined ? {} : { exact: o.exact }),
      ...(o.allow === undefined ? {} : { allow: o.allow }),
      ...(o.parallel === undefined ? {} : { parallel: o.parallel }),
      device: o.device ?? 'auto',
      deviceIndex: 0,
    };
  }

  private assertIdle(): void {
    if (this.training) throw new WhaleError('ERR_INVALID_STATE', 'the index is training: await idle() first');
  }
}

function toResult(r: { labels: Uint32Array; distances: Float32Array; device: string }): VectorSearchResult {
  return { labels: r.labels, distances: r.distances, device: r.device };
}
