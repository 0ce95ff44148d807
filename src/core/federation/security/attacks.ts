/**
 * Byzantine clients for experiments: the updates of the malicious clients
 * are replaced before aggregation. The attackers are omniscient (they see the
 * round's benign updates), as in the papers:
 * - sign-flip: -s·Δ (s = scale, default 1);
 * - gaussian: N(0, (s·σ̂)²) per coordinate, σ̂ = the benign updates' RMS (default s = 100);
 * - alie ("A little is enough", Baruch et al. 2019): μ - z·σ per coordinate, z from n and f;
 * - ipm (inner-product manipulation, Xie et al. 2019): -ε·μ (ε = scale, default 0.1).
 */
import { WhaleError } from '../../../common/errors.js';
import { addGaussianNoise, seededWords } from '../privacy/gaussian.js';
import { logErfc } from '../privacy/log-math.js';

export type AttackMode = 'sign-flip' | 'gaussian' | 'alie' | 'ipm';
export const ATTACK_MODES: readonly AttackMode[] = ['sign-flip', 'gaussian', 'alie', 'ipm'];

export interface AttackOptions {
  mode: AttackMode;
  /** Fraction of all clients that are malicious (chosen once, by seed). */
  fraction: number;
  scale?: number;
  seed?: number;
}

/** Φ^{-1}(p) by bisection on Φ(z) = erfc(-z/√2)/2. */
function normalQuantile(p: number): number {
  let lo = -40,
    hi = 40;
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    if (0.5 * Math.exp(logErfc(-mid / Math.SQRT2)) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** z of Baruch et al. 2019: s = floor(n/2 + 1) - f supporters needed, z = Φ^{-1}((n - s)/n). */
export function alieZ(n: number, f: number): number {
  const s = Math.floor(n / 2 + 1) - f;
  return normalQuantile((n - s) / n);
}

export class Attack {
  private readonly malicious: Set<string>;

  constructor(
    readonly o: AttackOptions,
    allClients: readonly string[],
  ) {
    if (!ATTACK_MODES.includes(o.mode))
      throw new WhaleError('ERR_INVALID_OPTION', `attack: one of ${ATTACK_MODES.join(', ')}, got '${String(o.mode)}'`, {
        field: 'attack',
      });
    if (!(o.fraction >= 0 && o.fraction < 1))
      throw new WhaleError('ERR_INVALID_OPTION', `attackFraction: must be in [0, 1), got ${o.fraction}`, {
        field: 'attackFraction',
      });
    const ids = [...allClients];
    const words = new Uint32Array(ids.length);
    seededWords(o.seed ?? 7)(words);
    ids.sort((a, b) => words[allClients.indexOf(a)]! - words[allClients.indexOf(b)]! || (a < b ? -1 : 1));
    this.malicious = new Set(ids.slice(0, Math.round(o.fraction * ids.length)));
  }

  isMalicious(clientId: string): boolean {
    return this.malicious.has(clientId);
  }

  get count(): number {
    return this.malicious.size;
  }

  /** Returns the round's updates with the malicious ones replaced (the benign ones untouched). */
  apply<U extends { clientId: string; delta: Float32Array }>(updates: readonly U[], round: number): U[] {
    const bad = updates.filter((u) => this.malicious.has(u.clientId));
    const good = updates.filter((u) => !this.malicious.has(u.clientId));
    if (bad.length === 0 || good.length === 0) return [...updates];
    const d = good[0]!.delta.length;
    const mean = new Float64Array(d),
      sq = new Float64Array(d);
    for (const u of good)
      for (let i = 0; i < d; i++) {
        mean[i]! += u.delta[i]! / good.length;
        sq[i]! += (u.delta[i]! * u.delta[i]!) / good.length;
      }
    const std = mean.map((m, i) => Math.sqrt(Math.max(0, sq[i]! - m * m)));
    const s = this.o.scale;
    const forged = (u: U): Float32Array => {
      switch (this.o.mode) {
        case 'sign-flip':
          return u.delta.map((x) => -(s ?? 1) * x);
        case 'gaussian': {
          const rms = Math.sqrt(sq.reduce((a, b) => a + b, 0) / d);
          const v = new Float32Array(d);
          addGaussianNoise(v, (s ?? 100) * rms, seededWords((this.o.seed ?? 7) * 1000 + round));
          return v;
        }
        case 'alie': {
          const z = s ?? alieZ(updates.length, bad.length);
          return Float32Array.from(mean, (m, i) => m - z * std[i]!);
        }
        case 'ipm':
          return Float32Array.from(mean, (m) => -(s ?? 0.1) * m);
      }
    };
    return updates.map((u) => (this.malicious.has(u.clientId) ? { ...u, delta: forged(u) } : u));
  }
}
