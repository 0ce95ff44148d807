// With f Byzantine clients out of n, robust strategies stay near the honest
// mean while FedAvg is dragged away.
import { describe, expect, it } from 'vitest';

import { Aggregator } from '../src/core/federation/learning/aggregator.js';
import type { Strategy } from '../src/core/federation/learning/types.js';
import { l2, rng } from './helpers.js';

const N = 20,
  F = 4,
  P = 2000;

function scenario(attack: 'sign-flip' | 'noise'): { rows: Float32Array[]; honestMean: Float64Array } {
  const r = rng(attack === 'sign-flip' ? 1 : 2);
  const truth = Float64Array.from({ length: P }, () => r.normal());
  const rows: Float32Array[] = [];
  for (let i = 0; i < N - F; i++) rows.push(Float32Array.from(truth, (t) => t + 0.1 * r.normal()));
  const honestMean = new Float64Array(P);
  for (const row of rows) for (let j = 0; j < P; j++) honestMean[j]! += row[j]! / (N - F);
  for (let i = 0; i < F; i++) {
    rows.push(
      attack === 'sign-flip'
        ? Float32Array.from(truth, (t) => -10 * t)
        : Float32Array.from(truth, () => 20 * r.normal()),
    );
  }
  return { rows, honestMean };
}

describe.each(['sign-flip', 'noise'] as const)('%s attack, f = 4 of n = 20', (attack) => {
  const { rows, honestMean } = scenario(attack);
  const norm = Math.sqrt(honestMean.reduce((s, x) => s + x * x, 0));
  const fedavgDist = l2(new Aggregator({ strategy: 'fedavg' }).aggregateSync(rows).params, honestMean);

  it('fedavg is pulled far from the honest mean', () => {
    expect(fedavgDist).toBeGreaterThan(0.5 * norm);
  });

  it.each<[Strategy, number]>([
    ['median', 0.15],
    ['trimmed-mean', 0.1],
    ['krum', 0.15],
    ['multi-krum', 0.05],
  ])('%s stays within %f of the honest mean (relative)', (strategy, tol) => {
    const r = new Aggregator({ strategy, beta: 0.25, f: F }).aggregateSync(rows);
    const d = l2(r.params, honestMean);
    expect(d / norm).toBeLessThan(tol);
    expect(d).toBeLessThan(fedavgDist / 5);
    if (r.selected) for (const i of r.selected) expect(i).toBeLessThan(N - F);
  });
});
