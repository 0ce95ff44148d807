import { expect } from 'vitest';

import { WhaleError, type WhaleErrorCode } from '../src/common/errors.js';
import { seededRandom, standardNormal } from '../src/core/base/random.js';
import { engine } from '../src/native/engine.js';

/** Deterministic PRNG: the project's seeded generator (src/core/base/random.ts) with Box-Muller normals. */
export function rng(seed: number): { uniform: () => number; normal: () => number } {
  const uniform = seededRandom(seed);
  return { uniform, normal: () => standardNormal(uniform) };
}

export function randomRows(n: number, p: number, seed: number, scale = 1, offset = 0): Float32Array[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => Float32Array.from({ length: p }, () => offset + scale * r.normal()));
}

/** Largest |a - b| / (abs + rel * |b|); <= 1 means within tolerance everywhere. */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rel: number, abs: number): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0,
    at = -1;
  for (let j = 0; j < expected.length; j++) {
    const e = expected[j]!,
      a = actual[j]!;
    const ratio = Math.abs(a - e) / (abs + rel * Math.abs(e));
    if (!(ratio <= worst)) {
      worst = ratio;
      at = j;
    }
  }
  expect(worst, `worst mismatch at index ${at}: ${actual[at]} vs ${expected[at]}`).toBeLessThanOrEqual(1);
}

export function l2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let j = 0; j < a.length; j++) s += (a[j]! - b[j]!) ** 2;
  return Math.sqrt(s);
}

export async function expectWhaleError(
  fn: () => unknown,
  code: WhaleErrorCode,
  field?: string | RegExp,
): Promise<WhaleError> {
  let caught: unknown;
  try {
    await fn();
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected a WhaleError ${code}`).toBeInstanceOf(WhaleError);
  const e = caught as WhaleError;
  expect(e.code, e.message).toBe(code);
  if (field !== undefined) {
    if (typeof field === 'string') expect(e.field).toBe(field);
    else expect(e.field).toMatch(field);
    expect(e.message).toContain(e.field!);
  }
  return e;
}

/** Polls cond every 20 ms until it holds or ms pass; resolves with its last value. */
export async function until(cond: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!(await cond()) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  return cond();
}

export const cudaDevices = engine.devices().devices.filter((d) => d.kind === 'cuda');
export const hasGpu = cudaDevices.length > 0;
