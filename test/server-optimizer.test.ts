import { describe, expect, it } from 'vitest';

import { ServerOptimizer } from '../src/core/federation/learning/server-optimizer.js';
import { serverOptStepRef, type ServerOptimizerName } from '../src/core/federation/learning/reference.js';
import { expectClose, expectWhaleError, randomRows } from './helpers.js';

const OPTIMIZERS: ServerOptimizerName[] = ['fedavgm', 'fedadam', 'fedyogi', 'fedadagrad'];

describe.each(OPTIMIZERS)('%s', (optimizer) => {
  it('matches the reference over 5 rounds, keeping state between rounds', async () => {
    const p = 10_007;
    const global = randomRows(1, p, 1)[0]!;
    const ref = global.slice();
    const m = new Float32Array(p),
      v = new Float32Array(p);
    const opt = new ServerOptimizer({ optimizer, lr: 0.05, device: 'cpu' });
    for (let round = 0; round < 5; round++) {
      const aggregate = randomRows(1, p, 100 + round, 0.5)[0]!;
      await opt.step(global, aggregate);
      serverOptStepRef(
        optimizer,
        { lr: opt.lr, beta1: opt.beta1, beta2: opt.beta2, tau: opt.tau },
        ref,
        aggregate,
        m,
        v,
      );
    }
    // float32 arithmetic on the native side vs double per element in the reference.
    expectClose(global, ref, 1e-5, 1e-6);
    expectClose(opt.state().m!, m, 1e-4, 1e-6);
  });

  it('sync and async steps agree', async () => {
    const [g, agg] = randomRows(2, 1000, 9) as [Float32Array, Float32Array];
    const a = g.slice(),
      b = g.slice();
    new ServerOptimizer({ optimizer }).stepSync(a, agg);
    await new ServerOptimizer({ optimizer }).step(b, agg);
    expect(b).toEqual(a);
  });
});

describe('ServerOptimizer validation', () => {
  it.each([
    [{ optimizer: 'sgd' }, 'options.optimizer'],
    [{ optimizer: 'fedadam', lr: 0 }, 'options.lr'],
    [{ optimizer: 'fedadam', beta1: 1 }, 'options.beta1'],
    [{ optimizer: 'fedyogi', beta2: -0.1 }, 'options.beta2'],
    [{ optimizer: 'fedadagrad', tau: 0 }, 'options.tau'],
    [{ optimizer: 'fedavgm', device: 'tpu' }, 'options.device'],
  ])('%j', async (opts, field) => {
    await expectWhaleError(() => new ServerOptimizer(opts as never), 'ERR_INVALID_OPTION', field);
  });

  it('shape mismatches are typed errors', async () => {
    const opt = new ServerOptimizer({ optimizer: 'fedadam' });
    await expectWhaleError(() => opt.step(new Float32Array(4), new Float32Array(5)), 'ERR_SHAPE_MISMATCH', 'aggregate');
    await opt.step(new Float32Array(4), new Float32Array(4));
    await expectWhaleError(() => opt.step(new Float32Array(6), new Float32Array(6)), 'ERR_SHAPE_MISMATCH', 'global');
    opt.reset();
    await opt.step(new Float32Array(6), new Float32Array(6));
  });
});

describe('ServerOptimizer hardening', () => {
  it.each(['fedavgm', 'fedadam', 'fedyogi', 'fedadagrad'] as const)(
    '%s: NaN/Inf in the aggregate or global change nothing',
    async (optimizer) => {
      const opt = new ServerOptimizer({ optimizer });
      const [g0, a0] = randomRows(2, 500, 31) as [Float32Array, Float32Array];
      const global = g0.slice();
      await opt.step(global, a0);
      const before = { global: global.slice(), m: opt.state().m!, v: opt.state().v! };
      const bad = a0.slice();
      bad[123] = NaN;
      await expectWhaleError(() => opt.step(global, bad), 'ERR_NON_FINITE', 'aggregate[123]');
      bad[123] = Infinity;
      await expectWhaleError(() => opt.stepSync(global, bad), 'ERR_NON_FINITE', 'aggregate[123]');
      const badGlobal = global.slice();
      badGlobal[7] = -Infinity;
      await expectWhaleError(() => opt.stepSync(badGlobal, a0), 'ERR_NON_FINITE', 'global[7]');
      // A finite step that overflows float32 is refused too.
      const huge = global.slice(),
        far = a0.slice();
      huge[9] = -3e38;
      far[9] = 3e38;
      await expectWhaleError(() => opt.step(huge, far), 'ERR_NON_FINITE', 'aggregate[9]');
      expect(global).toEqual(before.global);
      expect(opt.state().m).toEqual(before.m);
      expect(opt.state().v).toEqual(before.v);
      // And the optimizer still works.
      const ref = global.slice();
      const twin = new ServerOptimizer({ optimizer });
      await twin.step(g0.slice(), a0);
      await twin.step(ref, a0);
      await opt.step(global, a0);
      expect(global).toEqual(ref);
    },
  );

  it('concurrent steps on one optimizer run in call order: the same result as awaiting each', async () => {
    const p = 200_003;
    const [g0, a1, a2, a3] = randomRows(4, p, 32) as [Float32Array, Float32Array, Float32Array, Float32Array];
    const seq = g0.slice(),
      conc = g0.slice();
    const s = new ServerOptimizer({ optimizer: 'fedyogi' });
    for (const a of [a1, a2, a3]) await s.step(seq, a);
    const c = new ServerOptimizer({ optimizer: 'fedyogi' });
    await Promise.all([c.step(conc, a1), c.step(conc, a2), c.step(conc, a3)]);
    expect(conc).toEqual(seq);
    expect(c.state().m).toEqual(s.state().m);
    expect(c.state().v).toEqual(s.state().v);
  });

  it('a failed step does not stop the queue; stepSync and reset refuse while steps are pending', async () => {
    const [g0, a0] = randomRows(2, 1000, 33) as [Float32Array, Float32Array];
    const opt = new ServerOptimizer({ optimizer: 'fedadam' });
    const bad = a0.slice();
    bad[0] = NaN;
    const global = g0.slice();
    const first = opt.step(global, bad);
    const second = opt.step(global, a0);
    await expectWhaleError(() => opt.stepSync(global, a0), 'ERR_CONFLICT');
    await expectWhaleError(() => opt.reset(), 'ERR_CONFLICT');
    await expectWhaleError(() => first, 'ERR_NON_FINITE', 'aggregate[0]');
    await second;
    const ref = g0.slice();
    new ServerOptimizer({ optimizer: 'fedadam' }).stepSync(ref, a0);
    expect(global).toEqual(ref);
    opt.reset();
  });

  it.each([
    [{ optimizer: 'fedadam', beta1: '0.5' }, 'options.beta1'],
    [{ optimizer: 'fedadam', lr: '0.1' }, 'options.lr'],
    [{ optimizer: 'fedyogi', tau: '1e-3' }, 'options.tau'],
  ])('string option %j', async (opts, field) => {
    await expectWhaleError(() => new ServerOptimizer(opts as never), 'ERR_INVALID_OPTION', field);
  });
});
