// RouteOptimizer and LoadBalancer with fixed seeds: convergence (stationary, contextual, switching), canary and shadow shares, sticky sessions, bounded exploration.
import { describe, expect, it } from 'vitest';

import { isWhaleError } from '../src/common/errors.js';
import { LoadBalancer } from '../src/core/resource-management/optimizer/load-balancer.js';
import { SeededRandom } from '../src/core/base/random.js';
import {
  RouteOptimizer,
  type RouteDecision,
  type RouteOptimizerOptions,
} from '../src/core/federation/routing/route-optimizer.js';
import type { RouteContext } from '../src/core/federation/routing/features.js';

const ARMS = [
  { id: 'a', model: 'a' },
  { id: 'b', model: 'b' },
  { id: 'c', model: 'c' },
];

function run(
  opt: RouteOptimizer,
  steps: number,
  quality: (arm: string, step: number, ctx: RouteContext) => number,
  ctxOf: (step: number) => RouteContext = () => ({}),
  from = 0,
) {
  const rng = new SeededRandom(99);
  const picks: RouteDecision[] = [];
  for (let s = from; s < from + steps; s++) {
    const ctx = ctxOf(s);
    const d = opt.chooseRoute('t', ctx);
    opt.recordOutcome(d.requestId, { latencyMs: 10 });
    opt.recordQuality(d.requestId, rng.next() < quality(d.arm.id, s, ctx) ? 1 : 0);
    picks.push(d);
  }
  return picks;
}

const share = (picks: RouteDecision[], arm: string) => picks.filter((p) => p.arm.id === arm).length / picks.length;

function optimizer(o: Partial<RouteOptimizerOptions> = {}, task: Partial<RouteOptimizerOptions['tasks'][string]> = {}) {
  return new RouteOptimizer({ tasks: { t: { arms: ARMS, ...task } }, seed: 5, ...o });
}

describe('RouteOptimizer convergence', () => {
  it('stationary: the best arm takes most of the traffic', () => {
    const q: Record<string, number> = { a: 0.3, b: 0.9, c: 0.6 };
    const picks = run(optimizer(), 3000, (arm) => q[arm]!);
    expect(share(picks.slice(-1000), 'b')).toBeGreaterThan(0.85);
  });

  it('contextual: each request size goes to the arm that is best for it', () => {
    const best = (rows: number) => (rows <= 1 ? 'a' : 'c');
    const picks = run(
      optimizer(),
      4000,
      (arm, _s, ctx) => (arm === best(ctx.rows!) ? 0.9 : 0.4),
      (s) => ({ rows: s % 2 ? 1 : 32 }),
    );
    const last = picks.slice(-1000);
    const small = last.filter((_, i) => (3000 + i) % 2 === 1);
    const large = last.filter((_, i) => (3000 + i) % 2 === 0);
    expect(share(small, 'a')).toBeGreaterThan(0.8);
    expect(share(large, 'c')).toBeGreaterThan(0.8);
  });

  it('switching: with a discount it follows the change of the best arm', () => {
    const opt = optimizer({ bandit: { discount: 0.99 } });
    const q = (arm: string, s: number) =>
      (s < 3000 ? { a: 0.9, b: 0.3, c: 0.5 } : { a: 0.3, b: 0.9, c: 0.5 })[arm as 'a']!;
    const before = run(opt, 3000, q);
    expect(share(before.slice(-500), 'a')).toBeGreaterThan(0.8);
    const after = run(opt, 3000, q, () => ({}), 3000);
    expect(share(after.slice(-1000), 'b')).toBeGreaterThan(0.8);
  });

  it('exploration stays within maxExploreShare and decays', () => {
    // Three equal arms and a wide bonus: the optimistic arm keeps differing from the greedy one, so only the caps hold exploration back.
    const picks = run(optimizer({ bandit: { alpha: 5, maxExploreShare: 0.1 } }), 5000, () => 0.5);
    const explored = (from: number, to: number) =>
      picks.slice(from, to).filter((p) => p.reason === 'explore').length / (to - from);
    // The cap is a moving average over ~100 decisions that starts at 0, so the very first decisions may all explore (≈ 11 in a row).
    expect(explored(0, 500)).toBeLessThanOrEqual(0.13);
    for (let w = 500; w < 5000; w += 500) expect(explored(w, w + 500)).toBeLessThanOrEqual(0.11);
    expect(explored(0, 500)).toBeGreaterThan(0.05); // the cap binds while little is known
    // then the share falls as n^-1/3: (3n²)^1/3 explorations in n decisions, ≈ 0.056 of the decisions at n = 5000
    expect(explored(4000, 5000)).toBeLessThan(0.07);
    expect(explored(4000, 5000)).toBeLessThan(0.7 * explored(500, 1000));
  });
});

describe('canary, shadow, sticky, shifts', () => {
  it('canary share within tolerance, whatever the bandit prefers', () => {
    const picks = run(optimizer({}, { canary: { arm: 'c', share: 0.1 } }), 20_000, (arm) => (arm === 'a' ? 0.95 : 0.1));
    const canary = picks.filter((p) => p.reason === 'canary').length / picks.length;
    expect(Math.abs(canary - 0.1)).toBeLessThan(0.01); // 3 standard deviations ≈ 0.0064
    expect(share(picks.slice(-5000), 'c')).toBeGreaterThanOrEqual(0.09);
  });

  it('shadow copies at their share, never of the chosen arm', () => {
    const opt = optimizer({}, { shadow: { arm: 'b', share: 0.2 } });
    const picks = run(opt, 10_000, (arm) => (arm === 'a' ? 0.9 : 0.2));
    const eligible = picks.filter((p) => p.arm.id !== 'b');
    const shadowed = eligible.filter((p) => p.shadow?.id === 'b').length / eligible.length;
    expect(Math.abs(shadowed - 0.2)).toBeLessThan(0.025);
    expect(picks.some((p) => p.arm.id === 'b' && p.shadow)).toBe(false);
  });

  it('sticky sessions keep their route; shifts and disabled arms move traffic', () => {
    const opt = optimizer({}, { sticky: true });
    const first = opt.chooseRoute('t', { session: 's1' });
    for (let i = 0; i < 50; i++) expect(opt.chooseRoute('t', { session: 's1' }).arm.id).toBe(first.arm.id);
    opt.setArmEnabled('t', first.arm.id, false);
    expect(opt.chooseRoute('t', { session: 's1' }).arm.id).not.toBe(first.arm.id);
    const plain = optimizer();
    run(plain, 500, (arm) => (arm === 'a' ? 0.9 : 0.2));
    plain.shiftTraffic('t', 'a', 'c', 0.5);
    const after = run(
      plain,
      4000,
      (arm) => (arm === 'a' ? 0.9 : 0.2),
      () => ({}),
      500,
    );
    expect(Math.abs(share(after, 'c') - 0.5)).toBeLessThan(0.05);
  });

  it('typed errors: unknown task, no usable arm, bad config', () => {
    const opt = optimizer();
    const err = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e;
      }
      return undefined;
    };
    const unknown = err(() => opt.chooseRoute('nope'));
    expect(isWhaleError(unknown, 'ERR_MODEL_NOT_FOUND') && unknown.field).toBe('task');
    const none = err(() => opt.chooseRoute('t', {}, () => false));
    expect(isWhaleError(none, 'ERR_MODEL_NOT_READY')).toBe(true);
    const dup = err(() => new RouteOptimizer({ tasks: { t: { arms: [ARMS[0]!, ARMS[0]!] } } }));
    expect(isWhaleError(dup, 'ERR_INVALID_ARG') && dup.field).toBe('tasks.t.arms[1].id');
    const canary = err(() => new RouteOptimizer({ tasks: { t: { arms: ARMS, canary: { arm: 'zz', share: 0.1 } } } }));
    expect(isWhaleError(canary) && canary.field).toBe('tasks.t.canary.arm');
    expect(() => opt.recordQuality(opt.chooseRoute('t').requestId, 1.5)).toThrow(/quality/);
  });
});

describe('LoadBalancer', () => {
  it('power of two choices: the busier replica loses', () => {
    const lb = new LoadBalancer({ replicas: { m: ['m-0', 'm-1'] } });
    lb.acquire('m-0');
    for (let i = 0; i < 20; i++) expect(lb.pick('m')).toBe('m-1');
    expect(lb.pick('solo')).toBe('solo');
    expect(lb.pick('m', (r) => r === 'm-0')).toBe('m-0');
  });

  it('distributeRequests spreads requests evenly across replicas', () => {
    const lb = new LoadBalancer({ replicas: { m: ['r0', 'r1', 'r2', 'r3'] } });
    const got = lb.distributeRequests('m', 400);
    const counts = ['r0', 'r1', 'r2', 'r3'].map((r) => lb.outstanding(r));
    expect(counts.reduce((a, b) => a + b, 0)).toBe(400);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(2);
    got.forEach((r) => lb.release(r));
    expect(lb.outstanding('r0')).toBe(0);
  });
});
