/**
 * Serving figures read at scrape time from the parts that already count them
 * (TaskScheduler.stats(), ModelHost.status(), TieredCache.stats(), the
 * pipeline's level counts): nothing is added to their hot paths. Cumulative
 * counts are exposed as counters (`_total`), levels as gauges.
 */
import { Counter, Gauge } from 'prom-client';

import type { CacheStats } from '../../memory/tiered-cache.js';
import type { HostedModelStatus } from '../../processing/model-host.js';
import type { SchedulerStats } from '../../processing/task-scheduler.js';
import type { WhaleMetrics } from './whale-metrics.js';

export interface ServingSource {
  scheduler?: { stats(): SchedulerStats };
  host?: { names(): string[]; status(name: string): HostedModelStatus };
  pipeline?: { levelStats(): Readonly<Record<'quick' | 'normal' | 'deep' | 'cacheHits', number>> };
  cacheStats?: () => CacheStats | undefined;
}

const STATES = ['loading', 'ready', 'restarting', 'failed', 'stopped'] as const;
export const CACHE_TIERS = ['l1', 'l2', 'l3'] as const;
const OUTCOMES = ['completed', 'failed', 'rejected', 'expired', 'cancelled', 'shutdown', 'removed'] as const;

/** Sets a cumulative figure on a counter (which only offers inc): reset, then inc per label set. */
function setTotals<T extends string>(c: Counter<T>, rows: [Partial<Record<T, string>>, number][]): void {
  c.reset();
  for (const [labels, v] of rows) c.inc(labels, v);
}

export function registerServingCollectors(metrics: WhaleMetrics, src: ServingSource): void {
  const registers = [metrics.registry];
  if (src.scheduler) {
    const scheduler = src.scheduler;
    const stats = () => Object.entries(scheduler.stats().models);
    new Gauge({
      name: 'whale_scheduler_queue_depth',
      help: 'Requests waiting in the scheduler queue',
      labelNames: ['model'],
      registers,
      collect() {
        this.reset();
        for (const [model, s] of stats()) this.set({ model }, s.queued);
      },
    });
    new Gauge({
      name: 'whale_scheduler_running_requests',
      help: 'Requests handed to a model and not answered yet',
      labelNames: ['model'],
      registers,
      collect() {
        this.reset();
        for (const [model, s] of stats()) this.set({ model }, s.running);
      },
    });
    new Counter({
      name: 'whale_scheduler_batches_total',
      help: 'Batches run by the scheduler',
      labelNames: ['model'],
      registers,
      collect() {
        setTotals(
          this,
          stats().map(([model, s]) => [{ model }, s.batches]),
        );
      },
    });
    new Counter({
      name: 'whale_scheduler_batched_requests_total',
      help: 'Requests run in batches (divided by batches: the mean batch size)',
      labelNames: ['model'],
      registers,
      collect() {
        setTotals(
          this,
          stats().map(([model, s]) => [{ model }, Math.round(s.batches * s.meanBatchSize)]),
        );
      },
    });
    new Counter({
      name: 'whale_scheduler_requests_total',
      help: 'Scheduler requests by outcome',
      labelNames: ['model', 'outcome'],
      registers,
      collect() {
        setTotals(
          this,
          stats().flatMap(([model, s]) =>
            OUTCOMES.map((outcome) => [{ model, outcome }, s[outcome]] as [Record<string, string>, number]),
          ),
        );
      },
    });
  }
  if (src.host) {
    const host = src.host;
    const statuses = () => host.names().map((n) => host.status(n));
    new Gauge({
      name: 'whale_model_state',
      help: 'Hosted models: 1 for the state each model is in',
      labelNames: ['model', 'version', 'state'],
      registers,
      collect() {
        this.reset();
        for (const s of statuses())
          for (const state of STATES) this.set({ model: s.name, version: s.version, state }, s.state === state ? 1 : 0);
      },
    });
    new Counter({
      name: 'whale_model_restarts_total',
      help: 'Reloads of a model after a failure',
      labelNames: ['model'],
      registers,
      collect() {
        setTotals(
          this,
          statuses().map((s) => [{ model: s.name }, s.restarts]),
        );
      },
    });
    new Counter({
      name: 'whale_model_failures_total',
      help: 'Failures (throws, hangs) of a model',
      labelNames: ['model'],
      registers,
      collect() {
        setTotals(
          this,
          statuses().map((s) => [{ model: s.name }, s.failures]),
        );
      },
    });
  }
  if (src.pipeline) {
    const pipeline = src.pipeline;
    new Counter({
      name: 'whale_pipeline_requests_total',
      help: 'Requests entering the processing pipeline, by level',
      labelNames: ['level'],
      registers,
      collect() {
        const s = pipeline.levelStats();
        setTotals(
          this,
          (['quick', 'normal', 'deep'] as const).map((level) => [{ level }, s[level]]),
        );
      },
    });
  }
  if (src.cacheStats) registerCacheCollectors(metrics, src.cacheStats);
}

function registerCacheCollectors(metrics: WhaleMetrics, read: () => CacheStats | undefined): void {
  const registers = [metrics.registry];
  const tiers = () => {
    const s = read();
    if (!s) return [];
    return CACHE_TIERS.flatMap((tier) => {
      const t = s[tier];
      return 'hits' in t
        ? [{ tier, hits: t.hits, misses: t.misses, errors: t.errors, bytes: 'bytes' in t ? t.bytes : 0 }]
        : [];
    });
  };
  const total = (name: string, help: string, key: 'hits' | 'misses' | 'errors') =>
    new Counter({
      name,
      help,
      labelNames: ['tier'],
      registers,
      collect() {
        setTotals(
          this,
          tiers().map((t) => [{ tier: t.tier }, t[key]]),
        );
      },
    });
  total('whale_cache_hits_total', 'Cache hits per tier', 'hits');
  total('whale_cache_misses_total', 'Cache misses per tier', 'misses');
  total('whale_cache_errors_total', 'Cache tier errors (outages, timeouts) per tier', 'errors');
  new Gauge({
    name: 'whale_cache_hit_ratio',
    help: 'Hits / (hits + misses) per tier since start',
    labelNames: ['tier'],
    registers,
    collect() {
      this.reset();
      for (const t of tiers()) this.set({ tier: t.tier }, t.hits + t.misses === 0 ? 0 : t.hits / (t.hits + t.misses));
    },
  });
  new Gauge({
    name: 'whale_cache_bytes',
    help: 'Bytes held per tier (L1 memory, L3 disk)',
    labelNames: ['tier'],
    registers,
    collect() {
      this.reset();
      for (const t of tiers()) if (t.tier !== 'l2') this.set({ tier: t.tier }, t.bytes);
    },
  });
}
