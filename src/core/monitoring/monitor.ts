/**
 * Monitor: samples the node every intervalMs into a dashboard sample (request
 * rate, latency percentiles, batch sizes, queue depths, cache hit rates per
 * tier, federation rounds and accuracy, usage per device, model states), feeds
 * each numeric series to the anomaly detector and the alert rules, writes it to
 * the history, and pushes samples and alert changes to its subscribers (the
 * dashboard's Server-Sent Events).
 */
import type { Logger } from '../../common/logger.js';
import type { CacheStats } from '../memory/tiered-cache.js';
import type { RequestObservation } from '../processing/processing-pipeline.js';
import type { HealthChecker, HealthReport } from './health/health-checker.js';
import type { MetricHistory, MetricPoint } from './history/metric-history.js';
import { RequestWindow } from './metrics/request-window.js';
import { CACHE_TIERS, type ServingSource } from './metrics/serving-collector.js';
import type { DeviceUsage, SystemCollector } from './metrics/system-collector.js';
import type { WhaleMetrics } from './metrics/whale-metrics.js';
import type { Alert, AlertManager } from './visualization/alert-manager.js';

/** What the anomaly detector offers (AnomalyDetectorBank). */
export interface SeriesScorer {
  update(series: string, value: number, tsMs: number): { score: number; anomaly: boolean };
}

export interface DashboardSample {
  ts: number;
  /** Flat numeric series (history, anomaly detection and alert rules use these names). */
  values: Record<string, number>;
  models: { name: string; version: string; state: string; requests: number }[];
  devices: DeviceUsage[];
  anomalies: { series: string; score: number }[];
  /** Requests answered and failed since the monitor started. */
  totals: { requests: number; errors: number };
  health?: { live: boolean; ready: boolean; failing: { name: string; reason: string }[] };
}

export type MonitorEvent = { type: 'sample'; data: DashboardSample } | { type: 'alert'; data: Alert };

export interface MonitorOptions {
  metrics: WhaleMetrics;
  source: ServingSource;
  logger: Logger;
  system?: SystemCollector;
  health?: HealthChecker;
  alerts?: AlertManager;
  history?: MetricHistory;
  scorer?: SeriesScorer;
  /** Default 1000 ms. */
  intervalMs?: number;
  /** Health checks every N samples (default 5). */
  healthEvery?: number;
  /** Downsampling and retention every N ms (default 60 s). */
  maintenanceMs?: number;
  /** Samples kept for a newly opened dashboard (default 600). */
  keepSamples?: number;
}

export class Monitor {
  private readonly window = new RequestWindow();
  private readonly kept: DashboardSample[] = [];
  private readonly listeners = new Set<(e: MonitorEvent) => void>();
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<DashboardSample> | undefined;
  private last:
    | { ts: number; batches: number; batched: number; cache: Record<string, { hits: number; misses: number }> }
    | undefined;
  private ticks = 0;
  private readonly scoreFailures = new Set<string>();
  private readonly totals = { requests: 0, errors: 0 };
  private lastMaintenance = Date.now();
  private unsaved: MetricPoint[] = [];
  private saving: Promise<void> | undefined;
  private historyDown = false;
  private lastHealth: HealthReport | undefined;

  constructor(private readonly o: MonitorOptions) {}

  /** The request path: metrics and the interval window (the pipeline's observer). */
  recordRequest(r: RequestObservation): void {
    this.o.metrics.observeRequest(r.model, r.version, r.level, r.seconds, r.ok ? 'ok' : 'error');
    if (r.cached) this.o.metrics.cachedAnswers.inc({ model: r.model, version: r.version });
    this.window.add(r.model, r.seconds, r.ok);
  }

  start(): void {
    if (this.timer) return;
    this.last = this.counters(Date.now());
    this.timer = setInterval(
      () => void this.tick().catch((err: Error) => this.o.logger.warn('monitor sample failed', { error: err.message })),
      this.o.intervalMs ?? 1000,
    );
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.ticking?.catch(() => undefined);
    await this.saving;
    await this.saveUnsaved();
    this.listeners.clear();
  }

  subscribe(fn: (e: MonitorEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Passes an alert change on to the subscribers (the AlertManager's onChange). */
  alertChanged(a: Alert): void {
    this.emit({ type: 'alert', data: a });
  }

  samples(): DashboardSample[] {
    return [...this.kept];
  }

  /** Takes one sample now (also what the timer does). */
  tick(now = Date.now()): Promise<DashboardSample> {
    this.ticking ??= this.sample(now).finally(() => (this.ticking = undefined));
    return this.ticking;
  }

  private async sample(now: number): Promise<DashboardSample> {
    const prev = this.last ?? this.counters(now - (this.o.intervalMs ?? 1000));
    const cur = this.counters(now);
    this.last = cur;
    const seconds = Math.max(0.001, (cur.ts - prev.ts) / 1000);
    const w = this.window.take();
    const v: Record<string, number> = {
      'requests.rate': w.requests / seconds,
      'requests.error_rate': w.errors / seconds,
      'latency.p50_ms': w.p50,
      'latency.p95_ms': w.p95,
      'latency.p99_ms': w.p99,
    };
    const db = cur.batches - prev.batches;
    v['batch.mean_size'] = db > 0 ? (cur.batched - prev.batched) / db : 0;
    const sched = this.o.source.scheduler?.stats();
    v['queue.depth'] = sched ? Object.values(sched.models).reduce((s, m) => s + m.queued, 0) : 0;
    for (const tier of Object.keys(cur.cache)) {
      const a = cur.cache[tier]!,
        b = prev.cache[tier] ?? { hits: 0, misses: 0 };
      const hits = a.hits - b.hits,
        total = hits + a.misses - b.misses;
      v[`cache.${tier}.hit_ratio`] =
        total > 0 ? hits / total : a.hits + a.misses > 0 ? a.hits / (a.hits + a.misses) : 0;
    }
    const rounds = await this.o.metrics.federationRounds.get();
    v['federation.rounds'] = rounds.values.reduce((s, x) => s + x.value, 0);
    for (const x of (await this.o.metrics.federationAccuracy.get()).values)
      v[`federation.accuracy.${x.labels.model ?? 'unknown'}`] = x.value;
    const devices = this.o.system?.devices() ?? [];
    for (const d of devices) {
      v[`device.${d.device}.utilization`] = d.utilization;
      v[`device.${d.device}.memory_used_bytes`] = d.memoryUsedBytes;
    }
    const host = this.o.source.host;
    const models = host
      ? host
          .names()
          .map((n) => host.status(n))
          .map((s) => ({ name: s.name, version: s.version, state: s.state, requests: w.perModel[s.name] ?? 0 }))
      : [];
    for (const m of models) v[`model.${m.name}.rate`] = m.requests / seconds;
    const anomalies: DashboardSample['anomalies'] = [];
    for (const [series, value] of Object.entries(v)) {
      const r = this.score(series, value, now);
      if (r) {
        this.o.metrics.anomalyScore.set({ series }, r.score);
        if (r.anomaly) anomalies.push({ series, score: r.score });
        this.o.alerts?.observeAnomaly(series, r.score, r.anomaly, now);
      }
      this.o.alerts?.observe(series, value, now);
    }
    this.totals.requests += w.requests - w.errors;
    this.totals.errors += w.errors;
    const s: DashboardSample = { ts: now, values: v, models, devices, anomalies, totals: { ...this.totals } };
    if (this.o.health && this.ticks % (this.o.healthEvery ?? 5) === 0) {
      this.lastHealth = await this.o.health.check();
      this.o.alerts?.observeHealth(this.lastHealth, now);
    }
    if (this.lastHealth) {
      const h = this.lastHealth;
      s.health = {
        live: h.live,
        ready: h.ready,
        failing: h.checks.filter((c) => !c.ok).map((c) => ({ name: c.name, reason: c.reason ?? 'failed' })),
      };
    }
    this.ticks++;
    this.kept.push(s);
    if (this.kept.length > (this.o.keepSamples ?? 600)) this.kept.shift();
    this.emit({ type: 'sample', data: s });
    this.persist(s, now);
    return s;
  }

  /** Queues the sample for the history; writes run one at a time in the background (a slow database never stalls sampling). */
  private persist(s: DashboardSample, now: number): void {
    const h = this.o.history;
    if (!h) return;
    for (const [series, value] of Object.entries(s.values))
      if (Number.isFinite(value)) this.unsaved.push({ series, ts: s.ts, value });
    // Kept across a database outage (bounded: about an hour of samples), written once it is back.
    if (this.unsaved.length > 200_000) this.unsaved.splice(0, this.unsaved.length - 200_000);
    if (this.saving) return;
    const maintain = now - this.lastMaintenance >= (this.o.maintenanceMs ?? 60_000);
    if (maintain) this.lastMaintenance = now;
    this.saving = this.saveUnsaved()
      .then(() => (maintain ? h.maintain(now).then(() => undefined) : undefined))
      .catch((err: Error) => this.o.logger.warn('metrics history maintenance failed', { error: err.message }))
      .finally(() => (this.saving = undefined));
  }

  private async saveUnsaved(): Promise<void> {
    const h = this.o.history;
    if (!h || this.unsaved.length === 0) return;
    const batch = this.unsaved;
    this.unsaved = [];
    try {
      await h.writePoints(batch);
      if (this.historyDown) this.o.logger.info('metrics history writable again', { points: batch.length });
      this.historyDown = false;
    } catch (err) {
      this.unsaved = batch.concat(this.unsaved);
      if (!this.historyDown)
        this.o.logger.warn('metrics history write failed; keeping the points to retry', {
          error: (err as Error).message,
        });
      this.historyDown = true;
    }
  }

  /** The detector's verdict, or undefined when it refuses the point (logged once per series). */
  private score(series: string, value: number, now: number): { score: number; anomaly: boolean } | undefined {
    if (!this.o.scorer) return undefined;
    try {
      return this.o.scorer.update(series, value, now);
    } catch (err) {
      if (!this.scoreFailures.has(series))
        this.o.logger.warn('anomaly detector refused a point', { series, error: (err as Error).message });
      this.scoreFailures.add(series);
      return undefined;
    }
  }

  private counters(ts: number): NonNullable<Monitor['last']> {
    let batches = 0,
      batched = 0;
    for (const m of Object.values(this.o.source.scheduler?.stats().models ?? {})) {
      batches += m.batches;
      batched += m.batches * m.meanBatchSize;
    }
    const cache: Record<string, { hits: number; misses: number }> = {};
    const cs: CacheStats | undefined = this.o.source.cacheStats?.();
    if (cs)
      for (const tier of CACHE_TIERS) {
        const t = cs[tier];
        if ('hits' in t) cache[tier] = { hits: t.hits, misses: t.misses };
      }
    return { ts, batches, batched, cache };
  }

  private emit(e: MonitorEvent): void {
    for (const fn of this.listeners) {
      try {
        fn(e);
      } catch (err) {
        this.o.logger.warn('monitor listener failed', { error: (err as Error).message });
      }
    }
  }
}
