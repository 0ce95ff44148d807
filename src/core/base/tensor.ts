/**
 * Tensors as models see them: a name, a V2-protocol datatype, a row-major
 * shape and typed storage. validateTensors checks a request against a model's
 * declared inputs; concatBatch/splitBatch stack requests along dimension 0 so
 * one model run can serve several of them.
 */
import { WhaleError } from '../../common/errors.js';

export type Datatype =
  | 'BOOL'
  | 'UINT8'
  | 'UINT16'
  | 'UINT32'
  | 'UINT64'
  | 'INT8'
  | 'INT16'
  | 'INT32'
  | 'INT64'
  | 'FP16'
  | 'FP32'
  | 'FP64'
  | 'BYTES';

export interface TensorSpec {
  name: string;
  datatype: Datatype;
  /** -1 marks a variable dimension (dimension 0 = -1 declares a batch dimension). */
  shape: number[];
}

/** FP16 holds raw IEEE half bits in a Uint16Array. */
export type TensorData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array
  | string[]
  | boolean[];

export interface Tensor {
  name: string;
  datatype: Datatype;
  shape: number[];
  data: TensorData;
}

export type NamedTensors = Record<string, Tensor>;

type Ctor = { new (n: number): TensorData; name: string };

const STORAGE: Record<Exclude<Datatype, 'BOOL' | 'BYTES'>, Ctor> = {
  UINT8: Uint8Array,
  UINT16: Uint16Array,
  UINT32: Uint32Array,
  UINT64: BigUint64Array,
  INT8: Int8Array,
  INT16: Int16Array,
  INT32: Int32Array,
  INT64: BigInt64Array,
  FP16: Uint16Array,
  FP32: Float32Array,
  FP64: Float64Array,
};

export const DATATYPES: readonly Datatype[] = [...Object.keys(STORAGE), 'BOOL', 'BYTES'] as Datatype[];

/** The storage class of a datatype's data (BOOL and BYTES use plain arrays). */
export function storageOf(datatype: Datatype): Ctor | undefined {
  return (STORAGE as Record<string, Ctor>)[datatype];
}

/** Product of the dimensions (1 for a scalar). */
export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, d) => a * d, 1);
}

function invalid(field: string, message: string): WhaleError {
  return new WhaleError('ERR_INVALID_ARG', `${field}: ${message}`, { field });
}

function shapeError(field: string, message: string): WhaleError {
  return new WhaleError('ERR_SHAPE_MISMATCH', `${field}: ${message}`, { field });
}

function dataMatches(datatype: Datatype, data: unknown): boolean {
  if (datatype === 'BOOL') return Array.isArray(data) && data.every((v) => typeof v === 'boolean');
  if (datatype === 'BYTES') return Array.isArray(data) && data.every((v) => typeof v === 'string');
  const ctor = storageOf(datatype);
  return ctor !== undefined && data instanceof ctor;
}

/** Checks one tensor on its own: datatype known, storage matching it, shape sane, length = product(shape). */
export function validateTensor(t: Tensor, field: string): void {
  if (typeof t !== 'object' || t === null) throw invalid(field, 'must be a tensor {name, datatype, shape, data}');
  if (!DATATYPES.includes(t.datatype))
    throw invalid(`${field}.datatype`, `unknown datatype ${JSON.stringify(t.datatype)}`);
  if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw invalid(`${field}.shape`, 'must be an array of non-negative integers');
  }
  if (!dataMatches(t.datatype, t.data)) {
    const want = storageOf(t.datatype)?.name ?? (t.datatype === 'BOOL' ? 'boolean[]' : 'string[]');
    throw invalid(`${field}.data`, `a ${t.datatype} tensor needs its data in a ${want}`);
  }
  const count = elementCount(t.shape);
  if (t.data.length !== count) {
    throw invalid(`${field}.data`, `has ${t.data.length} elements but shape [${t.shape.join(', ')}] needs ${count}`);
  }
}

function describeShape(shape: readonly number[]): string {
  return `[${shape.map((d) => (d === -1 ? '?' : d)).join(', ')}]`;
}

/**
 * Checks `inputs` against the declared `specs`: no unknown or missing input,
 * the declared datatype, the declared rank and fixed dimensions, and data
 * length = product(shape). Every failure is a WhaleError naming `<at>.<name>...`
 * (ERR_SHAPE_MISMATCH for a shape the spec does not allow, else ERR_INVALID_ARG).
 */
export function validateTensors(specs: readonly TensorSpec[], inputs: NamedTensors, at = 'inputs'): void {
  if (typeof inputs !== 'object' || inputs === null || Array.isArray(inputs)) {
    throw invalid(at, 'must be an object of named tensors');
  }
  const byName = new Map(specs.map((s) => [s.name, s]));
  for (const name of Object.keys(inputs)) {
    if (!byName.has(name)) {
      throw invalid(
        `${at}.${name}`,
        `unknown input '${name}' (the model takes: ${specs.map((s) => s.name).join(', ') || 'none'})`,
      );
    }
  }
  for (const spec of specs) {
    const field = `${at}.${spec.name}`;
    const t = inputs[spec.name];
    if (t === undefined)
      throw invalid(field, `missing input '${spec.name}' ${spec.datatype}${describeShape(spec.shape)}`);
    if (typeof t === 'object' && t !== null && t.datatype !== spec.datatype) {
      throw invalid(`${field}.datatype`, `expected ${spec.datatype}, got ${String(t.datatype)}`);
    }
    validateTensor(t, field);
    if (t.shape.length !== spec.shape.length || spec.shape.some((d, i) => d !== -1 && d !== t.shape[i])) {
      throw shapeError(`${field}.shape`, `expected ${describeShape(spec.shape)}, got [${t.shape.join(', ')}]`);
    }
  }
}

/** Rows (dimension 0) of a batchable tensor. */
function rowsOf(t: Tensor, field: string): number {
  if (t.shape.length === 0) throw shapeError(`${field}.shape`, 'a scalar has no batch dimension');
  return t.shape[0]!;
}

/** Stacks tensors of one name along dimension 0; their datatypes and other dimensions must agree. */
export function concatTensors(list: readonly Tensor[], field = 'tensors'): Tensor {
  const first = list[0];
  if (!first) throw invalid(field, 'needs at least one tensor');
  const tail = first.shape.slice(1);
  let rows = 0;
  list.forEach((t, i) => {
    rows += rowsOf(t, `${field}[${i}]`);
    if (t.datatype !== first.datatype)
      throw invalid(`${field}[${i}].datatype`, `expected ${first.datatype}, got ${t.datatype}`);
    if (t.shape.length !== first.shape.length || t.shape.some((d, k) => k > 0 && d !== tail[k - 1])) {
      throw shapeError(`${field}[${i}].shape`, `expected [?, ${tail.join(', ')}], got [${t.shape.join(', ')}]`);
    }
  });
  const shape = [rows, ...tail];
  const ctor = storageOf(first.datatype);
  if (!ctor)
    return {
      name: first.name,
      datatype: first.datatype,
      shape,
      data: list.flatMap((t) => t.data as unknown[]) as TensorData,
    };
  const data = new ctor(elementCount(shape)) as Exclude<TensorData, string[] | boolean[]>;
  let at = 0;
  for (const t of list) {
    (data as Float32Array).set(t.data as Float32Array, at);
    at += t.data.length;
  }
  return { name: first.name, datatype: first.datatype, shape, data };
}

/**
 * Stacks several requests along dimension 0: each name is concatenated
 * across the list; `sizes[i]` is request i's rows (the same for all its tensors).
 */
export function concatBatch(list: readonly NamedTensors[]): { tensors: NamedTensors; sizes: number[] } {
  const first = list[0];
  if (!first) throw invalid('inputs', 'needs at least one request');
  const names = Object.keys(first);
  const sizes = list.map((req, i) => {
    const keys = Object.keys(req);
    if (keys.length !== names.length || !names.every((n) => n in req)) {
      throw invalid(`inputs[${i}]`, `has tensors [${keys.join(', ')}], expected [${names.join(', ')}]`);
    }
    const rows = names.map((n) => rowsOf(req[n]!, `inputs[${i}].${n}`));
    if (rows.some((r) => r !== rows[0]))
      throw shapeError(`inputs[${i}]`, `its tensors disagree on the batch size (${rows.join(', ')})`);
    return rows[0] ?? 0;
  });
  const tensors: NamedTensors = {};
  for (const n of names)
    tensors[n] = concatTensors(
      list.map((r) => r[n]!),
      `inputs[*].${n}`,
    );
  return { tensors, sizes };
}

/** Copies rows [from, to) of a tensor. */
export function sliceRows(t: Tensor, from: number, to: number): Tensor {
  const rowSize = elementCount(t.shape.slice(1));
  const data = t.data.slice(from * rowSize, to * rowSize) as TensorData;
  return { name: t.name, datatype: t.datatype, shape: [to - from, ...t.shape.slice(1)], data };
}

/** The inverse of concatBatch: splits every tensor's dimension 0 into consecutive parts of `sizes` rows (copies). */
export function splitBatch(tensors: NamedTensors, sizes: readonly number[]): NamedTensors[] {
  const total = sizes.reduce((a, b) => a + b, 0);
  if (!sizes.every((s) => Number.isSafeInteger(s) && s >= 0)) throw invalid('sizes', 'must be non-negative integers');
  for (const [name, t] of Object.entries(tensors)) {
    if (rowsOf(t, `outputs.${name}`) !== total) {
      throw shapeError(`outputs.${name}.shape`, `has ${t.shape[0]} rows, the batch has ${total}`);
    }
  }
  const out: NamedTensors[] = [];
  let at = 0;
  for (const size of sizes) {
    const part: NamedTensors = {};
    for (const [name, t] of Object.entries(tensors)) part[name] = sliceRows(t, at, at + size);
    out.push(part);
    at += size;
  }
  return out;
}

/** Checks a model's declared inputs or outputs: unique non-empty names, known datatypes, dimensions >= -1. */
export function validateSpecs(specs: readonly TensorSpec[], field: string): void {
  if (!Array.isArray(specs)) throw invalid(field, 'must be an array of {name, datatype, shape}');
  const seen = new Set<string>();
  specs.forEach((s, i) => {
    const at = `${field}[${i}]`;
    if (typeof s !== 'object' || s === null) throw invalid(at, 'must be {name, datatype, shape}');
    if (typeof s.name !== 'string' || s.name.length === 0) throw invalid(`${at}.name`, 'must be a non-empty string');
    if (seen.has(s.name)) throw invalid(`${at}.name`, `'${s.name}' is declared twice`);
    seen.add(s.name);
    if (!DATATYPES.includes(s.datatype))
      throw invalid(`${at}.datatype`, `must be one of ${DATATYPES.join(', ')}, got ${JSON.stringify(s.datatype)}`);
    if (!Array.isArray(s.shape) || !s.shape.every((d: number) => Number.isSafeInteger(d) && d >= -1)) {
      throw invalid(`${at}.shape`, 'must be an array of integers >= -1 (-1 = variable)');
    }
  });
}
