/**
 * ProcessingOptimizer: how much of the machine a request of a given
 * complexity gets: the device (a GPU from `gpuAbove` when one is usable) and
 * worker slots, shares of the CPU threads. The pipeline makes multi-model
 * (`deep`) requests hold their slots while they run, so a burst of them
 * cannot take the whole machine from the batched single-model levels.
 * With `deviceOf` (the server passes the hosted models' devices), a request's
 * device is the one its model actually runs on: never a GPU while the model's
 * runtime fell back to the CPU.
 */
import { availableParallelism } from 'node:os';

import { WhaleError } from '../../common/errors.js';

export interface Allocation {
  /** 'cpu' or 'cuda:N'. */
  device: string;
  /** Worker slots held while the request runs (1..totalSlots). */
  slots: number;
}

export interface ProcessingOptimizerOptions {
  /** Slots available in total (default: the CPU threads). */
  totalSlots?: number;
  /** CUDA device ids usable now (default none). */
  gpus?: string[];
  /** Complexity from which a GPU is preferred when there is one (default 0.5). */
  gpuAbove?: number;
  /** The device a hosted model runs on ('cpu', 'cuda:0'; undefined: not known, 'cpu' is reported). */
  deviceOf?: (model: string) => string | undefined;
}

/** The device a model's describe() says it runs on: its `device`, else 'cuda:0' for the CUDA provider, else 'cpu'. */
export function describedDevice(d: { provider?: unknown; device?: unknown }): string {
  if (typeof d.device === 'string' && d.device.length > 0) return d.device;
  return d.provider === 'cuda' ? 'cuda:0' : 'cpu';
}

export class ProcessingOptimizer {
  readonly totalSlots: number;
  private readonly gpus: string[];
  private readonly gpuAbove: number;
  private readonly deviceOf: ((model: string) => string | undefined) | undefined;
  private inUse = 0;
  private readonly waiters: { slots: number; resolve: () => void }[] = [];

  constructor(o: ProcessingOptimizerOptions = {}) {
    this.totalSlots = Math.max(1, Math.floor(o.totalSlots ?? availableParallelism()));
    this.gpus = o.gpus ?? [];
    this.gpuAbove = o.gpuAbove ?? 0.5;
    this.deviceOf = o.deviceOf;
  }

  /**
   * complexity in [0, 1]: 0 gets one slot, 1 the whole machine. The device: the model's own (with `model`
   * and `deviceOf`), else a GPU from gpuAbove when one is present, else the CPU.
   */
  allocateResources(complexity: number, model?: string): Allocation {
    if (typeof complexity !== 'number' || !Number.isFinite(complexity) || complexity < 0 || complexity > 1) {
      throw new WhaleError('ERR_INVALID_ARG', `complexity: must be a number in [0, 1], got ${String(complexity)}`, {
        field: 'complexity',
      });
    }
    const slots = Math.min(this.totalSlots, Math.max(1, Math.ceil(complexity * this.totalSlots)));
    const device =
      model !== undefined && this.deviceOf
        ? (this.deviceOf(model) ?? 'cpu')
        : this.gpus.length > 0 && complexity >= this.gpuAbove
          ? this.gpus[0]!
          : 'cpu';
    return { device, slots };
  }

  /** Runs fn while holding `slots` worker slots (FIFO among waiters). */
  async withSlots<T>(slots: number, fn: () => Promise<T>): Promise<T> {
    const n = Math.min(this.totalSlots, Math.max(1, slots));
    if (this.inUse + n > this.totalSlots || this.waiters.length > 0) {
      await new Promise<void>((resolve) => this.waiters.push({ slots: n, resolve }));
    } else {
      this.inUse += n;
    }
    try {
      return await fn();
    } finally {
      this.inUse -= n;
      this.wake();
    }
  }

  slotsInUse(): number {
    return this.inUse;
  }

  private wake(): void {
    while (this.waiters.length > 0 && this.inUse + this.waiters[0]!.slots <= this.totalSlots) {
      const w = this.waiters.shift()!;
      this.inUse += w.slots;
      w.resolve();
    }
  }
}
