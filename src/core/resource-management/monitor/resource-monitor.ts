/**
 * ResourceMonitor: samples the machine on an interval (an unref'd timer; a
 * tick never overlaps the previous one), keeps a short history for trends,
 * feeds the figures to the alert engine (its levels rules), and publishes them as metrics.
 * collectMetrics(modelId) gives what one model used.
 */
import type { Logger } from '../../../common/logger.js';
import type { AlertManager } from '../../monitoring/visualization/alert-manager.js';
import type { SystemSample, Sampler } from './system-sampler.js';

export interface ModelMetrics {
  batches: number;
  rows: number;
  wallMs: number;
  cpuMs: number;
  memoryBytes: number;
  gpuBytes: number;
  [key: string]: number;
}

export type MetricPublisher = (name: string, value: number, labels: Record<string, string>) => Promise<void> | void;

export interface ResourceMonitorOptions {
  sampler: Sampler;
  /** Per-model figures at sampling time. */
  models: () => Record<string, ModelMetrics>;
  intervalMs?: number;
  historySize?: number;
  /** Evaluates its rules on each tick's flat figures (see flatten). */
  alerts?: AlertManager;
  publish?: MetricPublisher;
  logger?: Logger;
  clock?: () => number;
}

export interface MonitorTick {
  sample: SystemSample;
  models: Record<string, ModelMetrics>;
  /** Sampling cost of this tick (ms, wall clock). */
  costMs: number;
}

export class ResourceMonitor {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<MonitorTick | undefined> | undefined;
  private readonly history: MonitorTick[] = [];
  private failures = 0;

  constructor(private readonly o: ResourceMonitorOptions) {}

  start(): void {
    if (this.timer) return;
    void this.sampleNow();
    this.timer = setInterval(() => void this.sampleNow(), this.o.intervalMs ?? 2000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One tick now (or the one in progress). */
  sampleNow(): Promise<MonitorTick | undefined> {
    this.running ??= this.tick().finally(() => (this.running = undefined));
    return this.running;
  }

  latest(): MonitorTick | undefined {
    return this.history[this.history.length - 1];
  }

  recent(): readonly MonitorTick[] {
    return this.history;
  }

  /** What the model used (as of the last tick, or now when none ran). */
  collectMetrics(modelId: string): ModelMetrics | undefined {
    return this.o.models()[modelId];
  }

  stats(): { ticks: number; failures: number; lastCostMs: number | undefined } {
    return { ticks: this.history.length, failures: this.failures, lastCostMs: this.latest()?.costMs };
  }

  private async tick(): Promise<MonitorTick | undefined> {
    const t0 = performance.now();
    let sample: SystemSample;
    try {
      sample = await this.o.sampler();
    } catch (err) {
      this.failures++;
      this.o.logger?.warn('resource sampling failed', { error: (err as Error).message });
      return undefined;
    }
    const tick: MonitorTick = { sample, models: this.o.models(), costMs: performance.now() - t0 };
    this.history.push(tick);
    if (this.history.length > (this.o.historySize ?? 150)) this.history.shift();
    const values = flatten(tick);
    this.o.alerts?.observeAll(values, this.o.clock?.() ?? Date.now());
    if (this.o.publish)
      await this.publishAll(tick).catch((err: Error) =>
        this.o.logger?.warn('resource metrics not published', { error: err.message }),
      );
    return tick;
  }

  private async publishAll(t: MonitorTick): Promise<void> {
    const p = this.o.publish!;
    const s = t.sample;
    await p('resource.cpu.load', s.cpu.load, {});
    await p('resource.cpu.process', s.cpu.process, {});
    await p('resource.memory.used_bytes', s.memory.used, {});
    await p('resource.memory.process_rss_bytes', s.memory.process.rss, {});
    await p('resource.memory.heap_used_bytes', s.memory.process.heapUsed, {});
    await p('resource.memory.array_buffers_bytes', s.memory.process.arrayBuffers, {});
    for (const g of s.gpus) {
      await p('resource.gpu.utilization', g.utilization, { device: g.id });
      await p('resource.gpu.memory_used_bytes', g.memoryUsed, { device: g.id });
    }
    for (const [model, m] of Object.entries(t.models)) {
      await p('resource.model.cpu_ms', m.cpuMs, { model });
      await p('resource.model.wall_ms', m.wallMs, { model });
      await p('resource.model.memory_bytes', m.memoryBytes, { model });
      await p('resource.model.gpu_bytes', m.gpuBytes, { model });
    }
  }
}

/** The first segments of flatten()'s keys: a rule on one of them is evaluated on the resource monitor's ticks. */
export const RESOURCE_SERIES_PREFIXES = ['cpu.', 'memory.', 'disk.', 'gpu.', 'models.'] as const;

/** Whether a series is one of the resource monitor's figures (see flatten). */
export function isResourceSeries(series: string): boolean {
  return RESOURCE_SERIES_PREFIXES.some((p) => series.startsWith(p));
}

/** Flat metric keys for alert rules: 'cpu.load', 'memory.process.rss', 'gpu.cuda:0.utilization', 'models.<m>.cpuMs', … */
export function flatten(t: MonitorTick): Record<string, number> {
  const s = t.sample;
  const v: Record<string, number> = {
    'cpu.load': s.cpu.load,
    'cpu.process': s.cpu.process,
    'memory.used': s.memory.used,
    'memory.usedFraction': s.memory.total > 0 ? s.memory.used / s.memory.total : 0,
    'memory.process.rss': s.memory.process.rss,
    'memory.process.heapUsed': s.memory.process.heapUsed,
    'memory.process.arrayBuffers': s.memory.process.arrayBuffers,
  };
  for (const d of s.disks) v[`disk.${d.mount}.use`] = d.use;
  for (const g of s.gpus) {
    v[`gpu.${g.id}.utilization`] = g.utilization;
    v[`gpu.${g.id}.memoryUsedFraction`] = g.memoryTotal > 0 ? g.memoryUsed / g.memoryTotal : 0;
    if (g.temperatureC !== undefined) v[`gpu.${g.id}.temperatureC`] = g.temperatureC;
  }
  for (const [m, f] of Object.entries(t.models)) for (const [k, x] of Object.entries(f)) v[`models.${m}.${k}`] = x;
  return v;
}
