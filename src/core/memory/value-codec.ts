/**
 * How cache values are stored below L1: a one-byte tag, then the body.
 * Top-level strings, Buffers and Uint8Arrays are stored as their bytes, a
 * top-level Float32Array as a quantized tensor blob (core/memory/codec, lossy
 * unless the namespace's codec is 'f32'); every other accepted value with
 * Node's structured serializer (node:v8), which keeps types (typed arrays,
 * Map, Set, Date, bigint, NaN, -0) exactly. Whatever is read back is checked
 * against the same rules as a value being set, so a foreign or damaged entry
 * is refused (ERR_CORRUPT), never handed out.
 */
import { deserialize, serialize } from 'node:v8';

import { WhaleError } from '../../common/errors.js';
import { checkValue, type CacheValue } from './cache-value.js';
import { decodeTensor, encodeTensor, type EncodeOptions } from './codec.js';

export type { CacheValue } from './cache-value.js';

const TAG_TENSOR = 0x54; // 'T'
const TAG_BUFFER = 0x42; // 'B'
const TAG_UINT8 = 0x55; // 'U'
const TAG_STRING = 0x53; // 'S'
const TAG_STRUCTURED = 0x56; // 'V'
const TAG_JSON = 0x4a; // 'J': written by earlier versions, still read

export interface Serialized {
  data: Buffer;
  /** Size of the value before compression (tensors: 4 bytes per float). */
  rawBytes: number;
}

const tagged = (tag: number, body: Uint8Array): Buffer => Buffer.concat([Buffer.of(tag), body]);

/** value must have passed checkValue. */
export function serializeValue(value: CacheValue, tensor: EncodeOptions): Serialized {
  const proto = typeof value === 'object' && value !== null ? Object.getPrototypeOf(value) : undefined;
  if (proto === Float32Array.prototype) {
    const t = value as Float32Array;
    return { data: tagged(TAG_TENSOR, encodeTensor(t, tensor)), rawBytes: t.byteLength };
  }
  if (proto === Buffer.prototype || proto === Uint8Array.prototype) {
    const b = value as Uint8Array;
    return { data: tagged(proto === Buffer.prototype ? TAG_BUFFER : TAG_UINT8, b), rawBytes: b.byteLength };
  }
  if (typeof value === 'string') {
    const body = Buffer.from(value, 'utf8');
    return { data: tagged(TAG_STRING, body), rawBytes: body.length };
  }
  const body = serialize(value);
  return { data: tagged(TAG_STRUCTURED, body), rawBytes: body.length };
}

/** The value and its L1 size estimate; a WhaleError (ERR_CORRUPT or a blob error) for anything unreadable. */
export function deserializeValue(data: Uint8Array): { value: CacheValue; bytes: number } {
  if (data.length === 0) throw corrupt('empty');
  const value = decode(data[0]!, data.subarray(1));
  let bytes: number;
  try {
    bytes = checkValue(value);
  } catch (err) {
    throw corrupt(`holds a value the cache does not accept (${(err as Error).message})`, err);
  }
  return { value, bytes };
}

function decode(tag: number, body: Uint8Array): CacheValue {
  switch (tag) {
    case TAG_TENSOR:
      return decodeTensor(body);
    case TAG_BUFFER: {
      const b = Buffer.alloc(body.length); // owned memory, not a view of the read buffer
      b.set(body);
      return b;
    }
    case TAG_UINT8:
      return new Uint8Array(body);
    case TAG_STRING:
      return Buffer.from(body.buffer, body.byteOffset, body.length).toString('utf8');
    case TAG_STRUCTURED:
      try {
        // A private copy: deserialized typed arrays are views of the buffer they were read from.
        return deserialize(new Uint8Array(body)) as CacheValue;
      } catch (err) {
        throw corrupt('unreadable structured value', err);
      }
    case TAG_JSON:
      try {
        return JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.length).toString('utf8')) as CacheValue;
      } catch (err) {
        throw corrupt('invalid JSON', err);
      }
    default:
      throw corrupt(`unknown tag 0x${tag.toString(16)}`);
  }
}

function corrupt(reason: string, cause?: unknown): WhaleError {
  return new WhaleError('ERR_CORRUPT', `cache value: ${reason}`, {
    field: 'value',
    ...(cause === undefined ? {} : { cause }),
  });
}
