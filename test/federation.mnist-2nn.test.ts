/**
 * Issue 21, item 1: the MNIST 2NN preset, rebuilt on the public Trainer / ClientDataset APIs, keeps its
 * FedAvg figure: ≥ 93 % test accuracy after 10 rounds of C = 0.1, E = 1, B = 10 (lr 0.1, 100 IID clients of
 * 600 images, every round evaluated on the 10,000 test images), learners in this process — the run of
 * `whale federate --model 2nn --partition iid --clients 100 --fraction 0.1 --epochs 1 --batch 10 --rounds 10`.
 */
import { describe, expect, it } from 'vitest';

import { silentLogger } from '../src/common/logger.js';
import { runMnistFederation } from '../src/apps/mnist/mnist-federation.js';
import type { RoundResult } from '../src/core/federation/orchestration/round-result.js';

describe('MNIST 2NN preset (FedAvg, McMahan et al. 2017)', () => {
  it('reaches 93 % after 10 rounds with C = 0.1, E = 1, B = 10', async () => {
    const rounds: RoundResult[] = [];
    const t0 = Date.now();
    const result = await runMnistFederation({
      model: '2nn',
      partition: 'iid',
      clients: 100,
      fraction: 0.1,
      epochs: 1,
      batch: 10,
      lr: 0.1,
      rounds: 10,
      seed: 1,
      processes: 0,
      brokers: [],
      logger: silentLogger,
      onRound: (r) => {
        rounds.push(r);
        console.log(
          `2nn round ${r.round}: ${r.received} clients, test accuracy ${(r.testAccuracy! * 100).toFixed(2)}% loss ${r.testLoss!.toFixed(4)} (${r.seconds.toFixed(2)} s)`,
        );
      },
    });
    console.log(`2nn: 10 rounds in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    expect(result.completedRounds).toBe(10);
    expect(rounds.map((r) => r.received)).toEqual(Array(10).fill(10));
    expect(rounds[9]!.testAccuracy!).toBeGreaterThanOrEqual(0.93);
  }, 300_000);
});
