/**
 * ResourceAware: a component that is granted CPU cores, memory and GPUs by
 * the resource manager and gives them back. ResourceLease is the ready-made
 * bookkeeping a model or processor can delegate to.
 */
import { WhaleError } from '../../common/errors.js';

export interface ResourceAllocation {
  /** CPU cores (may be fractional). */
  cpu: number;
  /** Memory in bytes. */
  memory: number;
  /** GPUs (may be fractional: a share of one device). */
  gpu: number;
}

export interface ResourceStatus {
  /** What is granted now; null when nothing is. */
  allocated: ResourceAllocation | null;
  /** When the current grant was made (ms since epoch); null when nothing is granted. */
  since: number | null;
}

export interface ResourceAware {
  allocateResources(cpu: number, memory: number, gpu: number): ResourceAllocation;
  releaseResources(): void;
  resourceStatus(): ResourceStatus;
}

function checkAmount(value: number, field: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new WhaleError('ERR_INVALID_ARG', `${field}: must be a finite number >= 0, got ${String(value)}`, { field });
  }
}

/** Holds one grant at a time; a new grant replaces the previous one. */
export class ResourceLease implements ResourceAware {
  private granted: ResourceAllocation | null = null;
  private grantedAt: number | null = null;

  constructor(private readonly now: () => number = Date.now) {}

  allocateResources(cpu: number, memory: number, gpu: number): ResourceAllocation {
    checkAmount(cpu, 'cpu');
    checkAmount(memory, 'memory');
    checkAmount(gpu, 'gpu');
    if (cpu === 0 && gpu === 0) {
      throw new WhaleError('ERR_INVALID_ARG', 'cpu: a grant needs some CPU or GPU (both are 0)', { field: 'cpu' });
    }
    this.granted = { cpu, memory, gpu };
    this.grantedAt = this.now();
    return { ...this.granted };
  }

  releaseResources(): void {
    this.granted = null;
    this.grantedAt = null;
  }

  resourceStatus(): ResourceStatus {
    return { allocated: this.granted ? { ...this.granted } : null, since: this.grantedAt };
  }
}
