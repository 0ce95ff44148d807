import { WhaleError } from '../../../common/errors.js';
import type { NativeServerOptimizer } from '../../../native/binding.js';
import { callNative, callNativeAsync } from '../../../native/call.js';
import { parseDevice, type DeviceSpec } from '../../../native/device.js';
import { native } from '../../../native/loader.js';

export interface ServerOptimizerOptions {
  optimizer: NativeServerOptimizer;
  /** Server learning rate (eta). Default 1 for fedavgm, 0.01 for the adaptive ones. */
  lr?: number;
  /** Momentum / first-moment decay. Default 0.9. */
  beta1?: number;
  /** Second-moment decay (fedadam, fedyogi). Default 0.99. */
  beta2?: number;
  /** Adaptivity epsilon. Default 1e-3. */
  tau?: number;
  device?: DeviceSpec;
}

const OPTIMIZERS: readonly NativeServerOptimizer[] = ['fedavgm', 'fedadam', 'fedyogi', 'fedadagrad'];

/**
 * Server-side optimizer over rounds (Reddi et al., "Adaptive Federated
 * Optimization"): step(global, aggregate) moves `global` in place along
 * aggregate - global and keeps the moment state between rounds.
 */
export class ServerOptimizer {
  readonly optimizer: NativeServerOptimizer;
  readonly lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly tau: number;
  private readonly device: ReturnType<typeof parseDevice>;
  private m: Float32Array | undefined;
  private v: Float32Array | undefined;
  /** The last queued step (settled or not) and how many are still pending. */
  private tail: Promise<void> = Promise.resolve();
  private pending = 0;

  constructor(o: ServerOptimizerOptions) {
    if (!OPTIMIZERS.includes(o?.optimizer)) {
      throw new WhaleError(
        'ERR_INVALID_OPTION',
        `options.optimizer: expected one of ${OPTIMIZERS.join(', ')}, got ${JSON.stringify(o?.optimizer)}`,
        {
          field: 'options.optimizer',
        },
      );
    }
    const bad = (field: string, why: string): never => {
      throw new WhaleError('ERR_INVALID_OPTION', `options.${field}: ${why}`, { field: `options.${field}` });
    };
    for (const field of ['lr', 'beta1', 'beta2', 'tau'] as const) {
      const v = o[field];
      if (v !== undefined && typeof v !== 'number')
        bad(field, `must be a number, got ${JSON.stringify(v)} (${typeof v})`);
    }
    this.optimizer = o.optimizer;
    this.lr = o.lr ?? (o.optimizer === 'fedavgm' ? 1 : 0.01);
    this.beta1 = o.beta1 ?? 0.9;
    this.beta2 = o.beta2 ?? 0.99;
    this.tau = o.tau ?? 1e-3;
    if (!(Number.isFinite(this.lr) && this.lr > 0)) bad('lr', `must be a finite number > 0, got ${this.lr}`);
    if (!(this.beta1 >= 0 && this.beta1 < 1)) bad('beta1', `must be in [0, 1), got ${this.beta1}`);
    if (!(this.beta2 >= 0 && this.beta2 < 1)) bad('beta2', `must be in [0, 1), got ${this.beta2}`);
    if (!(Number.isFinite(this.tau) && this.tau > 0)) bad('tau', `must be a finite number > 0, got ${this.tau}`);
    this.device = parseDevice(o.device, 'options.device');
  }

  /** First and second moment state (copies), for checkpoints. */
  state(): { m?: Float32Array; v?: Float32Array } {
    return { ...(this.m ? { m: this.m.slice() } : {}), ...(this.v ? { v: this.v.slice() } : {}) };
  }

  /** Forgets the moment state (for a new model). ERR_CONFLICT while a step() is pending. */
  reset(): void {
    this.requireIdle('reset');
    this.m = undefined;
    this.v = undefined;
  }

  /**
   * Applies one round's aggregate to `global` in place; resolves with the device
   * used. Steps on one optimizer run one after another in call order, each
   * reading `global` and `aggregate` when it starts. NaN/Inf in either (or a
   * step that would overflow float32) rejects with ERR_NON_FINITE and changes
   * nothing.
   */
  step(global: Float32Array, aggregate: Float32Array): Promise<string> {
    const run = async (): Promise<string> => {
      const opts = this.prepare(global, aggregate);
      return callNativeAsync(() => native().serverOptStep(opts, true));
    };
    // Idle: start now, so the inputs are read (and copied) before step() returns.
    const result = this.pending === 0 ? run() : this.tail.then(run, run);
    this.pending++;
    this.tail = result.then(
      () => void this.pending--,
      () => void this.pending--,
    );
    return result;
  }

  /** The same step on the calling thread. ERR_CONFLICT while a step() is pending. */
  stepSync(global: Float32Array, aggregate: Float32Array): string {
    this.requireIdle('stepSync');
    const opts = this.prepare(global, aggregate);
    return callNative(() => native().serverOptStep(opts, false));
  }

  private requireIdle(what: string): void {
    if (this.pending > 0) {
      throw new WhaleError(
        'ERR_CONFLICT',
        `${what}: ${this.pending} step() call(s) still pending on this optimizer; await them first`,
      );
    }
  }

  private prepare(global: Float32Array, aggregate: Float32Array) {
    if (!(global instanceof Float32Array))
      throw new WhaleError('ERR_INVALID_ARG', 'global: expected a Float32Array', { field: 'global' });
    if (!(aggregate instanceof Float32Array))
      throw new WhaleError('ERR_INVALID_ARG', 'aggregate: expected a Float32Array', { field: 'aggregate' });
    if (aggregate.length !== global.length) {
      throw new WhaleError(
        'ERR_SHAPE_MISMATCH',
        `aggregate: has ${aggregate.length} values, global has ${global.length}`,
        { field: 'aggregate' },
      );
    }
    if (this.m && this.m.length !== global.length) {
      throw new WhaleError(
        'ERR_SHAPE_MISMATCH',
        `global: has ${global.length} values but the optimizer state has ${this.m.length}; call reset() for a new model`,
        {
          field: 'global',
        },
      );
    }
    this.m ??= new Float32Array(global.length);
    this.v ??= new Float32Array(global.length);
    return {
      optimizer: this.optimizer,
      lr: this.lr,
      beta1: this.beta1,
      beta2: this.beta2,
      tau: this.tau,
      global,
      aggregate,
      m: this.m,
      v: this.v,
      ...this.device,
    };
  }
}
