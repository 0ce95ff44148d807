/**
 * How cache values are stored below L1: a one-byte tag, then the body.
 * Float32Array values become quantized tensor blobs (core/memory/codec).
 */
import { WhaleError } from '../base/errors.js';
import { decodeTensor, encodeTensor, type EncodeOptions } from './codec.js';

export type CacheValue = Float32Array | Uint8Array | string | number | boolean | null | { [key: string]: unknown } | unknown[];

const TAG_TENSOR = 0x54; // 'T'
const TAG_BYTES = 0x42; // 'B'
const TAG_STRING = 0x53; // 'S'
const TAG_JSON = 0x4a; // 'J'

export interface Serialized {
  data: Buffer;
  /** Size of the value before compression (tensors: 4 bytes per float). */
  rawBytes: number;
}

export function serializeValue(value: CacheValue, tensor: EncodeOptions): Serialized {
  if (value instanceof Float32Array) {
    const blob = encodeTensor(value, tensor);
    return { data: Buffer.concat([Buffer.of(TAG_TENSOR), blob]), rawBytes: value.byteLength };
  }
  if (value instanceof Uint8Array) {
    return { data: Buffer.concat([Buffer.of(TAG_BYTES), value]), rawBytes: value.byteLength };
  }
  if (typeof value === 'string') {
    const body = Buffer.from(value, 'utf8');
    return { data: Buffer.concat([Buffer.of(TAG_STRING), body]), rawBytes: body.length };
  }
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (err) {
    throw new WhaleError('ERR_INVALID_ARG', `value: cannot be serialized as JSON (${(err as Error).message})`, { field: 'value', cause: err });
  }
  if (json === undefined) throw new WhaleError('ERR_INVALID_ARG', 'value: undefined and functions cannot be cached', { field: 'value' });
  const body = Buffer.from(json, 'utf8');
  return { data: Buffer.concat([Buffer.of(TAG_JSON), body]), rawBytes: body.length };
}

/** Throws a WhaleError (ERR_CORRUPT or a blob error) for anything it cannot read back. */
export function deserializeValue(data: Uint8Array): CacheValue {
  if (data.length === 0) throw new WhaleError('ERR_CORRUPT', 'cache value: empty', { field: 'value' });
  const body = data.subarray(1);
  switch (data[0]) {
    case TAG_TENSOR:
      return decodeTensor(body);
    case TAG_BYTES:
      return Buffer.from(body);
    case TAG_STRING:
      return Buffer.from(body).toString('utf8');
    case TAG_JSON:
      try {
        return JSON.parse(Buffer.from(body).toString('utf8')) as CacheValue;
      } catch (err) {
        throw new WhaleError('ERR_CORRUPT', 'cache value: invalid JSON', { field: 'value', cause: err });
      }
    default:
      throw new WhaleError('ERR_CORRUPT', `cache value: unknown tag 0x${data[0]!.toString(16)}`, { field: 'value' });
  }
}

/** Approximate in-process footprint, for the L1 byte budget. */
export function valueBytes(value: CacheValue): number {
  if (value instanceof Float32Array || value instanceof Uint8Array) return value.byteLength + 64;
  if (typeof value === 'string') return value.length * 2 + 32;
  return Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8') * 2 + 64;
}
