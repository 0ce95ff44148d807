/**
 * Content hashing and a compact text form of named tensors, used to answer a
 * repeated request from the response cache (the `quick` level).
 */
import { createHash } from 'node:crypto';

import type { NamedTensors, Tensor } from '../base/tensor.js';

type Typed = Exclude<Tensor['data'], string[] | boolean[]>;

const CTORS: Record<string, new (b: ArrayBuffer) => Typed> = {
  FP32: Float32Array,
  FP64: Float64Array,
  INT8: Int8Array,
  INT16: Int16Array,
  INT32: Int32Array,
  INT64: BigInt64Array as unknown as new (b: ArrayBuffer) => Typed,
  UINT8: Uint8Array,
  UINT16: Uint16Array,
  UINT32: Uint32Array,
  UINT64: BigUint64Array as unknown as new (b: ArrayBuffer) => Typed,
};

function bytesOf(data: Tensor['data']): Uint8Array {
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(JSON.stringify(data));
}

/** Same inputs for the same model (name + version) → same digest; any byte, shape or dtype change → another. */
export function digestRequest(model: string, version: string, inputs: NamedTensors): string {
  const h = createHash('sha256');
  h.update(`${model.length}:${model}${version.length}:${version}`);
  for (const name of Object.keys(inputs).sort()) {
    const t = inputs[name]!;
    const bytes = bytesOf(t.data);
    h.update(`|${name.length}:${name}|${t.datatype}|${t.shape.join('x')}|${bytes.byteLength}|`);
    h.update(bytes);
  }
  return h.digest('hex');
}

interface Stored {
  name: string;
  datatype: Tensor['datatype'];
  shape: number[];
  /** base64 of the typed storage, or the JSON array for BOOL/BYTES. */
  data: string | unknown[];
}

export function serializeTensors(tensors: NamedTensors): string {
  const out: Stored[] = Object.values(tensors).map((t) => ({
    name: t.name,
    datatype: t.datatype,
    shape: t.shape,
    data: ArrayBuffer.isView(t.data) ? Buffer.from(bytesOf(t.data)).toString('base64') : [...t.data],
  }));
  return JSON.stringify(out);
}

export function deserializeTensors(text: string): NamedTensors {
  const out: NamedTensors = {};
  for (const s of JSON.parse(text) as Stored[]) {
    let data: Tensor['data'];
    if (typeof s.data === 'string') {
      const bytes = Buffer.from(s.data, 'base64');
      const copy = new ArrayBuffer(bytes.byteLength);
      new Uint8Array(copy).set(bytes);
      const Ctor = CTORS[s.datatype];
      if (!Ctor) throw new Error(`cached tensor ${s.name} has an unknown datatype ${s.datatype}`);
      data = new Ctor(copy);
    } else {
      data = s.data as Tensor['data'];
    }
    out[s.name] = { name: s.name, datatype: s.datatype, shape: s.shape, data };
  }
  return out;
}
