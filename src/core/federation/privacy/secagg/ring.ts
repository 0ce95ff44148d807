/**
 * The ring Z_{2^k} of secure aggregation (k <= 32, elements in Uint32Array):
 * fixed-point encoding of updates, PRG mask expansion and the modular sum.
 * The PRG is ChaCha20 (key = 32-byte seed, zero nonce, counter from 0): the
 * native engine expands it multi-threaded; without the addon, node:crypto's
 * ChaCha20 (OpenSSL) gives the same words.
 */
import { createCipheriv } from 'node:crypto';

import { WhaleError } from '../../../../common/errors.js';
import { native } from '../../../../native/loader.js';

export interface FixedPointOptions {
  /** k: bits of the ring (default 32). */
  bits?: number;
  /** R: values are clipped to [-R, R] before encoding. */
  range: number;
  /** Most clients whose sum must not wrap around (n·R·scale < 2^(k-1)). */
  maxClients: number;
}

/** Signed fixed point in Z_{2^k}: x -> round(clip(x, R)·scale) mod 2^k; a sum of <= maxClients decodes exactly. */
export class FixedPoint {
  readonly bits: number;
  readonly scale: number;
  readonly modulus: number;

  constructor(readonly o: FixedPointOptions) {
    this.bits = o.bits ?? 32;
    if (!(Number.isInteger(this.bits) && this.bits >= 8 && this.bits <= 32))
      throw new WhaleError('ERR_INVALID_OPTION', `bits: must be an integer in [8, 32], got ${this.bits}`, {
        field: 'bits',
      });
    if (!(o.range > 0 && Number.isFinite(o.range)))
      throw new WhaleError('ERR_INVALID_OPTION', `range: must be a finite number > 0, got ${o.range}`, {
        field: 'range',
      });
    if (!(Number.isInteger(o.maxClients) && o.maxClients > 0))
      throw new WhaleError('ERR_INVALID_OPTION', `maxClients: must be an integer > 0, got ${o.maxClients}`, {
        field: 'maxClients',
      });
    this.modulus = 2 ** this.bits;
    this.scale = Math.floor((2 ** (this.bits - 1) - 1) / (o.maxClients * o.range));
    if (this.scale < 1)
      throw new WhaleError(
        'ERR_INVALID_OPTION',
        `bits: ${this.bits} bits cannot hold ${o.maxClients} clients × range ${o.range}`,
        { field: 'bits' },
      );
  }

  /** Encodes (clipping to [-R, R]); `clipped` counts values that were outside. */
  encode(values: Float32Array): { ring: Uint32Array; clipped: number } {
    const ring = new Uint32Array(values.length),
      R = this.o.range;
    let clipped = 0;
    for (let i = 0; i < values.length; i++) {
      let x = values[i]!;
      if (!Number.isFinite(x))
        throw new WhaleError('ERR_NON_FINITE', `values[${i}]: is ${x}`, { field: `values[${i}]` });
      if (x > R || x < -R) {
        clipped++;
        x = x > R ? R : -R;
      }
      const q = Math.round(x * this.scale);
      ring[i] = q < 0 ? q + this.modulus : q;
    }
    return { ring, clipped };
  }

  /** Decodes a ring element (a sum of encodings) as a signed value over the scale. */
  decode(ring: Uint32Array): Float64Array {
    const out = new Float64Array(ring.length),
      half = this.modulus / 2;
    for (let i = 0; i < ring.length; i++) {
      const v = ring[i]!;
      out[i] = (v >= half ? v - this.modulus : v) / this.scale;
    }
    return out;
  }
}

function ringMask(bits: number): number {
  if (!(Number.isInteger(bits) && bits >= 1 && bits <= 32))
    throw new WhaleError('ERR_INVALID_ARG', `bits: must be an integer in [1, 32], got ${bits}`, { field: 'bits' });
  return bits === 32 ? 0xffffffff : 2 ** bits - 1;
}

/** The first n mask words of a seed (node:crypto's ChaCha20; the reference for the native expansion). */
export function expandSeed(seed: Uint8Array, n: number): Uint32Array {
  const c = createCipheriv('chacha20', seed, Buffer.alloc(16));
  const bytes = c.update(Buffer.alloc(n * 4));
  return new Uint32Array(bytes.buffer, bytes.byteOffset, n).slice();
}

export type MaskEngine = 'auto' | 'native' | 'js';

function nativeSecagg() {
  let b;
  try {
    b = native();
  } catch {
    return undefined; // no addon: the node:crypto path below
  }
  return b?.secaggAddMasks && b.secaggSumRows ? b : undefined;
}

/** Whether the native mask expansion is available (the addon is loaded and has it). */
export function nativeMasksAvailable(): boolean {
  return nativeSecagg() !== undefined;
}

function pick(engine: MaskEngine) {
  const b = engine === 'js' ? undefined : nativeSecagg();
  if (engine === 'native' && !b)
    throw new WhaleError(
      'ERR_NATIVE_NOT_FOUND',
      'engine: the native addon with secagg is not loaded (npm run build:native)',
      { field: 'engine' },
    );
  return b;
}

/** acc += Σ signs[j]·PRG(seeds[j]) mod 2^bits, in place. */
export function addMasks(
  acc: Uint32Array,
  seeds: readonly Uint8Array[],
  signs: readonly number[],
  bits: number,
  engine: MaskEngine = 'auto',
): void {
  const mask = ringMask(bits);
  if (seeds.length !== signs.length)
    throw new WhaleError('ERR_SHAPE_MISMATCH', `signs: ${signs.length} signs for ${seeds.length} seeds`, {
      field: 'signs',
    });
  seeds.forEach((s, j) => {
    if (!(s instanceof Uint8Array) || s.length !== 32)
      throw new WhaleError('ERR_INVALID_ARG', `seeds[${j}]: must be 32 bytes`, { field: `seeds[${j}]` });
    if (signs[j] !== 1 && signs[j] !== -1)
      throw new WhaleError('ERR_INVALID_ARG', `signs[${j}]: must be 1 or -1`, { field: `signs[${j}]` });
  });
  if (seeds.length === 0) return;
  const b = pick(engine);
  if (b) {
    const packed = new Uint8Array(32 * seeds.length);
    seeds.forEach((s, j) => packed.set(s, 32 * j));
    b.secaggAddMasks!({ acc, seeds: packed, signs: Int8Array.from(signs), bits });
    return;
  }
  // Chunks of 1 Mi elements keep the expanded keystream small.
  const CH = 1 << 20;
  for (let j = 0; j < seeds.length; j++) {
    const c = createCipheriv('chacha20', seeds[j]!, Buffer.alloc(16));
    for (let lo = 0; lo < acc.length; lo += CH) {
      const m = Math.min(CH, acc.length - lo);
      const ks = c.update(Buffer.alloc(m * 4));
      const w = new Uint32Array(ks.buffer, ks.byteOffset, m);
      if (signs[j] === 1) for (let i = 0; i < m; i++) acc[lo + i] = (acc[lo + i]! + w[i]!) & mask;
      else for (let i = 0; i < m; i++) acc[lo + i] = (acc[lo + i]! - w[i]!) & mask;
    }
  }
}

/** Σ rows mod 2^bits. */
export function sumRows(rows: readonly Uint32Array[], bits: number, engine: MaskEngine = 'auto'): Uint32Array {
  const mask = ringMask(bits);
  if (rows.length === 0) throw new WhaleError('ERR_NO_CLIENTS', 'rows: nothing to sum', { field: 'rows' });
  const n = rows[0]!.length;
  rows.forEach((r, i) => {
    if (!(r instanceof Uint32Array) || r.length !== n)
      throw new WhaleError('ERR_SHAPE_MISMATCH', `rows[${i}]: expected a Uint32Array of ${n}`, { field: `rows[${i}]` });
  });
  const out = new Uint32Array(n);
  const b = pick(engine);
  if (b) {
    b.secaggSumRows!({ out, rows: [...rows], bits });
    return out;
  }
  for (const r of rows) for (let i = 0; i < n; i++) out[i] = (out[i]! + r[i]!) & mask;
  return out;
}
