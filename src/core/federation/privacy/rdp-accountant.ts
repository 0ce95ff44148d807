/**
 * Tracks the privacy spent by a federation: every round adds one step of the
 * sampled Gaussian mechanism (its q and σ may change between rounds), and
 * ε for a δ is read at any time from the summed RDP. Steps with the same
 * (q, σ) are counted together, so a long run costs one RDP curve per setting.
 */
import { WhaleError } from '../../../common/errors.js';
import { computeRdp, DEFAULT_ORDERS, rdpToEpsilon, type PrivacySpent } from './rdp.js';

export interface AccountantEntry {
  noiseMultiplier: number;
  sampleRate: number;
  steps: number;
}

export class RdpAccountant {
  private readonly history = new Map<string, AccountantEntry>();

  constructor(readonly orders: readonly number[] = DEFAULT_ORDERS) {
    computeRdp({ sampleRate: 0, noiseMultiplier: 1, steps: 0 }, orders); // validates the orders
  }

  /** Adds `steps` steps with noise multiplier σ and sampling rate q. */
  step(noiseMultiplier: number, sampleRate: number, steps = 1): void {
    computeRdp({ sampleRate, noiseMultiplier, steps }, [2]); // validates before anything is recorded
    const key = `${noiseMultiplier}|${sampleRate}`;
    const e = this.history.get(key);
    if (e) e.steps += steps;
    else this.history.set(key, { noiseMultiplier, sampleRate, steps });
  }

  get steps(): number {
    let n = 0;
    for (const e of this.history.values()) n += e.steps;
    return n;
  }

  /** The summed RDP at each order. */
  rdp(): number[] {
    const total = this.orders.map(() => 0);
    for (const e of this.history.values()) {
      computeRdp({ sampleRate: e.sampleRate, noiseMultiplier: e.noiseMultiplier, steps: e.steps }, this.orders).forEach(
        (v, i) => (total[i]! += v),
      );
    }
    return total;
  }

  /** (ε, optimal order) for δ. */
  spent(delta: number): PrivacySpent {
    return rdpToEpsilon(this.rdp(), delta, this.orders);
  }

  getEpsilon(delta: number): number {
    return this.spent(delta).epsilon;
  }

  /** The steps taken, for checkpoints (give it back to `restore`). */
  snapshot(): AccountantEntry[] {
    return [...this.history.values()].map((e) => ({ ...e }));
  }

  restore(entries: readonly AccountantEntry[]): void {
    if (!Array.isArray(entries))
      throw new WhaleError('ERR_INVALID_ARG', 'entries: must be an array', { field: 'entries' });
    const before = new Map(this.history);
    this.history.clear();
    try {
      for (const e of entries) this.step(e.noiseMultiplier, e.sampleRate, e.steps);
    } catch (err) {
      this.history.clear();
      for (const [k, v] of before) this.history.set(k, v);
      throw err;
    }
  }
}
