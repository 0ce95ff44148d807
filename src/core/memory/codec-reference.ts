/**
 * Plain-TypeScript blockwise int8 codec with the native kernel's arithmetic
 * (float32 products, round half to even), so results can be compared bit for
 * bit; also the baseline of `npm run bench -- quant`.
 */
const f32 = Math.fround;

function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export interface Int8Blocks {
  scales: Float32Array;
  q: Int8Array;
}

const TINY_ABSMAX = 2 ** -100;
const TINY_LIFT = 2 ** 64;

/** The next float32 toward 0 (v > 0). */
function nextDown(v: number): number {
  const bits = new Uint32Array(new Float32Array([v]).buffer);
  bits[0]! -= 1;
  return new Float32Array(bits.buffer)[0]!;
}

/** absmax / 127, one ulp lower where 127 * scale would round up to Infinity. */
function int8Scale(absmax: number): number {
  const s = f32(absmax / 127);
  return f32(s * 127) === Infinity ? nextDown(s) : s;
}

export function encodeInt8Ref(x: Float32Array, blockSize: number): Int8Blocks {
  const blocks = Math.ceil(x.length / blockSize);
  const scales = new Float32Array(blocks);
  const q = new Int8Array(x.length);
  for (let b = 0; b < blocks; b++) {
    const lo = b * blockSize,
      hi = Math.min(x.length, lo + blockSize);
    let absmax = 0;
    for (let j = lo; j < hi; j++) absmax = Math.max(absmax, Math.abs(x[j]!));
    // Tiny blocks are lifted by 2^64 (exact) so that 127 / absmax cannot overflow.
    const lift = absmax > 0 && absmax < TINY_ABSMAX ? TINY_LIFT : 1;
    absmax = f32(absmax * lift);
    scales[b] = f32(int8Scale(absmax) / lift);
    const inv = absmax > 0 ? f32(127 / absmax) : 0;
    for (let j = lo; j < hi; j++) q[j] = Math.min(127, Math.max(-127, roundHalfEven(f32(f32(x[j]! * lift) * inv))));
  }
  return { scales, q };
}

export function decodeInt8Ref({ scales, q }: Int8Blocks, blockSize: number): Float32Array {
  const out = new Float32Array(q.length);
  for (let j = 0; j < q.length; j++) out[j] = q[j]! * scales[Math.floor(j / blockSize)]!;
  return out;
}

/** ||y - x|| / ||x|| in double precision: the error measure the codec targets are stated in. */
export function relativeL2Error(x: ArrayLike<number>, y: ArrayLike<number>): number {
  let e = 0,
    s = 0;
  for (let j = 0; j < x.length; j++) {
    e += (y[j]! - x[j]!) ** 2;
    s += x[j]! ** 2;
  }
  return Math.sqrt(e / s);
}
