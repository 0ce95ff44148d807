/**
 * The requests of the current sampling interval: counts per model, errors and
 * a bounded uniform sample of latencies (reservoir) for the percentiles the
 * dashboard shows. O(1) per request, bounded memory.
 */
export interface WindowSummary {
  requests: number;
  errors: number;
  perModel: Record<string, number>;
  /** Milliseconds; 0 when no request finished in the interval. */
  p50: number;
  p95: number;
  p99: number;
}

export class RequestWindow {
  private count = 0;
  private errors = 0;
  private seen = 0;
  private perModel = new Map<string, number>();
  private readonly sample: Float64Array;
  private rand = 0x9e3779b9;

  constructor(capacity = 2048) {
    this.sample = new Float64Array(capacity);
  }

  add(model: string, seconds: number, ok: boolean): void {
    this.count++;
    this.perModel.set(model, (this.perModel.get(model) ?? 0) + 1);
    if (!ok) {
      this.errors++;
      return;
    }
    const i = this.seen++;
    if (i < this.sample.length) this.sample[i] = seconds;
    else {
      // Reservoir sampling (Algorithm R) with a xorshift draw: every latency equally likely to be kept.
      this.rand ^= this.rand << 13;
      this.rand ^= this.rand >>> 17;
      this.rand ^= this.rand << 5;
      const j = (this.rand >>> 0) % (i + 1);
      if (j < this.sample.length) this.sample[j] = seconds;
    }
  }

  /** The interval's summary; starts the next interval. */
  take(): WindowSummary {
    const n = Math.min(this.seen, this.sample.length);
    const sorted = this.sample.slice(0, n).sort();
    const q = (p: number) => (n === 0 ? 0 : sorted[Math.min(n - 1, Math.floor(p * n))]! * 1000);
    const out = {
      requests: this.count,
      errors: this.errors,
      perModel: Object.fromEntries(this.perModel),
      p50: q(0.5),
      p95: q(0.95),
      p99: q(0.99),
    };
    this.count = this.errors = this.seen = 0;
    this.perModel = new Map();
    return out;
  }
}
