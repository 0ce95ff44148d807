/**
 * A time window cut into slots: each slot keeps a latency sketch and sums, so
 * the window's figures are a merge of the slots still inside it and memory is
 * bounded by the slot count, not by the traffic.
 */
import { LogSketch } from './log-sketch.js';

export interface WindowSlot {
  start: number;
  latency: LogSketch;
  accuracySum: number;
  accuracyCount: number;
  resources: Map<string, { sum: number; count: number }>;
}

export interface WindowFigures {
  samples: number;
  accuracy: number;
  latency: LogSketch;
  resources: Record<string, number>;
}

export class RollingWindow {
  private readonly slots: WindowSlot[] = [];
  private readonly slotMs: number;

  constructor(
    readonly windowMs: number,
    readonly slotCount: number,
    private readonly relativeAccuracy: number,
  ) {
    this.slotMs = windowMs / slotCount;
  }

  record(now: number, accuracy: number | undefined, latency: number, resources: Record<string, number>): void {
    const slot = this.slotAt(now);
    slot.latency.add(latency);
    if (accuracy !== undefined) {
      slot.accuracySum += accuracy;
      slot.accuracyCount++;
    }
    for (const [k, v] of Object.entries(resources)) {
      const r = slot.resources.get(k) ?? { sum: 0, count: 0 };
      r.sum += v;
      r.count++;
      slot.resources.set(k, r);
    }
  }

  figures(now: number): WindowFigures {
    this.expire(now);
    const latency = new LogSketch(this.relativeAccuracy);
    let accSum = 0;
    let accCount = 0;
    const res = new Map<string, { sum: number; count: number }>();
    for (const s of this.slots) {
      latency.merge(s.latency);
      accSum += s.accuracySum;
      accCount += s.accuracyCount;
      for (const [k, v] of s.resources) {
        const r = res.get(k) ?? { sum: 0, count: 0 };
        r.sum += v.sum;
        r.count += v.count;
        res.set(k, r);
      }
    }
    return {
      samples: latency.count,
      accuracy: accCount === 0 ? NaN : accSum / accCount,
      latency,
      resources: Object.fromEntries([...res].map(([k, v]) => [k, v.sum / v.count])),
    };
  }

  private slotAt(now: number): WindowSlot {
    const start = Math.floor(now / this.slotMs) * this.slotMs;
    const last = this.slots[this.slots.length - 1];
    if (last && last.start === start) return last;
    this.expire(now);
    const slot: WindowSlot = {
      start,
      latency: new LogSketch(this.relativeAccuracy),
      accuracySum: 0,
      accuracyCount: 0,
      resources: new Map(),
    };
    this.slots.push(slot);
    return slot;
  }

  private expire(now: number): void {
    while (this.slots.length > 0 && this.slots[0]!.start + this.slotMs <= now - this.windowMs) this.slots.shift();
    while (this.slots.length > this.slotCount + 1) this.slots.shift();
  }
}
