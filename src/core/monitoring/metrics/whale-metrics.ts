/**
 * WhaleMetrics: the one prom-client registry every part records into
 * (serving, scheduler, cache, bus, federation rounds, aggregation kernels),
 * with Prometheus names (`whale_…_seconds`, `_bytes`, `_total`) and the
 * process metrics prom-client collects by default under their standard names
 * (process_cpu_seconds_total, process_resident_memory_bytes, nodejs_eventloop_lag_seconds,
 * nodejs_heap_size_used_bytes, …: what the usual Node.js dashboards query). Metrics published
 * on the bus get one family each (bus-metrics.ts). Figures that other parts
 * already count (scheduler, cache, model states) are read at scrape time by
 * collectors (see serving-collector.ts); only the request path records here
 * directly, through bound children so an observation costs no label hashing.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

import { WhaleError } from '../../../common/errors.js';

export type RequestOutcome = 'ok' | 'error';

export interface WhaleMetricsOptions {
  /** Default: a registry of its own (tests and several servers in one process stay apart). */
  registry?: Registry;
  /** Process metrics (CPU, memory, event loop lag, GC, handles) under prom-client's standard names, no prefix (default true). */
  processMetrics?: boolean;
  /** Latency histogram buckets in seconds. */
  latencyBuckets?: number[];
}

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

interface BoundRequest {
  ok: Counter.Internal;
  error: Counter.Internal;
  latency: Histogram.Internal<string>;
}

export class WhaleMetrics {
  readonly registry: Registry;
  readonly requests: Counter<'model' | 'version' | 'level' | 'outcome'>;
  readonly requestDuration: Histogram<'model' | 'version' | 'level'>;
  readonly cachedAnswers: Counter<'model' | 'version'>;
  readonly busMessages: Counter<'topic'>;
  readonly federationRounds: Counter<'model'>;
  readonly federationAccuracy: Gauge<'model'>;
  readonly federationClients: Gauge<'model'>;
  readonly federationRoundDuration: Histogram<'model'>;
  readonly aggregationDuration: Histogram<'strategy' | 'device'>;
  readonly aggregationBytes: Counter<'strategy' | 'device'>;
  readonly modelAccuracy: Gauge<'model'>;
  readonly modelLatency: Histogram<'model'>;
  readonly modelResourceUsage: Gauge<'model' | 'resource'>;
  readonly alertsFiring: Gauge<'rule' | 'severity'>;
  readonly alertEvents: Counter<'rule' | 'state'>;
  readonly anomalyScore: Gauge<'series'>;
  private readonly bound = new Map<string, BoundRequest>();

  constructor(o: WhaleMetricsOptions = {}) {
    const registers = [(this.registry = o.registry ?? new Registry())];
    const buckets = o.latencyBuckets ?? LATENCY_BUCKETS;
    this.requests = new Counter({
      name: 'whale_requests_total',
      help: 'Inference requests answered, by model, version, level and outcome',
      labelNames: ['model', 'version', 'level', 'outcome'],
      registers,
    });
    this.requestDuration = new Histogram({
      name: 'whale_request_duration_seconds',
      help: 'Inference request latency (pipeline entry to answer)',
      labelNames: ['model', 'version', 'level'],
      buckets,
      registers,
    });
    this.cachedAnswers = new Counter({
      name: 'whale_request_cache_hits_total',
      help: 'Quick-level requests answered from the response cache',
      labelNames: ['model', 'version'],
      registers,
    });
    this.busMessages = new Counter({
      name: 'whale_bus_metric_messages_total',
      help: 'Metric messages received on whale.metrics',
      labelNames: ['topic'],
      registers,
    });
    this.federationRounds = new Counter({
      name: 'whale_federation_rounds_total',
      help: 'Federated learning rounds completed',
      labelNames: ['model'],
      registers,
    });
    this.federationAccuracy = new Gauge({
      name: 'whale_federation_accuracy_ratio',
      help: 'Accuracy of the global model after the last round',
      labelNames: ['model'],
      registers,
    });
    this.federationClients = new Gauge({
      name: 'whale_federation_round_clients',
      help: 'Clients aggregated in the last round',
      labelNames: ['model'],
      registers,
    });
    this.federationRoundDuration = new Histogram({
      name: 'whale_federation_round_duration_seconds',
      help: 'Duration of federated rounds',
      labelNames: ['model'],
      buckets: [0.1, 0.5, 1, 5, 10, 30, 60, 300, 900],
      registers,
    });
    this.aggregationDuration = new Histogram({
      name: 'whale_aggregation_duration_seconds',
      help: 'Aggregation kernel time',
      labelNames: ['strategy', 'device'],
      buckets,
      registers,
    });
    this.aggregationBytes = new Counter({
      name: 'whale_aggregation_input_bytes_total',
      help: 'Bytes of client updates aggregated',
      labelNames: ['strategy', 'device'],
      registers,
    });
    this.modelAccuracy = new Gauge({
      name: 'whale_model_accuracy_ratio',
      help: 'Accuracy reported with recordPerformanceMetrics',
      labelNames: ['model'],
      registers,
    });
    this.modelLatency = new Histogram({
      name: 'whale_model_latency_seconds',
      help: 'Latency reported with recordPerformanceMetrics',
      labelNames: ['model'],
      buckets,
      registers,
    });
    this.modelResourceUsage = new Gauge({
      name: 'whale_model_resource_usage',
      help: 'Resource usage reported with recordPerformanceMetrics (cpu/gpu as ratios, memory in bytes)',
      labelNames: ['model', 'resource'],
      registers,
    });
    this.alertsFiring = new Gauge({
      name: 'whale_alerts_firing',
      help: 'Alerts firing now, by rule and severity',
      labelNames: ['rule', 'severity'],
      registers,
    });
    this.alertEvents = new Counter({
      name: 'whale_alert_events_total',
      help: 'Alert state changes (firing, resolved)',
      labelNames: ['rule', 'state'],
      registers,
    });
    this.anomalyScore = new Gauge({
      name: 'whale_anomaly_score',
      help: 'Last anomaly score of each watched series, in [0, 1]',
      labelNames: ['series'],
      registers,
    });
    if (o.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** The request path: one counter increment and one histogram observation on cached children. */
  observeRequest(model: string, version: string, level: string, seconds: number, outcome: RequestOutcome = 'ok'): void {
    const key = `${model}\u0000${version}\u0000${level}`;
    let b = this.bound.get(key);
    if (b === undefined) {
      b = {
        ok: this.requests.labels(model, version, level, 'ok'),
        error: this.requests.labels(model, version, level, 'error'),
        latency: this.requestDuration.labels(model, version, level),
      };
      this.bound.set(key, b);
    }
    b[outcome].inc();
    if (outcome === 'ok' && seconds >= 0 && Number.isFinite(seconds)) b.latency.observe(seconds);
  }

  /** A finished aggregation (the federation's kernels). */
  recordAggregation(strategy: string, device: string, seconds: number, inputBytes: number): void {
    checkNonNegative(seconds, 'seconds');
    checkNonNegative(inputBytes, 'inputBytes');
    this.aggregationDuration.observe({ strategy, device }, seconds);
    this.aggregationBytes.inc({ strategy, device }, inputBytes);
  }

  /** Prometheus text exposition of everything recorded and collected. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

export function checkNonNegative(v: unknown, field: string): asserts v is number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw new WhaleError(
      'ERR_INVALID_ARG',
      `${field}: must be a finite number >= 0, got ${typeof v === 'number' ? v : typeof v}`,
      { field },
    );
  }
}
