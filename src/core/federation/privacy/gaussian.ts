/**
 * Gaussian noise from the OS CSPRNG (Box–Muller over 53-bit uniforms). A seeded
 * source can be passed for reproducible tests and benches; privacy needs the default.
 */
import { randomFillSync } from 'node:crypto';

/** Fills 32-bit words with random bits. */
export type RandomWords = (out: Uint32Array) => void;

export const cryptoWords: RandomWords = (out) => void randomFillSync(out);

/** A deterministic source (xorshift128+ halves) for tests and benches only: not private. */
export function seededWords(seed: number): RandomWords {
  let s0 = BigInt.asUintN(64, BigInt(seed) * 0x9e3779b97f4a7c15n + 1n),
    s1 = BigInt.asUintN(64, s0 * 0xbf58476d1ce4e5b9n + 7n);
  return (out) => {
    for (let i = 0; i < out.length; i++) {
      let x = s0;
      const y = s1;
      s0 = y;
      x ^= BigInt.asUintN(64, x << 23n);
      s1 = x ^ y ^ (x >> 17n) ^ (y >> 26n);
      out[i] = Number(BigInt.asUintN(64, s1 + y) >> 32n);
    }
  };
}

const CHUNK = 1 << 14;

/** Adds N(0, std²) to every element of `v` in place. */
export function addGaussianNoise(v: Float32Array | Float64Array, std: number, words: RandomWords = cryptoWords): void {
  if (std === 0) return;
  const buf = new Uint32Array(CHUNK);
  let k = CHUNK;
  const uniform = (): number => {
    if (k + 2 > CHUNK) {
      words(buf);
      k = 0;
    }
    // 53 random bits -> (0, 1]
    const hi = buf[k++]! >>> 5,
      lo = buf[k++]! >>> 6;
    return (hi * 67108864 + lo + 1) / 9007199254740992;
  };
  for (let i = 0; i < v.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(uniform())) * std,
      t = 2 * Math.PI * uniform();
    v[i]! += r * Math.cos(t);
    if (i + 1 < v.length) v[i + 1]! += r * Math.sin(t);
  }
}

/** One N(0, std²) sample. */
export function gaussian(std: number, words: RandomWords = cryptoWords): number {
  const v = new Float64Array(1);
  addGaussianNoise(v, std, words);
  return v[0]!;
}
