/**
 * JSON tensors of the V2 (Open Inference) protocol ↔ the engine's Tensor.
 * Data may be flat or nested row-major; its element count must equal the
 * product of the shape. Every problem is ERR_INVALID_ARG naming the field.
 */
import { WhaleError } from '../common/errors.js';
import type { Datatype, NamedTensors, Tensor } from '../core/base/tensor.js';
import { MAX_CLIENT_STRING_LENGTH } from '../transport/http-json.js';

export interface V2Tensor {
  name: string;
  shape: number[];
  datatype: string;
  data: unknown;
  parameters?: Record<string, unknown>;
}

export interface V2InferRequest {
  id?: string;
  parameters?: Record<string, unknown>;
  inputs: V2Tensor[];
  outputs?: V2RequestedOutput[];
}

/** An output named in the request; `parameters.binary_data` asks for it in binary form (v2-binary.ts). */
export interface V2RequestedOutput {
  name: string;
  parameters?: Record<string, unknown>;
}

type NumericArray =
  Float32Array | Float64Array | Int8Array | Int16Array | Int32Array | Uint8Array | Uint16Array | Uint32Array;
const NUMERIC: Record<string, { make: (n: number) => NumericArray; min: number; max: number; integer: boolean }> = {
  FP32: { make: (n) => new Float32Array(n), min: -3.4028234663852886e38, max: 3.4028234663852886e38, integer: false },
  FP64: { make: (n) => new Float64Array(n), min: -Number.MAX_VALUE, max: Number.MAX_VALUE, integer: false },
  INT8: { make: (n) => new Int8Array(n), min: -128, max: 127, integer: true },
  INT16: { make: (n) => new Int16Array(n), min: -32768, max: 32767, integer: true },
  INT32: { make: (n) => new Int32Array(n), min: -2147483648, max: 2147483647, integer: true },
  UINT8: { make: (n) => new Uint8Array(n), min: 0, max: 255, integer: true },
  UINT16: { make: (n) => new Uint16Array(n), min: 0, max: 65535, integer: true },
  UINT32: { make: (n) => new Uint32Array(n), min: 0, max: 4294967295, integer: true },
};
const SUPPORTED = [...Object.keys(NUMERIC), 'INT64', 'UINT64', 'BOOL', 'BYTES'];
/** FP16 has no JSON form: only raw bytes (the binary extension, gRPC raw contents) carry it. */
const BINARY_SUPPORTED = [...SUPPORTED, 'FP16'];
const MAX_DIMS = 8;

function bad(field: string, message: string): WhaleError {
  return new WhaleError('ERR_INVALID_ARG', `${field}: ${message}`, { field });
}

/**
 * Parses and checks the body of POST /v2/models/{m}/infer. With `binary` (the JSON header of a
 * request in Triton's binary form, v2-binary.ts) an input may give `parameters.binary_data_size`
 * instead of `data` (and may then be FP16); without it such an input is refused, naming the header it needs.
 */
export function parseInferRequest(body: unknown, opts: { binary?: boolean } = {}): V2InferRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad('body', 'must be a JSON object');
  const b = body as Record<string, unknown>;
  if (b.id !== undefined && typeof b.id !== 'string') throw bad('id', 'must be a string');
  if (typeof b.id === 'string' && b.id.length > MAX_CLIENT_STRING_LENGTH)
    throw bad('id', `longer than ${MAX_CLIENT_STRING_LENGTH} characters`);
  if (
    b.parameters !== undefined &&
    (typeof b.parameters !== 'object' || b.parameters === null || Array.isArray(b.parameters))
  ) {
    throw bad('parameters', 'must be an object');
  }
  if (!Array.isArray(b.inputs) || b.inputs.length === 0) throw bad('inputs', 'must be a non-empty array of tensors');
  const inputs = b.inputs.map((t, i) => checkTensorShape(t, `inputs[${i}]`, opts.binary === true));
  let outputs: V2RequestedOutput[] | undefined;
  if (b.outputs !== undefined) {
    if (!Array.isArray(b.outputs)) throw bad('outputs', 'must be an array');
    outputs = b.outputs.map((o, i) => {
      if (typeof o !== 'object' || o === null || typeof (o as { name?: unknown }).name !== 'string')
        throw bad(`outputs[${i}].name`, 'must be a string');
      const p = (o as { parameters?: unknown }).parameters;
      if (p === undefined) return { name: (o as { name: string }).name };
      if (typeof p !== 'object' || p === null || Array.isArray(p))
        throw bad(`outputs[${i}].parameters`, 'must be an object');
      return { name: (o as { name: string }).name, parameters: p as Record<string, unknown> };
    });
  }
  const request: V2InferRequest = { inputs };
  if (b.id !== undefined) request.id = b.id as string;
  if (b.parameters !== undefined) request.parameters = b.parameters as Record<string, unknown>;
  if (outputs) request.outputs = outputs;
  return request;
}

function checkTensorShape(raw: unknown, at: string, binary: boolean): V2Tensor {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw bad(at, 'must be an object {name, shape, datatype, data}');
  const t = raw as Record<string, unknown>;
  if (typeof t.name !== 'string' || t.name.length === 0) throw bad(`${at}.name`, 'must be a non-empty string');
  if (
    !Array.isArray(t.shape) ||
    t.shape.length > MAX_DIMS ||
    !t.shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)
  ) {
    throw bad(`${at}.shape`, `must be an array of at most ${MAX_DIMS} non-negative integers`);
  }
  if (
    t.parameters !== undefined &&
    (typeof t.parameters !== 'object' || t.parameters === null || Array.isArray(t.parameters))
  ) {
    throw bad(`${at}.parameters`, 'must be an object');
  }
  const binarySize = (t.parameters as Record<string, unknown> | undefined)?.binary_data_size;
  if (binarySize !== undefined) {
    if (!binary) {
      throw bad(
        `${at}.parameters.binary_data_size`,
        'binary tensor data needs the Inference-Header-Content-Length header (the length of the JSON header before the tensor bytes)',
      );
    }
    if (t.data !== undefined) throw bad(`${at}.data`, 'give data or parameters.binary_data_size, not both');
  }
  const types = binarySize === undefined ? SUPPORTED : BINARY_SUPPORTED;
  if (typeof t.datatype !== 'string' || !types.includes(t.datatype)) {
    throw bad(`${at}.datatype`, `must be one of ${types.join(', ')}, got ${JSON.stringify(t.datatype)}`);
  }
  if (t.data === undefined && binarySize === undefined) throw bad(`${at}.data`, 'is missing');
  return raw as V2Tensor;
}

/** Flattens nested row-major data, refusing ragged or too-large input. */
function flatten(data: unknown, expected: number, at: string): unknown[] {
  if (!Array.isArray(data)) return [data];
  if (!data.some(Array.isArray)) return data;
  const out: unknown[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) {
      for (const x of v) walk(x);
      return;
    }
    if (out.length >= expected) throw bad(`${at}.data`, `has more than the ${expected} elements its shape declares`);
    out.push(v);
  };
  walk(data);
  return out;
}

/**
 * A flat array of numbers straight into typed storage, checked in the same pass (the common V2 body:
 * `data` a flat list of numbers); undefined when `data` is not that (nested, other element types, a
 * wrong count or value), and toTensor's general path then says what is wrong.
 */
function flatNumeric(data: unknown, count: number, num: (typeof NUMERIC)[string]): NumericArray | undefined {
  if (!(Array.isArray(data) || data instanceof Float64Array) || data.length !== count) return undefined;
  const arr = num.make(count);
  const { min, max, integer } = num;
  for (let i = 0; i < count; i++) {
    const v: unknown = data[i];
    // NaN fails both comparisons; ±Infinity lies outside every type's finite range.
    if (typeof v !== 'number' || !(v >= min && v <= max) || (integer && !Number.isInteger(v))) return undefined;
    arr[i] = v;
  }
  return arr;
}

/** V2 JSON tensor → engine Tensor (typed storage). */
export function toTensor(t: V2Tensor, at: string): Tensor {
  const count = t.shape.reduce((a, d) => a * d, 1);
  const numeric = NUMERIC[t.datatype];
  const fast = numeric && flatNumeric(t.data, count, numeric);
  if (fast) return { name: t.name, datatype: t.datatype as Datatype, shape: [...t.shape], data: fast };
  // A Float64Array (numbers parsed natively, see readInferRequest) takes the general path as the array it was.
  const flat = flatten(t.data instanceof Float64Array ? Array.from(t.data) : t.data, count, at);
  if (flat.length !== count) {
    throw bad(`${at}.data`, `has ${flat.length} elements but shape [${t.shape.join(', ')}] needs ${count}`);
  }
  const datatype = t.datatype as Datatype;
  const num = NUMERIC[datatype];
  let data: Tensor['data'];
  if (num) {
    const arr = num.make(count);
    for (let i = 0; i < count; i++) {
      const v = flat[i];
      if (
        typeof v !== 'number' ||
        !Number.isFinite(v) ||
        v < num.min ||
        v > num.max ||
        (num.integer && !Number.isInteger(v))
      ) {
        throw bad(`${at}.data[${i}]`, `${JSON.stringify(v)} is not a valid ${datatype} value`);
      }
      arr[i] = v;
    }
    data = arr;
  } else if (datatype === 'INT64' || datatype === 'UINT64') {
    const arr = datatype === 'INT64' ? new BigInt64Array(count) : new BigUint64Array(count);
    for (let i = 0; i < count; i++) {
      const v = flat[i];
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || (datatype === 'UINT64' && v < 0)) {
        throw bad(
          `${at}.data[${i}]`,
          `${JSON.stringify(v)} is not a valid ${datatype} value (safe integers only in JSON)`,
        );
      }
      arr[i] = BigInt(v);
    }
    data = arr as Tensor['data'];
  } else if (datatype === 'BOOL') {
    data = flat.map((v, i) => {
      if (typeof v !== 'boolean') throw bad(`${at}.data[${i}]`, 'must be true or false');
      return v;
    });
  } else {
    data = flat.map((v, i) => {
      if (typeof v !== 'string') throw bad(`${at}.data[${i}]`, 'must be a string');
      return v;
    });
  }
  return { name: t.name, datatype, shape: [...t.shape], data };
}

export function toNamedTensors(inputs: V2Tensor[]): NamedTensors {
  const named: NamedTensors = {};
  inputs.forEach((t, i) => {
    if (named[t.name]) throw bad(`inputs[${i}].name`, `input '${t.name}' is given twice`);
    named[t.name] = toTensor(t, `inputs[${i}]`);
  });
  return named;
}

/** Engine tensors → V2 JSON outputs (flat row-major data), optionally only the requested names. */
export function fromNamedTensors(outputs: NamedTensors, wanted?: V2RequestedOutput[]): V2Tensor[] {
  const names = wanted ? wanted.map((w) => w.name) : Object.keys(outputs);
  return names.map((name, i) => {
    const t = outputs[name];
    if (!t)
      throw bad(
        `outputs[${i}].name`,
        `the model has no output '${name}' (outputs: ${Object.keys(outputs).join(', ')})`,
      );
    const d = t.data as ArrayLike<unknown>;
    const data = d instanceof BigInt64Array || d instanceof BigUint64Array ? Array.from(d, Number) : Array.from(d);
    return { name, datatype: t.datatype, shape: [...t.shape], data };
  });
}
