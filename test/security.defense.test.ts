// Byzantine attacks and the round defense (norm bound, DP) applied around aggregation.
import { describe, expect, it } from 'vitest';

import { alieZ, Attack } from '../src/core/federation/security/attacks.js';
import { RoundDefense } from '../src/core/federation/security/round-defense.js';
import { epsilonFor } from '../src/core/federation/privacy/rdp.js';
import { expectWhaleError, randomRows } from './helpers.js';

const ids = Array.from({ length: 20 }, (_, i) => `c${i}`);
const round = () => randomRows(20, 500, 3, 0.1).map((delta, i) => ({ clientId: ids[i]!, delta, examples: 10 }));

describe('attacks', () => {
  it('turns the chosen fraction malicious and forges their updates per mode, leaving benign ones untouched', () => {
    const ups = round();
    for (const mode of ['sign-flip', 'gaussian', 'alie', 'ipm'] as const) {
      const a = new Attack({ mode, fraction: 0.2, seed: 5 }, ids);
      expect(a.count).toBe(4);
      const out = a.apply(ups, 1);
      out.forEach((u, i) => {
        if (a.isMalicious(u.clientId)) expect(u.delta).not.toEqual(ups[i]!.delta);
        else expect(u.delta).toBe(ups[i]!.delta);
      });
      const bad = out.find((u) => a.isMalicious(u.clientId))!,
        orig = ups.find((u) => u.clientId === bad.clientId)!;
      if (mode === 'sign-flip') expect(bad.delta[7]).toBeCloseTo(-orig.delta[7]!, 6);
    }
  });

  it('uses the z of Baruch et al. 2019: Φ(z) = (n - s)/n with s = floor(n/2 + 1) - f', () => {
    const z = alieZ(50, 12);
    // Φ(z) by numeric integration of the normal density, independent of the erfc used inside.
    let phi = 0;
    for (let x = -12, h = 1e-4; x < z; x += h) phi += (h * Math.exp(-((x + h / 2) ** 2) / 2)) / Math.sqrt(2 * Math.PI);
    expect(phi).toBeCloseTo((50 - (Math.floor(50 / 2 + 1) - 12)) / 50, 4);
  });

  it('refuses unknown modes and fractions', async () => {
    await expectWhaleError(
      () => new Attack({ mode: 'nope' as never, fraction: 0.1 }, ids),
      'ERR_INVALID_OPTION',
      'attack',
    );
    await expectWhaleError(() => new Attack({ mode: 'ipm', fraction: 1 }, ids), 'ERR_INVALID_OPTION', 'attackFraction');
  });
});

describe('RoundDefense', () => {
  it('the norm bound drops the large Gaussian attackers before aggregation', () => {
    const d = new RoundDefense({
      clients: ids,
      attack: { mode: 'gaussian', fraction: 0.2, seed: 5 },
      normBound: { factor: 3 },
    });
    const out = d.beforeAggregate(1, round());
    expect(d.report()).toEqual({ malicious: 4, droppedByNorm: 4 });
    expect(out.every((u) => !d.attack!.isMalicious(u.clientId))).toBe(true);
  });

  it('DP replaces the aggregate with the clipped noised mean and reports ε', () => {
    const d = new RoundDefense({ dp: { clip: 0.5, noiseMultiplier: 1.2, sampleRate: 0.2 } });
    const ups = round();
    const agg = d.afterAggregate(1, new Float32Array(500), d.beforeAggregate(1, ups));
    expect(agg).not.toEqual(new Float32Array(500));
    expect(d.report().epsilon).toBeCloseTo(
      epsilonFor({ sampleRate: 0.2, noiseMultiplier: 1.2, steps: 1 }, 1e-5).epsilon,
      12,
    );
    expect(d.report().clippedByDp).toBe(20); // norms ≈ 2.2 > 0.5
  });
});
