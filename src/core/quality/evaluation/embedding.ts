/**
 * Embedding similarity with a model the user configures (any model served by
 * the hosting layer whose first input is FP32 [batch, width] and whose first
 * FP32 output is the embedding). Texts reach the model through `encode`; the
 * default is a hashed bag of tokens: token t adds 1 at FNV-1a(t) mod width, and
 * the vector is L2-normalised. The score is (1 + cosine(e1, e2)) / 2.
 */
import { WhaleError } from '../../../common/errors.js';
import type { NamedTensors, TensorSpec } from '../../base/tensor.js';
import { tokenize } from './text.js';

export type TextEncoder = (text: string, width: number) => Float32Array;

export interface EmbeddingModelAccess {
  /** The model's declared inputs (the first one takes the encoded texts). */
  inputs: readonly TensorSpec[];
  /** Runs the model (through the scheduler when served). */
  run(inputs: NamedTensors): Promise<NamedTensors>;
}

export function hashedBagOfTokens(text: string, width: number): Float32Array {
  const v = new Float32Array(width);
  for (const t of tokenize(text)) v[fnv1a(t) % width]! += 1;
  let norm = 0;
  for (const x of v) norm += x * x;
  if (norm > 0) for (let i = 0; i < width; i++) v[i]! /= Math.sqrt(norm);
  return v;
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

export class EmbeddingSimilarity {
  private readonly input: TensorSpec;
  private readonly width: number;

  constructor(
    private readonly model: EmbeddingModelAccess,
    private readonly encode: TextEncoder = hashedBagOfTokens,
  ) {
    const input = model.inputs[0];
    const width = input?.shape[input.shape.length - 1];
    if (!input || input.datatype !== 'FP32' || input.shape.length !== 2 || width === undefined || width < 1) {
      throw new WhaleError(
        'ERR_INVALID_ARG',
        'embeddingModel: its first input must be FP32 [batch, width] with a fixed width',
        { field: 'embeddingModel' },
      );
    }
    this.input = input;
    this.width = width;
  }

  /** (1 + cos)/2 between the embedding of `text` and each of `others`, in one model run. */
  async similarities(text: string, others: readonly string[]): Promise<number[]> {
    const texts = [text, ...others];
    const data = new Float32Array(texts.length * this.width);
    texts.forEach((t, i) => {
      const v = this.encode(t, this.width);
      if (!(v instanceof Float32Array) || v.length !== this.width) {
        throw new WhaleError(
          'ERR_INVALID_ARG',
          `embedding encoder: must return a Float32Array of ${this.width} values`,
          { field: 'encode' },
        );
      }
      data.set(v, i * this.width);
    });
    const out = await this.model.run({
      [this.input.name]: { name: this.input.name, datatype: 'FP32', shape: [texts.length, this.width], data },
    });
    const emb = Object.values(out).find((t) => t.datatype === 'FP32');
    if (!emb || emb.shape[0] !== texts.length)
      throw new WhaleError('ERR_MODEL_RUN', 'embeddingModel: no FP32 output with one row per text', {
        field: 'embeddingModel',
      });
    const vectors = emb.data as Float32Array;
    const dim = vectors.length / texts.length;
    const row = (i: number) => vectors.subarray(i * dim, (i + 1) * dim);
    return others.map((_, i) => (1 + cosine(row(0), row(i + 1))) / 2);
  }
}

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  if (na === 0 || nb === 0) return 0;
  return Math.max(-1, Math.min(1, dot / Math.sqrt(na * nb)));
}
