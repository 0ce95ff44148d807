/**
 * MemoryAllocator: byte budgets per model, charged where memory is taken
 * (the model's weights at load, request/batch buffers in flight) and within
 * a node-wide limit. A charge over the budget throws ERR_QUOTA_EXCEEDED
 * naming the model and the resource, before the memory is taken, so the
 * process never runs out of memory for it.
 */
import { WhaleError } from '../../../common/errors.js';

export interface MemoryReservation {
  readonly bytes: number;
  release(): void;
}

interface Account {
  budget: number;
  used: number;
  peak: number;
  byKind: Map<string, number>;
  refused: number;
}

export class MemoryAllocator {
  private readonly accounts = new Map<string, Account>();
  private used = 0;

  /** @param totalBytes what all models together may hold (default: unlimited). */
  constructor(readonly totalBytes = Infinity) {
    if (!(totalBytes > 0))
      throw new WhaleError('ERR_INVALID_OPTION', 'totalBytes: expected a number > 0', { field: 'totalBytes' });
  }

  /** Sets the model's budget (Infinity: none). Lowering it below what is held refuses new charges only. */
  setBudget(modelId: string, bytes: number): void {
    if (!(bytes >= 0))
      throw new WhaleError('ERR_INVALID_ARG', `memory: expected bytes >= 0, got ${String(bytes)}`, { field: 'memory' });
    this.account(modelId).budget = bytes;
  }

  /** Charges `bytes` of `kind` ('weights', 'batch', …) to the model; release() gives them back once. */
  reserve(modelId: string, bytes: number, kind: string): MemoryReservation {
    if (!(Number.isFinite(bytes) && bytes >= 0))
      throw new WhaleError('ERR_INVALID_ARG', `bytes: expected a finite number >= 0, got ${String(bytes)}`, {
        field: 'bytes',
      });
    const a = this.account(modelId);
    if (a.used + bytes > a.budget) {
      a.refused++;
      throw new WhaleError(
        'ERR_QUOTA_EXCEEDED',
        `memory: model '${modelId}': ${kind} of ${bytes} bytes would exceed its memory quota (${a.used} of ${a.budget} bytes in use)`,
        {
          field: 'memory',
          model: modelId,
          resource: 'memory',
          retriable: kind !== 'weights',
        },
      );
    }
    if (this.used + bytes > this.totalBytes) {
      a.refused++;
      throw new WhaleError(
        'ERR_QUOTA_EXCEEDED',
        `memory: model '${modelId}': ${kind} of ${bytes} bytes would exceed the node's memory limit (${this.used} of ${this.totalBytes} bytes in use)`,
        {
          field: 'memory',
          model: modelId,
          resource: 'memory',
          retriable: true,
        },
      );
    }
    a.used += bytes;
    a.peak = Math.max(a.peak, a.used);
    a.byKind.set(kind, (a.byKind.get(kind) ?? 0) + bytes);
    this.used += bytes;
    let released = false;
    return {
      bytes,
      release: () => {
        if (released) return;
        released = true;
        a.used -= bytes;
        a.byKind.set(kind, a.byKind.get(kind)! - bytes);
        this.used -= bytes;
      },
    };
  }

  usage(
    modelId: string,
  ): { used: number; budget: number; peak: number; refused: number; byKind: Record<string, number> } | undefined {
    const a = this.accounts.get(modelId);
    return (
      a && { used: a.used, budget: a.budget, peak: a.peak, refused: a.refused, byKind: Object.fromEntries(a.byKind) }
    );
  }

  /** Forgets the model; what it still holds is returned so callers can report a leak. */
  remove(modelId: string): number {
    const a = this.accounts.get(modelId);
    if (!a) return 0;
    this.accounts.delete(modelId);
    this.used -= a.used;
    return a.used;
  }

  snapshot(): {
    totalBytes: number;
    used: number;
    models: Record<string, NonNullable<ReturnType<MemoryAllocator['usage']>>>;
  } {
    const models: Record<string, NonNullable<ReturnType<MemoryAllocator['usage']>>> = {};
    for (const m of this.accounts.keys()) models[m] = this.usage(m)!;
    return { totalBytes: this.totalBytes, used: this.used, models };
  }

  private account(modelId: string): Account {
    let a = this.accounts.get(modelId);
    if (!a) {
      a = { budget: Infinity, used: 0, peak: 0, byKind: new Map(), refused: 0 };
      this.accounts.set(modelId, a);
    }
    return a;
  }
}
