// The router's exploration on near-ties and with a small alpha (issue 13 follow-up: on real models it explored at its 0.3 cap forever,
// and with alpha 0.1 it never left the first arm it tried); LinearArm's recursive update against the closed form, and its noise estimate.
import { describe, expect, it } from 'vitest';

import { isWhaleError } from '../src/common/errors.js';
import { LinearArm } from '../src/core/federation/routing/linear-arm.js';
import { parseRoutingConfig } from '../src/core/federation/routing/routing-config.js';
import { SeededRandom } from '../src/core/base/random.js';
import { RouteOptimizer, type RouteDecision } from '../src/core/federation/routing/route-optimizer.js';
import type { RouteContext } from '../src/core/federation/routing/features.js';

interface ArmWorld {
  quality: (rng: SeededRandom, ctx: RouteContext) => number;
  latencyMs: number;
}

function serve(
  opt: RouteOptimizer,
  world: Record<string, ArmWorld>,
  steps: number,
  ctxOf: (step: number) => RouteContext = () => ({}),
): RouteDecision[] {
  const rng = new SeededRandom(42);
  const picks: RouteDecision[] = [];
  for (let s = 0; s < steps; s++) {
    const ctx = ctxOf(s);
    const d = opt.chooseRoute('t', ctx);
    const w = world[d.arm.id]!;
    opt.recordOutcome(d.requestId, { latencyMs: w.latencyMs * (0.9 + 0.2 * rng.next()) });
    opt.recordQuality(d.requestId, w.quality(rng, ctx));
    picks.push(d);
  }
  return picks;
}

const share = (picks: RouteDecision[], f: (d: RouteDecision) => boolean) => picks.filter(f).length / picks.length;

/** Share of 8 answers correct, each with probability p (spread ≈ 0.08 at p = 0.95), like a classifier scored on a small batch. */
const batchAccuracy = (p: number) => (rng: SeededRandom) => {
  let c = 0;
  for (let i = 0; i < 8; i++) if (rng.next() < p) c++;
  return c / 8;
};

describe('exploration on real-model-like feedback', () => {
  it('two arms with the same quality and slightly different latency: exploration fades and the cheaper arm wins', () => {
    // Like 2nn-f32 vs 2nn-int8: the same answers, 12 vs 10 ms (reward gap 0.2·(12/112 − 10/110) ≈ 0.003, far below the quality noise).
    const world = {
      slow: { quality: batchAccuracy(0.95), latencyMs: 12 },
      fast: { quality: batchAccuracy(0.95), latencyMs: 10 },
    };
    const opt = new RouteOptimizer({
      tasks: {
        t: {
          arms: [
            { id: 'slow', model: 'slow' },
            { id: 'fast', model: 'fast' },
          ],
        },
      },
      seed: 3,
    });
    const picks = serve(opt, world, 8000);
    const late = picks.slice(-2000);
    expect(share(late, (d) => d.reason === 'explore')).toBeLessThan(0.03); // was 0.3 (the cap) before the variance-aware bonus and the 1/√n share
    expect(share(late, (d) => d.arm.id === 'fast')).toBeGreaterThan(0.75);
    expect(opt.stats('t').exploreRate).toBeLessThan(0.05);
  });

  it('a small alpha still tries every arm in every context, then keeps to the best', () => {
    // The first arm in the list is the worst; with alpha 0.05 the bonus of an untried arm (quality prior 0.5) never beat it before.
    const world: Record<string, ArmWorld> = {
      bad: { quality: (r) => (r.next() < 0.6 ? 1 : 0), latencyMs: 5 },
      good: { quality: (r, ctx) => (r.next() < (ctx.rows === 1 ? 0.95 : 0.7) ? 1 : 0), latencyMs: 5 },
      other: { quality: (r, ctx) => (r.next() < (ctx.rows === 1 ? 0.7 : 0.95) ? 1 : 0), latencyMs: 5 },
    };
    const opt = new RouteOptimizer({
      tasks: { t: { arms: Object.keys(world).map((id) => ({ id, model: id })) } },
      bandit: { alpha: 0.05 },
      seed: 9,
    });
    const ctxOf = (s: number): RouteContext => ({ rows: s % 2 ? 1 : 32 });
    const picks = serve(opt, world, 3000, ctxOf);
    for (const rows of [1, 32]) {
      const first = picks.slice(0, 60).filter((_, s) => ctxOf(s).rows === rows);
      for (const arm of Object.keys(world))
        expect(first.filter((d) => d.arm.id === arm).length).toBeGreaterThanOrEqual(2);
    }
    const late = picks.slice(-1000);
    expect(
      share(
        late.filter((_, i) => ctxOf(2000 + i).rows === 1),
        (d) => d.arm.id === 'good',
      ),
    ).toBeGreaterThan(0.85);
    expect(
      share(
        late.filter((_, i) => ctxOf(2000 + i).rows === 32),
        (d) => d.arm.id === 'other',
      ),
    ).toBeGreaterThan(0.85);
  });

  it('minTries 0 and maxExploreShare 0 turn the forced tries off; minTries is validated', () => {
    const opt = new RouteOptimizer({
      tasks: {
        t: {
          arms: [
            { id: 'a', model: 'a' },
            { id: 'b', model: 'b' },
          ],
        },
      },
      bandit: { maxExploreShare: 0 },
      seed: 1,
    });
    const picks = serve(opt, { a: { quality: () => 1, latencyMs: 5 }, b: { quality: () => 1, latencyMs: 5 } }, 200);
    expect(picks.every((d) => d.reason === 'bandit')).toBe(true);
    let err: unknown;
    try {
      new RouteOptimizer({ tasks: { t: { arms: [{ id: 'a', model: 'a' }] } }, bandit: { minTries: -1 } });
    } catch (e) {
      err = e;
    }
    expect(isWhaleError(err, 'ERR_INVALID_OPTION') && err.field).toBe('bandit.minTries');
    expect(parseRoutingConfig({ bandit: { minTries: 3 } }).bandit?.minTries).toBe(3);
    expect(() => parseRoutingConfig({ bandit: { minTries: 1.5 } })).toThrow(/routing\.bandit\.minTries/);
  });
});

describe('LinearArm', () => {
  it('the recursive update matches the closed-form ridge solution; the noise estimate follows the spread', () => {
    const rng = new SeededRandom(17);
    const exact = new LinearArm(8, 1, 1);
    const closed = new LinearArm(8, 1, 1 - 1e-12); // the discounted path re-inverts A from scratch on every update
    const contexts = [
      [0, 1, 4],
      [0, 2, 5],
      [0, 1, 5],
      [0, 3],
    ];
    for (let i = 0; i < 2000; i++) {
      const x = contexts[i % contexts.length]!;
      const r = 0.3 + 0.1 * (i % 4) + 0.05 * rng.normal();
      exact.update(x, r);
      closed.update(x, r);
    }
    for (const x of contexts) {
      expect(exact.mean(x)).toBeCloseTo(closed.mean(x), 8);
      expect(exact.width(x)).toBeCloseTo(closed.width(x), 8);
      expect(exact.noise(x, 0)).toBeCloseTo(closed.noise(x, 0), 8);
      // spread 0.05 → variance 0.0025, plus what is left of the prior 0.25 (≈ 1 pseudo-observation among 500)
      expect(exact.noise(x, 0)).toBeGreaterThan(0.002);
      expect(exact.noise(x, 0)).toBeLessThan(0.0035);
    }
    expect(exact.noise([0, 6], 0)).toBeGreaterThan(exact.noise([0, 1, 4], 0)); // an unseen feature keeps part of the prior
    expect(new LinearArm(4, 1, 1).noise([0], 1e-4)).toBe(0.25);
  });
});
