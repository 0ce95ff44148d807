/**
 * The project's one seeded random generator (mulberry32), so routing,
 * client selection, data partitions, tests, benchmarks and scripts repeat
 * run to run. `seededRandom` is the generator as a function; `SeededRandom`
 * wraps it with the helpers routing uses (integers, normals, shuffles).
 */

/** A source of uniform numbers in [0, 1). */
export type Uniform = () => number;

/** mulberry32 seeded with `seed >>> 0`: uniform numbers in [0, 1). */
export function seededRandom(seed: number): Uniform {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A standard normal from two draws of `random` (Box–Muller). */
export function standardNormal(random: Uniform): number {
  const u = 1 - random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

/** Fisher-Yates shuffle in place. */
export function shuffleInPlace<T>(items: T[], random: Uniform): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/** The generator as an object. A seed of 0 stands for 0x9e3779b9 (as routing's seeds always did). */
export class SeededRandom {
  private readonly random: Uniform;

  constructor(seed = 1) {
    this.random = seededRandom(seed >>> 0 || 0x9e3779b9);
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.random();
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.random() * n);
  }

  /** Standard normal (Box–Muller). */
  normal(): number {
    return standardNormal(this.random);
  }

  /** Fisher-Yates shuffle of `items` in place. */
  shuffle<T>(items: T[]): T[] {
    return shuffleInPlace(items, this.random);
  }
}
