/**
 * CpuAllocator: CPU units are worker slots (concurrent batch executions, and
 * the thread count native kernels get). A model asks for units (fractional
 * allowed); when the asks exceed the machine, each gets its max-min fair
 * share. acquire() gates execution: a model runs at most ceil(share) batches
 * at once, and while other models wait it may only use `share` slot-seconds
 * per second (a credit refilled at its share), so a 0.5-unit model gets at
 * most half a slot under contention. Idle capacity is never withheld.
 */
import { WhaleError } from '../../../common/errors.js';
import { fairShares } from './fair-share.js';

export interface CpuAllocatorOptions {
  totalUnits: number;
  /** Milliseconds (default performance.now). */
  clock?: () => number;
  /** Credit a model can bank, in ms of its share (default 1000: one second's worth). */
  windowMs?: number;
}

export interface SlotLease {
  /** Frees the slot and charges the model for the time it held it. */
  release(): void;
}

interface Entry {
  units: number;
  share: number;
  running: number;
  credit: number;
  at: number;
  waiters: (() => void)[];
  busyMs: number;
}

export class CpuAllocator {
  readonly totalUnits: number;
  private readonly clock: () => number;
  private readonly windowMs: number;
  private readonly models = new Map<string, Entry>();
  private running = 0;

  constructor(o: CpuAllocatorOptions) {
    if (!(Number.isFinite(o?.totalUnits) && o.totalUnits > 0)) {
      throw new WhaleError('ERR_INVALID_OPTION', 'totalUnits: expected a number > 0', { field: 'totalUnits' });
    }
    this.totalUnits = o.totalUnits;
    this.clock = o.clock ?? (() => performance.now());
    this.windowMs = o.windowMs ?? 1000;
  }

  /** Grants `cpuUnits` to the model (replacing an earlier grant); returns its share now. */
  allocate(modelId: string, cpuUnits: number): number {
    if (typeof modelId !== 'string' || modelId === '')
      throw new WhaleError('ERR_INVALID_ARG', 'modelId: expected a model name', { field: 'modelId' });
    if (!(Number.isFinite(cpuUnits) && cpuUnits > 0)) {
      throw new WhaleError('ERR_INVALID_ARG', `cpuUnits: expected a number > 0, got ${String(cpuUnits)}`, {
        field: 'cpuUnits',
      });
    }
    const e = this.models.get(modelId);
    if (e) e.units = cpuUnits;
    else
      this.models.set(modelId, {
        units: cpuUnits,
        share: cpuUnits,
        running: 0,
        credit: 0,
        at: this.clock(),
        waiters: [],
        busyMs: 0,
      });
    this.reshare();
    return this.models.get(modelId)!.share;
  }

  /** Ends the grant; batches waiting for a slot run ungated. */
  release(modelId: string): void {
    const e = this.models.get(modelId);
    if (!e) return;
    this.models.delete(modelId);
    this.reshare();
    for (const w of e.waiters.splice(0)) w();
  }

  share(modelId: string): number | undefined {
    return this.models.get(modelId)?.share;
  }

  /** Threads a native kernel of this model may use (at least 1). */
  threadsFor(modelId: string): number {
    const s = this.models.get(modelId)?.share;
    return s === undefined ? Math.max(1, Math.floor(this.totalUnits)) : Math.max(1, Math.floor(s));
  }

  /** Waits for a slot of the model (models without a grant pass at once). */
  acquire(modelId: string): Promise<SlotLease> {
    const e = this.models.get(modelId);
    if (!e) return Promise.resolve(UNGATED);
    return new Promise((resolve) => {
      e.waiters.push(() => resolve(this.lease(modelId, e)));
      this.pump();
    });
  }

  snapshot(): {
    totalUnits: number;
    running: number;
    models: Record<
      string,
      { units: number; share: number; running: number; waiting: number; busyMs: number; threads: number }
    >;
  } {
    const models: Record<
      string,
      { units: number; share: number; running: number; waiting: number; busyMs: number; threads: number }
    > = {};
    for (const [m, e] of this.models) {
      models[m] = {
        units: e.units,
        share: e.share,
        running: e.running,
        waiting: e.waiters.length,
        busyMs: e.busyMs,
        threads: this.threadsFor(m),
      };
    }
    return { totalUnits: this.totalUnits, running: this.running, models };
  }

  private lease(modelId: string, e: Entry): SlotLease {
    const start = this.clock();
    let done = false;
    return {
      release: () => {
        if (done) return;
        done = true;
        const busy = Math.max(0, this.clock() - start);
        e.busyMs += busy;
        this.refill(e);
        e.credit -= busy;
        e.running--;
        this.running--;
        this.pump();
      },
    };
  }

  private reshare(): void {
    const shares = fairShares(new Map([...this.models].map(([m, e]) => [m, e.units])), this.totalUnits);
    for (const [m, e] of this.models) e.share = shares.get(m)!;
  }

  private refill(e: Entry): void {
    const now = this.clock();
    e.credit = Math.min(e.share * this.windowMs, e.credit + (now - e.at) * e.share);
    e.at = now;
  }

  /** Starts every waiting batch that may run now, best credit first. */
  private pump(): void {
    for (;;) {
      const waiting = [...this.models.values()].filter((e) => e.waiters.length > 0);
      if (waiting.length === 0) return;
      const contended = waiting.length > 1;
      for (const e of waiting) this.refill(e);
      waiting.sort((a, b) => b.credit - a.credit);
      const capacity = Math.max(1, Math.ceil(this.totalUnits - 1e-9));
      const next = waiting.find((e) => {
        if (e.running >= Math.max(1, Math.ceil(e.share - 1e-9)) || this.running >= capacity) return false;
        // Under contention a model that used up its share waits, unless nothing runs at all.
        return !contended || e.credit >= 0 || this.running === 0;
      });
      if (!next) return;
      next.running++;
      this.running++;
      next.waiters.shift()!();
    }
  }
}

const UNGATED: SlotLease = { release: () => undefined };
