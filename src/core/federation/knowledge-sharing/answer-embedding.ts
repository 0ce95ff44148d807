/**
 * What an answered request shares as knowledge: an embedding of its input and
 * a short summary of its answer.
 *
 * The embedding of a numeric input is its first row projected to `dim` values
 * by a random ±1 matrix seeded by the row's width (Johnson-Lindenstrauss: the
 * distances between inputs are kept up to a small factor), so every node
 * computes the same embedding for the same input, inputs of one width are
 * comparable across models, and the raw input itself never leaves the node.
 * A text (BYTES) input is a hashed bag of its tokens. An all-zero row has no
 * direction and is not embedded.
 */
import type { NamedTensors, Tensor } from '../../base/tensor.js';
import { hashedBagOfTokens } from '../../quality/evaluation/embedding.js';

const projections = new Map<string, Int8Array>();
const MAX_CACHED = 16;

/** The embedding of the first input's first row, or undefined when there is nothing to embed. */
export function inputEmbedding(inputs: NamedTensors, dim: number): Float32Array | undefined {
  const first = Object.values(inputs)[0];
  if (!first) return undefined;
  if (first.datatype === 'BYTES') {
    const text = (first.data as unknown[]).map(String).join(' ');
    const v = hashedBagOfTokens(text, dim);
    return v.some((x) => x !== 0) ? v : undefined;
  }
  const row = firstRow(first);
  if (!row || row.length === 0) return undefined;
  const r = projection(row.length, dim);
  const out = new Float32Array(dim);
  const scale = 1 / Math.sqrt(dim);
  for (let i = 0; i < row.length; i++) {
    const x = row[i]!;
    if (x === 0) continue;
    const base = i * dim;
    for (let j = 0; j < dim; j++) out[j]! += x * r[base + j]!;
  }
  let nonzero = false;
  for (let j = 0; j < dim; j++) {
    out[j]! *= scale;
    nonzero ||= out[j] !== 0;
  }
  return nonzero && out.every(Number.isFinite) ? out : undefined;
}

/** The answer in a few values: per output its first row (when short) and, for scores, the index of the largest. */
export function answerSummary(outputs: NamedTensors, maxValues = 32): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, t] of Object.entries(outputs)) {
    if (t.datatype === 'BYTES') {
      out[name] = { text: (t.data as unknown[]).slice(0, maxValues).map(String) };
      continue;
    }
    const row = firstRow(t);
    if (!row) continue;
    const entry: Record<string, unknown> = {};
    if (row.length <= maxValues) entry.values = Array.from(row, (x) => (Number.isFinite(x) ? round(x) : null));
    if (row.length > 1 && (t.datatype === 'FP32' || t.datatype === 'FP64' || t.datatype === 'FP16')) {
      let best = 0;
      for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
      entry.top = best;
    }
    out[name] = entry;
  }
  return out;
}

function firstRow(t: Tensor): Float64Array | undefined {
  if (t.datatype === 'BYTES' || t.datatype === 'FP16') return undefined; // FP16 holds raw bits
  const rows = t.shape.length > 1 ? Math.max(1, t.shape[0]!) : 1;
  const d = t.data as ArrayLike<number | bigint | boolean>;
  const width = Math.floor(d.length / rows);
  const row = new Float64Array(width);
  for (let i = 0; i < width; i++) row[i] = Number(d[i]);
  return row;
}

/** width x dim signs from a seeded xorshift32: the same on every node. */
function projection(width: number, dim: number): Int8Array {
  const id = `${width}x${dim}`;
  let r = projections.get(id);
  if (r) return r;
  r = new Int8Array(width * dim);
  let s = (0x9e3779b9 ^ Math.imul(width, 0x85ebca6b) ^ Math.imul(dim, 0xc2b2ae35)) >>> 0 || 1;
  for (let i = 0; i < r.length; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    r[i] = s & 1 ? 1 : -1;
  }
  if (projections.size >= MAX_CACHED) projections.delete(projections.keys().next().value!);
  projections.set(id, r);
  return r;
}

function round(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}
