/**
 * Collects what the services publish on whale.metrics (MessagingService.publishMetric):
 * each metric's last value becomes `whale_bus_metric{name,source,labels}`;
 * `federation.round` and `federation.accuracy` (label `model`) feed the
 * federation series. Distinct series are capped so a noisy publisher cannot
 * grow the registry without bound (the excess is counted, never silently lost).
 */
import { Counter } from 'prom-client';

import type { Logger } from '../../../common/logger.js';
import type { Bus, Subscription } from '../../../transport/bus.js';
import { TOPICS } from '../../../transport/topics.js';
import type { WhaleMetrics } from './whale-metrics.js';

export interface BusMetric {
  name: string;
  value: number;
  labels: Record<string, string>;
  source: string;
  timestamp: number;
}

export interface BusMetricsOptions {
  metrics: WhaleMetrics;
  logger: Logger;
  /** Consumer group (default 'whale-monitoring'): one per node to see every metric. */
  group?: string;
  maxSeries?: number;
  /** Called for every valid metric (the monitor samples federation figures from it). */
  onMetric?: (m: BusMetric) => void;
}

export class BusMetricsCollector {
  private sub: Subscription | undefined;
  private readonly series = new Set<string>();
  private readonly overflow: Counter;
  private readonly invalid: Counter;
  private warned = false;

  constructor(private readonly o: BusMetricsOptions) {
    const registers = [o.metrics.registry];
    this.overflow = new Counter({ name: 'whale_bus_metric_series_dropped_total', help: 'Bus metrics not exposed because maxSeries distinct series were reached', registers });
    this.invalid = new Counter({ name: 'whale_bus_metric_invalid_total', help: 'Messages on whale.metrics without a name and a finite value', registers });
  }

  async start(bus: Bus): Promise<void> {
    this.sub = await bus.subscribe(TOPICS.metrics, (msg) => this.take(msg.payload, msg.source, msg.timestamp), { group: this.o.group ?? 'whale-monitoring' });
  }

  async stop(): Promise<void> {
    await this.sub?.close();
    this.sub = undefined;
  }

  /** One metric message (exposed for tests and for in-process publishers). */
  take(payload: unknown, source: string, timestamp = Date.now()): void {
    const p = payload as { name?: unknown; value?: unknown; labels?: unknown } | null;
    if (!p || typeof p.name !== 'string' || typeof p.value !== 'number' || !Number.isFinite(p.value)) {
      this.invalid.inc();
      return;
    }
    const labels: Record<string, string> = {};
    if (p.labels && typeof p.labels === 'object') for (const [k, v] of Object.entries(p.labels)) if (typeof v === 'string') labels[k] = v;
    const m: BusMetric = { name: p.name, value: p.value, labels, source, timestamp };
    this.o.metrics.busMessages.inc({ topic: TOPICS.metrics });
    const model = labels.model ?? 'unknown';
    if (m.name === 'federation.round') this.o.metrics.federationRounds.inc({ model });
    else if (m.name === 'federation.accuracy' && m.value >= 0 && m.value <= 1) this.o.metrics.federationAccuracy.set({ model }, m.value);
    const flat = Object.entries(labels)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    const key = `${m.name}\u0000${source}\u0000${flat}`;
    if (!this.series.has(key) && this.series.size >= (this.o.maxSeries ?? 1000)) {
      this.overflow.inc();
      if (!this.warned) this.o.logger.warn('bus metrics: series limit reached; further new series are counted, not exposed', { maxSeries: this.o.maxSeries ?? 1000 });
      this.warned = true;
    } else {
      this.series.add(key);
      this.o.metrics.busMetric.set({ name: m.name, source, labels: flat }, m.value);
    }
    this.o.onMetric?.(m);
  }
}
