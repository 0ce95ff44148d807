/**
 * Collects what the services publish on whale.metrics (MessagingService.publishMetric):
 * each metric name becomes its own Prometheus family (a gauge of the last value), its
 * labels real labels plus `source` (the publishing node):
 *
 *   resource.model.wall_ms {model: mnist} from node-1  →  whale_resource_model_wall_ms{source="node-1",model="mnist"}
 *
 * Names are sanitized (`.`, `-`, … → `_`, camelCase → snake_case, lower case, `whale_` in front); the
 * publisher's unit words (`_ms`, `_bytes`, `_ratio`) stay in the name. A label named `source` by the
 * publisher becomes `exported_source`. The coordinator's `federation.round`, `federation.accuracy`,
 * `federation.clients` and `federation.round_seconds` (label `model`; TaskManager.metrics) also feed
 * the federation families (whale_federation_*) and the dashboard's federation series. Families,
 * series and labels per family are bounded so a noisy publisher cannot grow the registry without
 * bound: what goes over is counted in whale_bus_metric_series_dropped_total, never silently lost. A name whose family already exists
 * in the registry (one of ours) is exposed as whale_bus_<name> instead.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

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
  /** Distinct series (family × label values) exposed, over all families (default 1000). */
  maxSeries?: number;
  /** Distinct families (metric names) exposed (default 200). */
  maxFamilies?: number;
  /** Labels per family, `source` included (default 8). */
  maxLabels?: number;
  /** Called for every valid metric (the monitor samples federation figures from it). */
  onMetric?: (m: BusMetric) => void;
}

/** Longest family name and label value exposed (longer names are dropped, longer values cut). */
const MAX_NAME_LENGTH = 200;
const MAX_LABEL_VALUE_LENGTH = 256;

/** The Prometheus family of a bus metric name ('resource.model.wall_ms' → 'whale_resource_model_wall_ms'); undefined when nothing usable is left. */
export function busMetricFamily(name: string): string | undefined {
  const base = snake(name).replace(/^whale_/, '');
  if (base === '') return undefined;
  const family = `whale_${base}`;
  return family.length <= MAX_NAME_LENGTH ? family : undefined;
}

/** A Prometheus label name for a publisher's label key (`source` is ours: theirs becomes `exported_source`). */
export function busMetricLabel(key: string): string | undefined {
  let l = snake(key);
  if (l === '') return undefined;
  if (/^[0-9]/.test(l)) l = `_${l}`;
  if (l.startsWith('__')) l = `x${l}`; // __* is reserved for Prometheus's own labels
  if (l === 'source') l = 'exported_source';
  return l.length <= MAX_NAME_LENGTH ? l : undefined;
}

/** camelCase → camel_case, anything but [a-z0-9_] → '_', runs of '_' collapsed, none at the ends. */
function snake(s: string): string {
  return s
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '_')
    .replace(/_+/g, '_')
    .replace(/^_|_$/g, '');
}

interface Family {
  name: string;
  labelNames: string[];
  gauge: Gauge<string>;
  series: Map<string, { labels: Record<string, string>; value: number }>;
}

export class BusMetricsCollector {
  private sub: Subscription | undefined;
  private readonly families = new Map<string, Family>();
  private seriesCount = 0;
  private readonly registry: Registry;
  private readonly overflow: Counter;
  private readonly invalid: Counter;
  private warned = false;

  constructor(private readonly o: BusMetricsOptions) {
    this.registry = o.metrics.registry;
    const registers = [this.registry];
    this.overflow = new Counter({
      name: 'whale_bus_metric_series_dropped_total',
      help: 'Bus metrics not exposed: over maxSeries, maxFamilies or maxLabels, or a name that cannot be a family',
      registers,
    });
    this.invalid = new Counter({
      name: 'whale_bus_metric_invalid_total',
      help: 'Messages on whale.metrics without a name and a finite value',
      registers,
    });
  }

  async start(bus: Bus): Promise<void> {
    this.sub = await bus.subscribe(TOPICS.metrics, (msg) => this.take(msg.payload, msg.source, msg.timestamp), {
      group: this.o.group ?? 'whale-monitoring',
    });
  }

  async stop(): Promise<void> {
    await this.sub?.close();
    this.sub = undefined;
  }

  /** The family each bus metric name is exposed as so far (name → family). */
  familyNames(): string[] {
    return [...this.families.keys()];
  }

  /** One metric message (exposed for tests and for in-process publishers). */
  take(payload: unknown, source: string, timestamp = Date.now()): void {
    const p = payload as { name?: unknown; value?: unknown; labels?: unknown } | null;
    if (!p || typeof p.name !== 'string' || typeof p.value !== 'number' || !Number.isFinite(p.value)) {
      this.invalid.inc();
      return;
    }
    const labels: Record<string, string> = {};
    if (p.labels && typeof p.labels === 'object')
      for (const [k, v] of Object.entries(p.labels)) if (typeof v === 'string') labels[k] = v;
    const m: BusMetric = { name: p.name, value: p.value, labels, source, timestamp };
    this.o.metrics.busMessages.inc({ topic: TOPICS.metrics });
    this.federation(m);
    if (!this.expose(m)) this.drop(m.name);
    this.o.onMetric?.(m);
  }

  /** The coordinator's round figures (TaskManager.metrics) into the federation families the dashboard samples. */
  private federation(m: BusMetric): void {
    if (!m.name.startsWith('federation.')) return;
    const model = m.labels.model ?? 'unknown';
    const f = this.o.metrics;
    if (m.name === 'federation.round') f.federationRounds.inc({ model });
    else if (m.name === 'federation.accuracy' && m.value >= 0 && m.value <= 1)
      f.federationAccuracy.set({ model }, m.value);
    else if (m.name === 'federation.clients' && m.value >= 0) f.federationClients.set({ model }, m.value);
    else if (m.name === 'federation.round_seconds' && m.value >= 0)
      f.federationRoundDuration.observe({ model }, m.value);
  }

  /** Sets the metric's series in its family; false when a bound (or its name) keeps it out. */
  private expose(m: BusMetric): boolean {
    const promLabels: Record<string, string> = { source: cut(m.source) };
    for (const k of Object.keys(m.labels).sort()) {
      const l = busMetricLabel(k);
      if (l === undefined) return false;
      promLabels[l] = cut(m.labels[k]!);
    }
    const names = Object.keys(promLabels);
    if (names.length > (this.o.maxLabels ?? 8)) return false;
    const family = this.familyFor(m.name, names);
    if (!family) return false;
    const key = names.map((n) => `${n}\u0000${promLabels[n]}`).join('\u0001');
    const s = family.series.get(key);
    if (s) {
      s.value = m.value;
      return true;
    }
    if (this.seriesCount >= (this.o.maxSeries ?? 1000)) return false;
    family.series.set(key, { labels: promLabels, value: m.value });
    this.seriesCount++;
    return true;
  }

  /** The family of a bus metric name with (at least) these label names, created or widened as needed. */
  private familyFor(busName: string, labelNames: string[]): Family | undefined {
    const wanted = busMetricFamily(busName);
    if (wanted === undefined) return undefined;
    const fallback = `whale_bus_${wanted.slice('whale_'.length)}`;
    let family = this.families.get(wanted) ?? this.families.get(fallback);
    // A new family, or new labels, means a new series: nothing is created when that series could not be kept.
    const full = this.seriesCount >= (this.o.maxSeries ?? 1000);
    if (!family) {
      if (full || this.families.size >= (this.o.maxFamilies ?? 200)) return undefined;
      const name = [wanted, fallback].find(
        (n) => n.length <= MAX_NAME_LENGTH && this.registry.getSingleMetric(n) === undefined,
      );
      if (name === undefined) return undefined;
      family = { name, labelNames: [], gauge: undefined as unknown as Gauge<string>, series: new Map() };
      this.families.set(name, family);
      this.register(family, busName, labelNames);
      return family;
    }
    const missing = labelNames.filter((n) => !family!.labelNames.includes(n));
    if (missing.length === 0) return family;
    if (full || family.labelNames.length + missing.length > (this.o.maxLabels ?? 8)) return undefined;
    // A label this family has not had yet: the gauge is registered again with the wider label set (its series are kept).
    this.registry.removeSingleMetric(family.name);
    this.register(family, busName, [...family.labelNames, ...missing]);
    return family;
  }

  private register(family: Family, busName: string, labelNames: string[]): void {
    const f = family;
    f.labelNames = labelNames;
    f.gauge = new Gauge({
      name: f.name,
      help: `Last value of '${busName.replace(/[\\\n]/g, ' ')}' published on whale.metrics, by publishing node (source)`,
      labelNames,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const s of f.series.values()) this.set(s.labels, s.value);
      },
    });
  }

  private drop(name: string): void {
    this.overflow.inc();
    if (!this.warned) {
      this.o.logger.warn(
        'bus metrics: a metric is not exposed (series, family or label bound reached, or an unusable name); such metrics are counted in whale_bus_metric_series_dropped_total',
        {
          metric: name.slice(0, 200),
          maxSeries: this.o.maxSeries ?? 1000,
          maxFamilies: this.o.maxFamilies ?? 200,
        },
      );
    }
    this.warned = true;
  }
}

function cut(v: string): string {
  return v.length <= MAX_LABEL_VALUE_LENGTH ? v : v.slice(0, MAX_LABEL_VALUE_LENGTH);
}
