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
    const m = new Float32Array(p), v = new Float32Array(p);
    const opt = new ServerOptimizer({ optimizer, lr: 0.05, device: 'cpu' });
    for (let round = 0; round < 5; round++) {
      const aggregate = randomRows(1, p, 100 + round, 0.5)[0]!;
      await opt.step(global, aggregate);
      serverOptStepRef(optimizer, { lr: opt.lr, beta1: opt.beta1, beta2: opt.beta2, tau: opt.tau }, ref, aggregate, m, v);
    }
    // float32 arithmetic on the native side vs double per element in the reference.
    expectClose(global, ref, 1e-5, 1e-6);
    expectClose(opt.state().m!, m, 1e-4, 1e-6);
  });

  it('sync and async steps agree', async () => {
    const [g, agg] = randomRows(2, 1000, 9) as [Float32Array, Float32Array];
    const a = g.slice(), b = g.slice();
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
