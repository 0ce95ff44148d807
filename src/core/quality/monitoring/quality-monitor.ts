/**
 * QualityMonitor: per-model quality over time. sample() takes one point per
 * model/version/level from the feedback windows (quality mean and interval,
 * thumbs-up rate) and the performance windows (latency percentiles, requests),
 * and keeps the last `points` per series. attach(registry) exposes the latest
 * figures as Prometheus gauges on a prom-client registry (the monitoring
 * dashboard reads that registry when it is there).
 */
import { Gauge, type Registry } from 'prom-client';

import type { PerformanceWindows } from '../metrics/performance-windows.js';
import type { FeedbackAnalyzer } from '../optimization/feedback-analyzer.js';

export interface QualityPoint {
  t: number;
  model: string;
  version: string;
  level: string;
  /** Mean feedback quality in [0, 1] in the current window (null without feedback) and its interval. */
  quality: number | null;
  qualityLow: number | null;
  qualityHigh: number | null;
  thumbsUpRate: number | null;
  feedback: number;
  requests: number;
  latencyP50Ms: number | null;
  latencyP99Ms: number | null;
}

export interface QualityMonitorOptions {
  analyzer: FeedbackAnalyzer;
  metrics?: PerformanceWindows;
  /** Points kept per series (default 360). */
  points?: number;
  /** Series kept (default 1024): those the analyzer and the performance windows no longer know are dropped at each sample, then the excess. */
  maxSeries?: number;
  now?: () => number;
}

export class QualityMonitor {
  private readonly series = new Map<string, QualityPoint[]>();
  private readonly keep: number;
  private readonly maxSeries: number;
  private readonly now: () => number;
  private gauges: Gauge[] = [];

  constructor(private readonly o: QualityMonitorOptions) {
    this.keep = o.points ?? 360;
    this.maxSeries = o.maxSeries ?? 1024;
    this.now = o.now ?? Date.now;
  }

  /** Takes one point per known model/version/level and returns them. */
  sample(): QualityPoint[] {
    const t = this.now();
    const keys = new Map<string, { model: string; version: string; level: string }>();
    for (const k of this.o.analyzer.keys()) keys.set(`${k.model}\u0000${k.version}\u0000${k.level}`, k);
    for (const s of this.o.metrics?.collectMetrics() ?? []) {
      const k = { model: s.modelId, version: s.version ?? '', level: s.level ?? '' };
      keys.set(`${k.model}\u0000${k.version}\u0000${k.level}`, k);
    }
    // A series whose model/version/level is gone from both sources (evicted there) is dropped here too.
    for (const id of this.series.keys()) if (!keys.has(id)) this.series.delete(id);
    const out: QualityPoint[] = [];
    for (const [id, k] of keys) {
      if (!this.series.has(id) && this.series.size >= this.maxSeries) continue;
      const fb = this.o.analyzer.stats(k.model, { version: k.version, level: k.level }).current;
      const perf = this.o.metrics?.summary(k.model, { version: k.version, level: k.level });
      const point: QualityPoint = {
        t,
        ...k,
        quality: finite(fb.quality.estimate),
        qualityLow: finite(fb.quality.low),
        qualityHigh: finite(fb.quality.high),
        thumbsUpRate: finite(fb.thumbsUpRate.estimate),
        feedback: fb.quality.n,
        requests: perf?.samples ?? 0,
        latencyP50Ms: perf ? finite(perf.latency.p50 * 1000) : null,
        latencyP99Ms: perf ? finite(perf.latency.p99 * 1000) : null,
      };
      const list = this.series.get(id) ?? [];
      list.push(point);
      if (list.length > this.keep) list.shift();
      this.series.set(id, list);
      out.push(point);
    }
    return out;
  }

  /** The points of one model (all its versions/levels), oldest first. */
  history(model: string): QualityPoint[] {
    return [...this.series.values()]
      .flat()
      .filter((p) => p.model === model)
      .sort((a, b) => a.t - b.t);
  }

  latest(): QualityPoint[] {
    return [...this.series.values()].map((l) => l[l.length - 1]!).filter(Boolean);
  }

  /** Registers whale_quality_* gauges on the registry, filled from the latest points at scrape time. */
  attach(registry: Registry): void {
    const labelNames = ['model', 'version', 'level'] as const;
    const latest = () => this.latest();
    const gauge = (name: string, help: string, pick: (p: QualityPoint) => number | null) =>
      new Gauge({
        name,
        help,
        labelNames,
        registers: [registry],
        collect(this: Gauge<'model' | 'version' | 'level'>) {
          this.reset();
          for (const p of latest()) {
            const v = pick(p);
            if (v !== null) this.set({ model: p.model, version: p.version, level: p.level }, v);
          }
        },
      });
    this.gauges = [
      gauge('whale_quality_score', 'Mean user-feedback quality in [0, 1] in the current window', (p) => p.quality),
      gauge('whale_quality_thumbs_up_rate', 'Thumbs-up rate in the current window', (p) => p.thumbsUpRate),
      gauge('whale_quality_feedback', 'Feedback received in the current window', (p) => p.feedback),
    ];
  }
}

function finite(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}
