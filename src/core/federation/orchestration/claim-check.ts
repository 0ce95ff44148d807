/**
 * Claim-check for tensors on the bus: a model or update is encoded as a codec
 * blob (checksummed, int8/fp16/f32...) and, above `inlineBytes`, stored under
 * its sha256 while the message carries only the reference. The receiver
 * recomputes the hash, so a swapped or damaged blob is refused (ERR_CHECKSUM)
 * before it is decoded.
 */
import { createHash } from 'node:crypto';

import { WhaleError } from '../../../common/errors.js';
import { decodeTensor, encodeTensor, TENSOR_CODECS, type TensorCodec } from '../../memory/codec.js';
import { TopKCompressor, type SparseUpdate } from '../../memory/topk.js';
import type { KeyValueStore } from './kv-store.js';

export interface BlobRef {
  sha256: string;
  bytes: number;
  /** base64 of the bytes, when small enough to travel in the message. */
  inline?: string;
}

export interface TensorRef {
  kind: 'dense' | 'sparse';
  length: number;
  codec: TensorCodec;
  data: BlobRef;
  /** Sparse: ascending uint32 positions (little-endian bytes). */
  indices?: BlobRef;
}

/** Brokers cap messages around 1 MB; stay well under it. */
export const DEFAULT_INLINE_BYTES = 256 * 1024;

const blobKey = (sha256: string): string => `fed/blob/${sha256}`;

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Bytes a tensor reference stands for (what one receiver downloads). */
export function refBytes(ref: TensorRef): number {
  return ref.data.bytes + (ref.indices?.bytes ?? 0);
}

export class ClaimCheck {
  constructor(
    private readonly store: KeyValueStore,
    readonly inlineBytes = DEFAULT_INLINE_BYTES,
  ) {
    if (!(Number.isInteger(inlineBytes) && inlineBytes >= 0)) {
      throw new WhaleError('ERR_INVALID_OPTION', `inlineBytes: must be an integer >= 0, got ${inlineBytes}`, {
        field: 'inlineBytes',
      });
    }
  }

  async putBytes(bytes: Uint8Array): Promise<BlobRef> {
    const sha256 = sha256Hex(bytes);
    if (bytes.length <= this.inlineBytes)
      return {
        sha256,
        bytes: bytes.length,
        inline: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64'),
      };
    await this.store.set(blobKey(sha256), bytes);
    return { sha256, bytes: bytes.length };
  }

  /** The bytes behind a reference, checked against its length and hash. */
  async getBytes(ref: BlobRef, field = 'ref'): Promise<Uint8Array> {
    if (
      typeof ref !== 'object' ||
      ref === null ||
      typeof ref.sha256 !== 'string' ||
      !/^[0-9a-f]{64}$/.test(ref.sha256)
    ) {
      throw new WhaleError('ERR_INVALID_MESSAGE', `${field}.sha256: must be 64 hex digits`, {
        field: `${field}.sha256`,
      });
    }
    let bytes: Uint8Array | undefined;
    if (typeof ref.inline === 'string') bytes = new Uint8Array(Buffer.from(ref.inline, 'base64'));
    else bytes = await this.store.get(blobKey(ref.sha256));
    if (!bytes)
      throw new WhaleError('ERR_NOT_FOUND', `${field}: no blob ${ref.sha256} in the ${this.store.kind} store`, {
        field,
        retriable: true,
      });
    if (bytes.length !== ref.bytes) {
      throw new WhaleError(
        'ERR_CHECKSUM',
        `${field}: blob has ${bytes.length} bytes, the reference says ${ref.bytes}`,
        { field },
      );
    }
    const actual = sha256Hex(bytes);
    if (actual !== ref.sha256)
      throw new WhaleError(
        'ERR_CHECKSUM',
        `${field}: content hash ${actual} does not match the reference ${ref.sha256}`,
        { field },
      );
    return bytes;
  }

  async packDense(values: Float32Array, codec: TensorCodec): Promise<TensorRef> {
    const blob = encodeTensor(values, { codec, nonFinite: 'error' });
    return { kind: 'dense', length: values.length, codec, data: await this.putBytes(blob) };
  }

  async packSparse(s: SparseUpdate, codec: TensorCodec): Promise<TensorRef> {
    const idx = new Uint8Array(s.indices.buffer, s.indices.byteOffset, s.indices.byteLength);
    const values = s.values.length > 0 ? s.values : new Float32Array(1); // the codec refuses empty tensors
    return {
      kind: 'sparse',
      length: s.length,
      codec,
      data: await this.putBytes(encodeTensor(values, { codec })),
      indices: await this.putBytes(idx),
    };
  }

  /** Decodes a reference into dense floats; `expectedLength` guards the shape before any work. */
  async unpack(ref: TensorRef, expectedLength?: number, field = 'tensor'): Promise<Float32Array> {
    if (typeof ref !== 'object' || ref === null)
      throw new WhaleError('ERR_INVALID_MESSAGE', `${field}: expected a tensor reference`, { field });
    if (!TENSOR_CODECS.includes(ref.codec))
      throw new WhaleError('ERR_INVALID_MESSAGE', `${field}.codec: unknown codec ${JSON.stringify(ref.codec)}`, {
        field: `${field}.codec`,
      });
    if (expectedLength !== undefined && ref.length !== expectedLength) {
      throw new WhaleError(
        'ERR_SHAPE_MISMATCH',
        `${field}.length: ${ref.length} values, the model has ${expectedLength}`,
        { field: `${field}.length` },
      );
    }
    const data = decodeTensor(await this.getBytes(ref.data, `${field}.data`));
    if (ref.kind === 'dense') {
      if (data.length !== ref.length)
        throw new WhaleError(
          'ERR_SHAPE_MISMATCH',
          `${field}: blob holds ${data.length} values, the reference says ${ref.length}`,
          { field },
        );
      return data;
    }
    if (ref.kind !== 'sparse' || !ref.indices)
      throw new WhaleError('ERR_INVALID_MESSAGE', `${field}.kind: must be 'dense' or 'sparse' with indices`, {
        field: `${field}.kind`,
      });
    const raw = await this.getBytes(ref.indices, `${field}.indices`);
    if (raw.length % 4 !== 0)
      throw new WhaleError('ERR_CORRUPT', `${field}.indices: ${raw.length} bytes is not a whole number of uint32`, {
        field: `${field}.indices`,
      });
    const indices = new Uint32Array(raw.slice().buffer);
    const values = indices.length === 0 ? new Float32Array(0) : data;
    if (values.length !== indices.length)
      throw new WhaleError('ERR_SHAPE_MISMATCH', `${field}: ${values.length} values for ${indices.length} indices`, {
        field,
      });
    return TopKCompressor.decompress({ indices, values, length: ref.length });
  }

  /** Removes stored blobs of a reference (inline ones have nothing stored). */
  async release(ref: TensorRef): Promise<void> {
    for (const b of [ref.data, ref.indices])
      if (b && b.inline === undefined) await this.store.delete(blobKey(b.sha256));
  }
}
