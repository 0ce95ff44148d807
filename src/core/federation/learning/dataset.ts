/**
 * A client's local data, model-agnostic: named fields (e.g. `x` features and
 * `y` labels), each one tensor per example of a fixed shape, served as
 * batches of named tensors, shuffled with a seed. `InMemoryDataset` holds the
 * fields in typed arrays; the readers (./data) fill one from a directory of
 * CSV, JSON Lines, NPY or IDX files.
 */
import { WhaleError } from '../../../common/errors.js';
import { seededRandom, shuffleInPlace } from '../../base/random.js';

export type DType = 'float32' | 'int32';

/** One field of every example: its shape (without the batch dimension) and element type. */
export interface FieldSpec {
  readonly shape: readonly number[];
  readonly dtype: DType;
}

/** A batch of one field: `shape` is [examples, ...field shape]. */
export interface FieldTensor {
  readonly data: Float32Array | Int32Array;
  readonly shape: readonly number[];
  readonly dtype: DType;
}

export type Batch = Readonly<Record<string, FieldTensor>>;

export interface BatchOptions {
  /** Default true. */
  shuffle?: boolean;
  /** Seed of the shuffle (default 1): the same seed gives the same order. */
  seed?: number;
}

export interface ClientDataset {
  /** Number of examples. */
  readonly size: number;
  readonly fields: Readonly<Record<string, FieldSpec>>;
  /** Batches of `batchSize` examples (the last may be smaller); 0 = one batch of everything. */
  batches(batchSize: number, options?: BatchOptions): Iterable<Batch>;
}

/** A field's values for the in-memory dataset: a flat typed array (or numbers) and the shape of one example. */
export interface FieldData {
  data: Float32Array | Int32Array | Uint8Array | readonly number[];
  /** Shape of one example (default []: a scalar per example, e.g. a label). */
  shape?: readonly number[];
  /** Default: int32 for Int32Array / Uint8Array data, float32 otherwise. */
  dtype?: DType;
}

function elements(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Fields held in typed arrays. Every field must hold the same number of examples. */
export class InMemoryDataset implements ClientDataset {
  readonly size: number;
  readonly fields: Readonly<Record<string, FieldSpec>>;
  private readonly columns: Record<string, FieldTensor>;

  constructor(fields: Readonly<Record<string, FieldData>>, source = 'dataset') {
    const names = Object.keys(fields ?? {});
    if (names.length === 0)
      throw new WhaleError('ERR_INVALID_ARG', `${source}: a dataset needs at least one field`, { field: source });
    const specs: Record<string, FieldSpec> = {};
    const columns: Record<string, FieldTensor> = {};
    let size: number | undefined;
    for (const name of names) {
      const f = fields[name]!;
      const shape = [...(f.shape ?? [])];
      const field = `${source}.${name}`;
      if (!shape.every((d) => Number.isInteger(d) && d >= 1))
        throw new WhaleError(
          'ERR_INVALID_ARG',
          `${field}.shape: expected positive integers, got ${JSON.stringify(f.shape)}`,
          { field },
        );
      const dtype: DType =
        f.dtype ?? (f.data instanceof Int32Array || f.data instanceof Uint8Array ? 'int32' : 'float32');
      if (dtype !== 'float32' && dtype !== 'int32')
        throw new WhaleError('ERR_INVALID_ARG', `${field}.dtype: float32 or int32, got ${JSON.stringify(dtype)}`, {
          field,
        });
      const per = elements(shape);
      const len = f.data?.length;
      if (typeof len !== 'number' || len % per !== 0)
        throw new WhaleError(
          'ERR_SHAPE_MISMATCH',
          `${field}: ${len} values are not whole examples of shape [${shape.join(', ')}]`,
          { field },
        );
      const n = len / per;
      if (size !== undefined && n !== size)
        throw new WhaleError('ERR_SHAPE_MISMATCH', `${field}: ${n} examples, the other fields have ${size}`, { field });
      size = n;
      const data =
        dtype === 'int32'
          ? f.data instanceof Int32Array
            ? f.data
            : Int32Array.from(f.data as ArrayLike<number>)
          : f.data instanceof Float32Array
            ? f.data
            : Float32Array.from(f.data as ArrayLike<number>);
      if (dtype === 'float32') {
        const bad = (data as Float32Array).findIndex((v) => !Number.isFinite(v));
        if (bad >= 0)
          throw new WhaleError('ERR_NON_FINITE', `${field}: example ${Math.floor(bad / per)} holds ${data[bad]}`, {
            field,
          });
      }
      specs[name] = { shape, dtype };
      columns[name] = { data, shape: [n, ...shape], dtype };
    }
    this.size = size!;
    this.fields = specs;
    this.columns = columns;
  }

  /** The whole field as one tensor ([size, ...shape], no copy). */
  field(name: string): FieldTensor {
    const t = this.columns[name];
    if (!t)
      throw new WhaleError(
        'ERR_INVALID_ARG',
        `field '${name}' is not in this dataset (it has ${Object.keys(this.columns).join(', ')})`,
        {
          field: name,
        },
      );
    return t;
  }

  /** The examples at `indices`, in that order, as a new dataset. */
  subset(indices: readonly number[]): InMemoryDataset {
    const out: Record<string, FieldData> = {};
    for (const [name, spec] of Object.entries(this.fields)) {
      out[name] = { data: this.gather(name, indices), shape: spec.shape, dtype: spec.dtype };
    }
    return new InMemoryDataset(out);
  }

  *batches(batchSize: number, o: BatchOptions = {}): Iterable<Batch> {
    if (!(Number.isInteger(batchSize) && batchSize >= 0))
      throw new WhaleError('ERR_INVALID_ARG', `batchSize: expected an integer >= 0, got ${batchSize}`, {
        field: 'batchSize',
      });
    const step = batchSize === 0 ? Math.max(1, this.size) : batchSize;
    if (!(o.shuffle ?? true)) {
      // In order: views of the columns, no copy.
      for (let at = 0; at < this.size; at += step) {
        const n = Math.min(step, this.size - at);
        const batch: Record<string, FieldTensor> = {};
        for (const [name, spec] of Object.entries(this.fields)) {
          const per = elements(spec.shape);
          const col = this.columns[name]!;
          batch[name] = {
            data: col.data.subarray(at * per, (at + n) * per),
            shape: [n, ...spec.shape],
            dtype: spec.dtype,
          };
        }
        yield batch;
      }
      return;
    }
    const order = Array.from({ length: this.size }, (_, i) => i);
    shuffleInPlace(order, seededRandom(o.seed ?? 1));
    for (let at = 0; at < this.size; at += step) {
      const idx = order.slice(at, at + step);
      const batch: Record<string, FieldTensor> = {};
      for (const [name, spec] of Object.entries(this.fields))
        batch[name] = { data: this.gather(name, idx), shape: [idx.length, ...spec.shape], dtype: spec.dtype };
      yield batch;
    }
  }

  private gather(name: string, indices: readonly number[]): Float32Array | Int32Array {
    const col = this.columns[name]!;
    const per = elements(this.fields[name]!.shape);
    const out = col.dtype === 'int32' ? new Int32Array(indices.length * per) : new Float32Array(indices.length * per);
    if (per === 1) for (let d = 0; d < indices.length; d++) out[d] = col.data[indices[d]!]!;
    else indices.forEach((src, dst) => out.set(col.data.subarray(src * per, (src + 1) * per), dst * per));
    return out;
  }
}

/** An in-memory ClientDataset from typed arrays (tests, data already in memory). */
export function inMemoryDataset(fields: Readonly<Record<string, FieldData>>): InMemoryDataset {
  return new InMemoryDataset(fields);
}
