/**
 * Client-level DP for federated averaging (McMahan et al. 2018, "Learning
 * Differentially Private Recurrent Language Models"): each update is clipped
 * to L2 norm C, the sum gets Gaussian noise of standard deviation σ·C, and an
 * RDP accountant turns (q, σ, rounds) into ε. The noise is added centrally (on
 * the coordinator) or by the clients (each adds N(0, σ²C²/m), so that the sum
 * of m honest clients carries the same noise; use it with secure aggregation).
 * Adaptive clipping (Andrew et al. 2021, "Differentially Private Learning with
 * Adaptive Clipping") moves C toward a quantile γ of the update norms from a
 * noised count of unclipped updates, and pays for it out of σ.
 */
import { WhaleError } from '../../../common/errors.js';
import { clipInPlace } from './clipping.js';
import { addGaussianNoise, cryptoWords, gaussian, type RandomWords } from './gaussian.js';
import { RdpAccountant } from './rdp-accountant.js';

export interface AdaptiveClipping {
  /** γ: the quantile of update norms C should track (e.g. 0.5). */
  targetQuantile: number;
  /** η: geometric learning rate of C (Andrew et al. use 0.2). */
  learningRate: number;
  /** σ_b: noise multiplier of the unclipped count (their default: m/20). */
  countNoiseMultiplier: number;
}

export interface DpOptions {
  /** C: L2 clipping norm (initial one when adaptive). */
  clip: number;
  /** z: noise multiplier of the whole mechanism (what the accountant counts). */
  noiseMultiplier: number;
  /** 'central': the coordinator adds noise to the sum; 'client': every learner adds its share. */
  mode?: 'central' | 'client';
  /** q: probability that a client takes part in a round (for the accountant). */
  sampleRate: number;
  /** δ of the (ε, δ) reported. */
  delta?: number;
  adaptive?: AdaptiveClipping;
  /** Random source (default: the OS CSPRNG). */
  random?: RandomWords;
}

export interface DpRound {
  /** Mean of the clipped updates plus noise / m. */
  mean: Float32Array;
  /** The clipping norm this round used. */
  clip: number;
  /** Updates whose norm exceeded C. */
  clipped: number;
  /** ε after this round for δ. */
  epsilon: number;
  /** The clipping norm of the next round (changes only when adaptive). */
  nextClip: number;
}

function positive(v: unknown, field: string, allowZero = false): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) {
    throw new WhaleError(
      'ERR_INVALID_OPTION',
      `${field}: must be a finite number ${allowZero ? '>=' : '>'} 0, got ${String(v)}`,
      { field },
    );
  }
  return v;
}

/**
 * Noise multiplier left for the updates when σ_b goes to the count:
 * z_Δ = (z^-2 - (2σ_b)^-2)^(-1/2) (Andrew et al. 2021, Thm. 1).
 */
export function updateNoiseMultiplier(z: number, countNoise: number): number {
  const rest = z ** -2 - (2 * countNoise) ** -2;
  if (!(rest > 0)) {
    throw new WhaleError(
      'ERR_INVALID_OPTION',
      `adaptive.countNoiseMultiplier: must exceed noiseMultiplier/2 (${z / 2}), got ${countNoise}`,
      { field: 'adaptive.countNoiseMultiplier' },
    );
  }
  return rest ** -0.5;
}

export class DpFedAvg {
  readonly accountant = new RdpAccountant();
  readonly mode: 'central' | 'client';
  private clipNorm: number;
  private readonly words: RandomWords;

  constructor(readonly options: DpOptions) {
    this.clipNorm = positive(options.clip, 'clip');
    positive(options.noiseMultiplier, 'noiseMultiplier', true);
    const q = options.sampleRate;
    if (!(typeof q === 'number' && q > 0 && q <= 1))
      throw new WhaleError('ERR_INVALID_OPTION', `sampleRate: must be in (0, 1], got ${String(q)}`, {
        field: 'sampleRate',
      });
    const d = options.delta ?? 1e-5;
    if (!(d > 0 && d < 1))
      throw new WhaleError('ERR_INVALID_OPTION', `delta: must be in (0, 1), got ${String(d)}`, { field: 'delta' });
    this.mode = options.mode ?? 'central';
    if (this.mode !== 'central' && this.mode !== 'client')
      throw new WhaleError('ERR_INVALID_OPTION', `mode: 'central' or 'client', got ${String(this.mode)}`, {
        field: 'mode',
      });
    const a = options.adaptive;
    if (a) {
      if (!(a.targetQuantile > 0 && a.targetQuantile < 1))
        throw new WhaleError(
          'ERR_INVALID_OPTION',
          `adaptive.targetQuantile: must be in (0, 1), got ${a.targetQuantile}`,
          { field: 'adaptive.targetQuantile' },
        );
      positive(a.learningRate, 'adaptive.learningRate');
      positive(a.countNoiseMultiplier, 'adaptive.countNoiseMultiplier');
      if (options.noiseMultiplier > 0) updateNoiseMultiplier(options.noiseMultiplier, a.countNoiseMultiplier);
    }
    this.words = options.random ?? cryptoWords;
  }

  get clip(): number {
    return this.clipNorm;
  }

  /** σ applied to the updates (z, or z_Δ with adaptive clipping). */
  get updateNoise(): number {
    const z = this.options.noiseMultiplier,
      a = this.options.adaptive;
    return a && z > 0 ? updateNoiseMultiplier(z, a.countNoiseMultiplier) : z;
  }

  /**
   * Learner side: clips the update in place to the round's C and, in client
   * mode, adds this client's share N(0, (σC)²/m) of the noise.
   * Returns whether the update was within C (the bit adaptive clipping counts).
   */
  privatize(update: Float32Array, clientsInRound: number, clip = this.clipNorm): boolean {
    const { scale } = clipInPlace(update, clip);
    if (this.mode === 'client') {
      if (!(Number.isInteger(clientsInRound) && clientsInRound > 0))
        throw new WhaleError('ERR_INVALID_ARG', `clientsInRound: must be an integer > 0, got ${clientsInRound}`, {
          field: 'clientsInRound',
        });
      addGaussianNoise(update, (this.updateNoise * clip) / Math.sqrt(clientsInRound), this.words);
    }
    return scale === 1;
  }

  /**
   * Coordinator side: the noised mean of one round. In central mode `updates`
   * are raw (clipped and noised here); in client mode they were privatized by
   * the learners and `withinClip` carries their bits for adaptive clipping.
   */
  aggregate(updates: readonly Float32Array[], withinClip?: readonly boolean[]): DpRound {
    const m = updates.length;
    if (m === 0) throw new WhaleError('ERR_NO_CLIENTS', 'updates: no client update to aggregate', { field: 'updates' });
    const n = updates[0]!.length;
    const sum = new Float64Array(n);
    const clip = this.clipNorm;
    let unclipped = 0;
    updates.forEach((u, c) => {
      if (u.length !== n)
        throw new WhaleError('ERR_SHAPE_MISMATCH', `updates[${c}]: ${u.length} values, expected ${n}`, {
          field: `updates[${c}]`,
          client: c,
        });
      // In client mode the learner clipped before adding its noise (a noised vector's norm says nothing about C),
      // so the sum takes it as sent and the bit comes from the learner.
      const copy = this.mode === 'central' ? Float32Array.from(u) : u;
      const inside =
        this.mode === 'central' ? clipInPlace(copy as Float32Array, clip).scale === 1 : (withinClip?.[c] ?? true);
      if (inside) unclipped++;
      for (let i = 0; i < n; i++) sum[i]! += copy[i]!;
    });
    if (this.mode === 'central') addGaussianNoise(sum, this.updateNoise * clip, this.words);
    const mean = new Float32Array(n);
    for (let i = 0; i < n; i++) mean[i] = sum[i]! / m;
    this.accountant.step(this.options.noiseMultiplier, this.options.sampleRate);
    const nextClip = this.adapt(unclipped, m);
    return {
      mean,
      clip,
      clipped: m - unclipped,
      epsilon: this.accountant.getEpsilon(this.options.delta ?? 1e-5),
      nextClip,
    };
  }

  private adapt(unclipped: number, m: number): number {
    const a = this.options.adaptive;
    if (!a) return this.clipNorm;
    const noisyFraction = (unclipped + gaussian(a.countNoiseMultiplier, this.words)) / m;
    this.clipNorm *= Math.exp(-a.learningRate * (noisyFraction - a.targetQuantile));
    return this.clipNorm;
  }
}
