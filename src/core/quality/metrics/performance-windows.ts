/**
 * PerformanceWindows: the recent performance of served requests, for quality
 * decisions (routing, the quality monitor). recordPerformanceMetrics(modelId,
 * accuracy, latency, resourceUsage) keeps a rolling window per model, version
 * and pipeline level (latency percentiles from a mergeable LogSketch, mean
 * accuracy, mean resource figures). summary() merges the windows that match a
 * model (optionally one version and/or level). It exports nothing itself: a
 * sink (monitoring's PerformanceMetrics, which records to Prometheus and
 * keeps the per-model history) receives every record with a known accuracy.
 */
import { WhaleError } from '../../../common/errors.js';
import { intIn } from '../../../common/validate.js';
import { RollingWindow } from './rolling-window.js';

/** Any object with the seed's recording method: records are forwarded to it. */
export interface PerformanceSink {
  recordPerformanceMetrics(
    modelId: string,
    accuracy: number,
    latency: number,
    resourceUsage: Record<string, number>,
  ): unknown;
}

export interface SeriesKey {
  version?: string;
  level?: string;
}

export interface PerformanceWindowSummary {
  modelId: string;
  version: string | undefined;
  level: string | undefined;
  samples: number;
  /** Mean accuracy over the window (NaN when none was recorded). */
  accuracy: number;
  /** Seconds. */
  latency: { mean: number; p50: number; p90: number; p99: number; max: number };
  resources: Record<string, number>;
}

export interface PerformanceWindowsOptions {
  /** Window length (default 5 min) and the slots it is cut into (default 10). */
  windowMs?: number;
  slots?: number;
  /** Relative accuracy of the latency percentiles (default 0.01). */
  relativeAccuracy?: number;
  sink?: PerformanceSink;
  now?: () => number;
  /** model/version/level combinations kept (default 4096; the least recently recorded is dropped). */
  maxSeries?: number;
}

const SEP = '\u0000';

export class PerformanceWindows {
  private readonly series = new Map<string, RollingWindow>();
  private readonly windowMs: number;
  private readonly slots: number;
  private readonly accuracy: number;
  private readonly now: () => number;
  private readonly maxSeries: number;

  constructor(private readonly o: PerformanceWindowsOptions = {}) {
    this.windowMs = positive(o.windowMs ?? 300_000, 'windowMs');
    this.slots = positiveInt(o.slots ?? 10, 'slots');
    this.accuracy = o.relativeAccuracy ?? 0.01;
    this.maxSeries = positiveInt(o.maxSeries ?? 4096, 'maxSeries');
    this.now = o.now ?? Date.now;
  }

  /**
   * accuracy in [0, 1] (NaN when unknown for this request), latency in seconds,
   * resourceUsage as finite figures >= 0 by resource name.
   */
  recordPerformanceMetrics(
    modelId: string,
    accuracy: number,
    latency: number,
    resourceUsage: Record<string, number> = {},
    key: SeriesKey = {},
  ): void {
    if (typeof modelId !== 'string' || modelId.length === 0) throw bad('modelId', 'must be a non-empty string');
    if (!(Number.isNaN(accuracy) || (accuracy >= 0 && accuracy <= 1)))
      throw bad('accuracy', `must be in [0, 1] (or NaN when unknown), got ${accuracy}`);
    if (!(Number.isFinite(latency) && latency >= 0))
      throw bad('latency', `must be a finite number of seconds >= 0, got ${latency}`);
    if (typeof resourceUsage !== 'object' || resourceUsage === null || Array.isArray(resourceUsage))
      throw bad('resourceUsage', 'must be an object of figures');
    for (const [k, v] of Object.entries(resourceUsage))
      if (!(typeof v === 'number' && Number.isFinite(v) && v >= 0))
        throw bad(`resourceUsage.${k}`, 'must be a finite number >= 0');
    for (const k of ['version', 'level'] as const)
      if (key[k] !== undefined && typeof key[k] !== 'string') throw bad(k, 'must be a string');
    const id = [modelId, key.version ?? '', key.level ?? ''].join(SEP);
    let w = this.series.get(id);
    if (w) this.series.delete(id);
    else {
      if (this.series.size >= this.maxSeries) this.series.delete(this.series.keys().next().value!);
      w = new RollingWindow(this.windowMs, this.slots, this.accuracy);
    }
    this.series.set(id, w);
    w.record(this.now(), Number.isNaN(accuracy) ? undefined : accuracy, latency, resourceUsage);
    if (this.o.sink && !Number.isNaN(accuracy))
      this.o.sink.recordPerformanceMetrics(modelId, accuracy, latency, resourceUsage);
  }

  /** The window's figures for a model, merged over its versions/levels unless they are given. */
  summary(modelId: string, key: SeriesKey = {}): PerformanceWindowSummary {
    const now = this.now();
    let samples = 0;
    let accSum = 0;
    let accWeight = 0;
    const res = new Map<string, { sum: number; n: number }>();
    let merged: ReturnType<RollingWindow['figures']>['latency'] | undefined;
    for (const [id, w] of this.series) {
      const [m, v, l] = id.split(SEP);
      if (
        m !== modelId ||
        (key.version !== undefined && v !== key.version) ||
        (key.level !== undefined && l !== key.level)
      )
        continue;
      const f = w.figures(now);
      if (f.samples === 0) continue;
      samples += f.samples;
      if (!Number.isNaN(f.accuracy)) {
        accSum += f.accuracy * f.samples;
        accWeight += f.samples;
      }
      for (const [k, v2] of Object.entries(f.resources)) {
        const r = res.get(k) ?? { sum: 0, n: 0 };
        r.sum += v2 * f.samples;
        r.n += f.samples;
        res.set(k, r);
      }
      if (merged) merged.merge(f.latency);
      else merged = f.latency;
    }
    const q = (p: number) => (merged ? merged.quantile(p) : NaN);
    return {
      modelId,
      version: key.version,
      level: key.level,
      samples,
      accuracy: accWeight === 0 ? NaN : accSum / accWeight,
      latency: {
        mean: merged ? merged.mean : NaN,
        p50: q(0.5),
        p90: q(0.9),
        p99: q(0.99),
        max: merged ? merged.max : NaN,
      },
      resources: Object.fromEntries([...res].map(([k, r]) => [k, r.sum / r.n])),
    };
  }

  /** Every model/version/level series with data in the window. */
  collectMetrics(): PerformanceWindowSummary[] {
    const out: PerformanceWindowSummary[] = [];
    for (const id of this.series.keys()) {
      const [m, v, l] = id.split(SEP) as [string, string, string];
      const s = this.summary(m, { version: v, level: l });
      if (s.samples > 0) out.push({ ...s, version: v || undefined, level: l || undefined });
    }
    return out;
  }
}

function bad(field: string, message: string): WhaleError {
  return new WhaleError('ERR_INVALID_ARG', `${field}: ${message}`, { field });
}

function positive(v: number, name: string): number {
  if (!(Number.isFinite(v) && v > 0))
    throw new WhaleError('ERR_INVALID_OPTION', `options.${name}: must be a number > 0`, { field: `options.${name}` });
  return v;
}

function positiveInt(v: number, name: string): number {
  return intIn(v, `options.${name}`);
}
