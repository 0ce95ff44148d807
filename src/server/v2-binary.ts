/**
 * Triton's binary tensor data extension of the V2 HTTP protocol
 * (docs/protocol/extension_binary_data.md of triton-inference-server/server), and
 * the raw tensor bytes gRPC's raw_input_contents / raw_output_contents carry.
 *
 * Request: the header `Inference-Header-Content-Length: N`; the body is N bytes
 * of the JSON inference request, then the bytes of every input that has
 * `parameters.binary_data_size`, in the order of `inputs`, back to back.
 * `Inference-Header-Content-Length: 0` is Triton's raw binary request: the whole
 * body is the bytes of the model's only input (batch 1), every output binary.
 *
 * Response: an output asked for with `parameters.binary_data: true` (or every
 * output, with the request's `parameters.binary_data_output: true`, unless the
 * output says false) is sent as bytes after the JSON response, its size in its
 * `parameters.binary_data_size`; the answer then has
 * `Content-Type: application/octet-stream` and `Inference-Header-Content-Length`.
 *
 * Bytes: little-endian, row-major, no padding; BOOL one byte (0/1); BYTES each
 * element a 4-byte little-endian length then its bytes; FP16 raw half bits.
 * Raw bytes become typed arrays that view the received buffer where its offset
 * is aligned for the type (the HTTP body is received so that the binary
 * section starts 8-byte aligned), else one copy.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { endianness } from 'node:os';

import { WhaleError } from '../common/errors.js';
import type { Datatype, NamedTensors, Tensor, TensorData, TensorSpec } from '../core/base/tensor.js';
import { parseJsonBody, readBody, readJson, sendJson } from '../transport/http-json.js';
import {
  fromNamedTensors,
  parseInferRequest,
  toTensor,
  type V2InferRequest,
  type V2RequestedOutput,
} from './v2-tensors.js';

/** The request and response header giving the JSON part's length (node lower-cases header names). */
export const INFERENCE_HEADER = 'inference-header-content-length';

type TypedCtor = {
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): Exclude<TensorData, string[] | boolean[]>;
  new (length: number): Exclude<TensorData, string[] | boolean[]>;
  readonly BYTES_PER_ELEMENT: number;
};

const TYPED: Partial<Record<Datatype, TypedCtor>> = {
  UINT8: Uint8Array,
  INT8: Int8Array,
  UINT16: Uint16Array,
  INT16: Int16Array,
  FP16: Uint16Array,
  UINT32: Uint32Array,
  INT32: Int32Array,
  FP32: Float32Array,
  UINT64: BigUint64Array,
  INT64: BigInt64Array,
  FP64: Float64Array,
};

const LITTLE_ENDIAN = endianness() === 'LE';

function bad(field: string, message: string): WhaleError {
  return new WhaleError('ERR_INVALID_ARG', `${field}: ${message}`, { field });
}

/** Bytes per element of a fixed-size datatype (BOOL 1); undefined for BYTES. */
export function elementSize(datatype: string): number | undefined {
  if (datatype === 'BOOL') return 1;
  return TYPED[datatype as Datatype]?.BYTES_PER_ELEMENT;
}

/**
 * The value of Inference-Header-Content-Length: undefined when absent (a plain JSON request),
 * else a non-negative integer (400 for anything else).
 */
export function inferenceHeaderLength(req: IncomingMessage): number | undefined {
  const raw = req.headers[INFERENCE_HEADER];
  if (raw === undefined) return undefined;
  const text = Array.isArray(raw) ? raw.join(',') : raw;
  if (!/^\s*\d{1,15}\s*$/.test(text)) {
    throw bad(
      'Inference-Header-Content-Length',
      `must be the length in bytes of the JSON header (a non-negative integer), got '${text.slice(0, 32)}'`,
    );
  }
  return Number(text);
}

/** Padding before a body whose binary section starts after `headerLength` bytes, so that section starts 8-byte aligned. */
export function alignPad(headerLength: number): number {
  return (8 - (headerLength % 8)) % 8;
}

/** The tensor that `bytes` hold, as `datatype` and `shape` say (`at` names it in errors). */
export function decodeRawTensor(
  name: string,
  datatype: string,
  shape: number[],
  bytes: Uint8Array,
  at: string,
): Tensor {
  const count = shape.reduce((a, d) => a * d, 1);
  if (datatype === 'BYTES') return { name, datatype, shape: [...shape], data: decodeBytesElements(bytes, count, at) };
  const size = elementSize(datatype);
  if (size === undefined) throw bad(`${at}.datatype`, `${JSON.stringify(datatype)} has no binary form`);
  if (bytes.byteLength !== count * size) {
    throw bad(
      at,
      `has ${bytes.byteLength} bytes of data but shape [${shape.join(', ')}] of ${datatype} needs ${count * size} (${count} × ${size})`,
    );
  }
  let data: TensorData;
  if (datatype === 'BOOL') {
    const flags: boolean[] = new Array<boolean>(count);
    for (let i = 0; i < count; i++) {
      const b = bytes[i]!;
      if (b > 1) throw bad(`${at}[${i}]`, `BOOL bytes must be 0 or 1, got ${b}`);
      flags[i] = b === 1;
    }
    data = flags;
  } else {
    const Ctor = TYPED[datatype as Datatype]!;
    if (!LITTLE_ENDIAN) data = swapped(Ctor, bytes, count, size);
    else if (bytes.byteOffset % size === 0)
      data = new Ctor(bytes.buffer, bytes.byteOffset, count); // a view: no copy
    else {
      const copy = new Ctor(count);
      new Uint8Array(copy.buffer, copy.byteOffset, copy.byteLength).set(bytes);
      data = copy;
    }
  }
  return { name, datatype: datatype as Datatype, shape: [...shape], data };
}

/** A big-endian host reads the little-endian bytes element by element. */
function swapped(
  Ctor: TypedCtor,
  bytes: Uint8Array,
  count: number,
  size: number,
): Exclude<TensorData, string[] | boolean[]> {
  const out = new Ctor(count);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dst = new DataView(out.buffer);
  for (let i = 0; i < count * size; i += size) {
    for (let j = 0; j < size; j++) dst.setUint8(i + j, view.getUint8(i + size - 1 - j));
  }
  return out;
}

function decodeBytesElements(bytes: Uint8Array, count: number, at: string): string[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: string[] = new Array<string>(count);
  let off = 0;
  for (let i = 0; i < count; i++) {
    if (off + 4 > bytes.byteLength)
      throw bad(
        at,
        `BYTES element ${i}: its 4-byte length prefix is past the end of the ${bytes.byteLength} bytes given`,
      );
    const n = view.getUint32(off, true);
    off += 4;
    if (off + n > bytes.byteLength)
      throw bad(at, `BYTES element ${i}: length ${n} runs past the end of the ${bytes.byteLength} bytes given`);
    out[i] = Buffer.from(bytes.buffer, bytes.byteOffset + off, n).toString('utf8');
    off += n;
  }
  if (off !== bytes.byteLength)
    throw bad(at, `${bytes.byteLength - off} bytes left over after the ${count} BYTES elements its shape declares`);
  return out;
}

/** An engine tensor as raw bytes (a view of a typed array's memory where possible). */
export function encodeRawTensor(t: Tensor): Buffer {
  const d = t.data;
  if (t.datatype === 'BYTES') {
    const parts = (d as string[]).map((s) => Buffer.from(String(s), 'utf8'));
    const out = Buffer.allocUnsafe(parts.reduce((a, p) => a + 4 + p.length, 0));
    let off = 0;
    for (const p of parts) {
      out.writeUInt32LE(p.length, off);
      p.copy(out, off + 4);
      off += 4 + p.length;
    }
    return out;
  }
  if (Array.isArray(d)) return Buffer.from((d as unknown[]).map((v) => (v ? 1 : 0)));
  const typed = d as Exclude<TensorData, string[] | boolean[]>;
  if (!LITTLE_ENDIAN && typed.BYTES_PER_ELEMENT > 1) {
    const out = Buffer.from(typed.buffer.slice(typed.byteOffset, typed.byteOffset + typed.byteLength));
    for (let i = 0; i < out.length; i += typed.BYTES_PER_ELEMENT)
      out.subarray(i, i + typed.BYTES_PER_ELEMENT).reverse();
    return out;
  }
  return Buffer.from(typed.buffer, typed.byteOffset, typed.byteLength);
}

export interface DecodedInferRequest {
  request: V2InferRequest;
  inputs: NamedTensors;
}

/**
 * Reads an infer request in either form: JSON, or Triton's binary form when the
 * Inference-Header-Content-Length header is there. `model` gives the inputs a raw
 * binary request (header 0) is decoded against (undefined: such a request is refused).
 */
export async function readInferRequest(
  req: IncomingMessage,
  maxBodyBytes: number,
  model?: { inputs: TensorSpec[]; outputs: TensorSpec[] },
): Promise<DecodedInferRequest> {
  const headerLength = inferenceHeaderLength(req);
  if (headerLength === undefined) {
    if (/^application\/octet-stream\b/i.test(req.headers['content-type'] ?? '')) {
      req.resume();
      throw bad(
        'Inference-Header-Content-Length',
        'a binary (application/octet-stream) infer body needs this header: the length of its JSON header (0: the body is the only input)',
      );
    }
    // `data` arrays of numbers come back as Float64Array, parsed natively (toTensor takes either).
    const request = parseInferRequest(await readJson(req, maxBodyBytes, { numberArraysUnder: 'data' }));
    return { request, inputs: jsonInputs(request) };
  }
  const body = await readBody(req, maxBodyBytes, { pad: alignPad(headerLength) });
  if (headerLength > body.byteLength) {
    throw bad('Inference-Header-Content-Length', `is ${headerLength} but the body has only ${body.byteLength} bytes`);
  }
  if (headerLength === 0) return rawBinaryRequest(body, model);
  return decodeBinaryRequest(body, headerLength, req);
}

function jsonInputs(request: V2InferRequest): NamedTensors {
  const named: NamedTensors = {};
  request.inputs.forEach((t, i) => {
    if (named[t.name]) throw bad(`inputs[${i}].name`, `input '${t.name}' is given twice`);
    named[t.name] = toTensor(t, `inputs[${i}]`);
  });
  return named;
}

/** A body in the binary form: `headerLength` bytes of JSON, then the binary inputs' bytes in input order. */
export function decodeBinaryRequest(body: Buffer, headerLength: number, req?: IncomingMessage): DecodedInferRequest {
  const request = parseInferRequest(parseJsonBody(body.subarray(0, headerLength), req, 'body (the JSON header)'), {
    binary: true,
  });
  const named: NamedTensors = {};
  let off = headerLength;
  request.inputs.forEach((t, i) => {
    const at = `inputs[${i}]`;
    if (named[t.name]) throw bad(`${at}.name`, `input '${t.name}' is given twice`);
    const size = t.parameters?.binary_data_size;
    if (size === undefined) {
      named[t.name] = toTensor(t, at);
      return;
    }
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
      throw bad(
        `${at}.parameters.binary_data_size`,
        `must be a non-negative integer (bytes), got ${JSON.stringify(size)}`,
      );
    }
    if (off + size > body.byteLength) {
      throw bad(
        `${at}.parameters.binary_data_size`,
        `${size} bytes from byte ${off - headerLength} of the binary data run past its end (${body.byteLength - headerLength} bytes after the ${headerLength}-byte JSON header)`,
      );
    }
    named[t.name] = decodeRawTensor(t.name, t.datatype, t.shape, body.subarray(off, off + size), at);
    off += size;
  });
  if (off !== body.byteLength) {
    throw bad(
      'body',
      `${body.byteLength - off} bytes after the JSON header are not claimed by any input's parameters.binary_data_size (the header says ${headerLength} bytes of JSON, the inputs ${off - headerLength} bytes of data)`,
    );
  }
  return { request, inputs: named };
}

/** Inference-Header-Content-Length: 0 — the body is the only input's bytes, batch 1; every output comes back binary. */
function rawBinaryRequest(body: Buffer, model: { inputs: TensorSpec[] } | undefined): DecodedInferRequest {
  if (!model)
    throw bad(
      'Inference-Header-Content-Length',
      'a raw binary request (0: no JSON header) needs a model route that knows the input',
    );
  if (model.inputs.length !== 1)
    throw bad(
      'Inference-Header-Content-Length',
      `a raw binary request (0: no JSON header) needs a model with one input; this one has ${model.inputs.length}`,
    );
  const spec = model.inputs[0]!;
  let shape: number[];
  if (spec.datatype === 'BYTES') shape = [1];
  else {
    const size = elementSize(spec.datatype)!;
    if (body.byteLength % size !== 0)
      throw bad(
        'body',
        `${body.byteLength} bytes is not a whole number of ${spec.datatype} elements (${size} bytes each)`,
      );
    const count = body.byteLength / size;
    const vars = spec.shape.filter((d) => d < 0).length;
    const fixed = spec.shape.reduce((a, d) => (d < 0 ? a : a * d), 1);
    if (vars > 1)
      throw bad(
        'Inference-Header-Content-Length',
        `a raw binary request needs at most one variable dimension; input '${spec.name}' has shape [${spec.shape.join(', ')}]`,
      );
    if (fixed === 0 ? count !== 0 : count % fixed !== 0 || (vars === 0 && count !== fixed)) {
      throw bad(
        'body',
        `${count} ${spec.datatype} elements do not fit input '${spec.name}' of shape [${spec.shape.join(', ')}]`,
      );
    }
    shape = spec.shape.map((d) => (d < 0 ? (fixed === 0 ? 0 : count / fixed) : d));
  }
  const tensor = decodeRawTensor(spec.name, spec.datatype, shape, body, 'body');
  return {
    request: {
      inputs: [
        {
          name: spec.name,
          datatype: spec.datatype,
          shape,
          data: undefined,
          parameters: { binary_data_size: body.byteLength },
        },
      ],
      parameters: { binary_data_output: true },
    },
    inputs: { [spec.name]: tensor },
  };
}

/** An infer answer with binary outputs: the JSON response and the outputs' bytes after it. */
export class BinaryAnswer {
  constructor(
    readonly json: unknown,
    readonly chunks: Buffer[],
  ) {}
}

function binaryFlag(v: unknown, field: string): boolean | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw bad(field, `must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * The `outputs` of an infer answer: JSON tensors, and the binary ones (by each output's
 * `binary_data`, else the request's `binary_data_output`) with their bytes in `chunks`.
 */
export function encodeInferOutputs(
  outputs: NamedTensors,
  request: Pick<V2InferRequest, 'outputs' | 'parameters'>,
): { outputs: unknown[]; chunks: Buffer[] } {
  const all = binaryFlag(request.parameters?.binary_data_output, 'parameters.binary_data_output') ?? false;
  const wanted: V2RequestedOutput[] = request.outputs ?? Object.keys(outputs).map((name) => ({ name }));
  const chunks: Buffer[] = [];
  const out = wanted.map((w, i) => {
    const t = outputs[w.name];
    if (!t)
      throw bad(
        `outputs[${i}].name`,
        `the model has no output '${w.name}' (outputs: ${Object.keys(outputs).join(', ')})`,
      );
    const binary = binaryFlag(w.parameters?.binary_data, `outputs[${i}].parameters.binary_data`) ?? all;
    if (!binary) return fromNamedTensors({ [w.name]: t })[0]!;
    const bytes = encodeRawTensor(t);
    chunks.push(bytes);
    return {
      name: w.name,
      datatype: t.datatype,
      shape: [...t.shape],
      parameters: { binary_data_size: bytes.byteLength },
    };
  });
  return { outputs: out, chunks };
}

/** The V2 infer answer object; a BinaryAnswer when any output is binary. */
export function inferAnswer(
  fields: Record<string, unknown>,
  outputs: NamedTensors,
  request: Pick<V2InferRequest, 'outputs' | 'parameters'>,
): unknown {
  const { outputs: out, chunks } = encodeInferOutputs(outputs, request);
  const json: Record<string, unknown> = { ...fields };
  json.outputs = out;
  return chunks.length > 0 ? new BinaryAnswer(json, chunks) : json;
}

/** Sends an infer answer: JSON as usual, a BinaryAnswer as its JSON header then the bytes (application/octet-stream). */
export function sendInferAnswer(res: ServerResponse, status: number, answer: unknown): true {
  if (!(answer instanceof BinaryAnswer)) return sendJson(res, status, answer);
  const header = Buffer.from(JSON.stringify(answer.json), 'utf8');
  const total = answer.chunks.reduce((a, c) => a + c.byteLength, header.byteLength);
  res.writeHead(status, {
    'content-type': 'application/octet-stream',
    [INFERENCE_HEADER]: String(header.byteLength),
    'content-length': String(total),
  });
  res.cork();
  res.write(header);
  for (const c of answer.chunks) res.write(c);
  res.uncork();
  res.end();
  return true;
}
