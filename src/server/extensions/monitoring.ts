/**
 * MonitoringExtension: what `whale start` runs to watch the node. It records
 * every request (a pipeline observer), collects the scheduler, cache, model,
 * bus and machine figures at scrape time, checks health, samples the series
 * every second for the dashboard, the anomaly detector, the alert rules and
 * the history, and serves GET /metrics, /healthz, the V2 health endpoints and
 * /dashboard on the inference HTTP server.
 *
 * Environment: WHALE_METRICS_DB (postgres://… | a SQLite file | off; default
 * <cache dir>/metrics.db), WHALE_ALERT_WEBHOOK (URL), WHALE_ALERT_RULES (a JSON
 * file with an array of rules, added to the defaults), WHALE_REQUIRE_GPU=1.
 */
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';

import { readEnv, type EnvSource, type WhaleEnv } from '../../common/env.js';
import { WhaleError } from '../../common/errors.js';
import { createLogger, type Logger } from '../../common/logger.js';
import { defaultCacheDir } from '../../core/memory/disk-dir.js';
import {
  busConnectedCheck,
  diskWritableCheck,
  eventLoopCheck,
  gpuVisibleCheck,
  modelsLoadedCheck,
  redisReachableCheck,
} from '../../core/monitoring/health/checks.js';
import { HealthChecker } from '../../core/monitoring/health/health-checker.js';
import { openMetricHistory, type MetricHistory } from '../../core/monitoring/history/metric-history.js';
import { BusMetricsCollector } from '../../core/monitoring/metrics/bus-metrics.js';
import { CONSUMER_LAG_METRIC, registerConsumerLagCollector } from '../../core/monitoring/metrics/kafka-lag.js';
import { performanceMetricsOf, type PerformanceMetrics } from '../../core/monitoring/metrics/performance-metrics.js';
import { registerServingCollectors } from '../../core/monitoring/metrics/serving-collector.js';
import { SystemCollector } from '../../core/monitoring/metrics/system-collector.js';
import type { WhaleMetrics } from '../../core/monitoring/metrics/whale-metrics.js';
import { Monitor, type SeriesScorer } from '../../core/monitoring/monitor.js';
import { AlertManager } from '../../core/monitoring/visualization/alert-manager.js';
import { validateRule, type AlertRule } from '../../core/monitoring/visualization/alert-rules.js';
import { DashboardGenerator } from '../../core/monitoring/visualization/dashboard-generator.js';
import { AnomalyDetectorBank, type AnomalyDetectorOptions } from '../../core/monitoring/health/anomaly-detector.js';
import { monitoringRoutes } from './monitoring-routes.js';
import type { ServerExtension, WhaleServer } from '../whale-server.js';

export interface MonitoringOptions {
  /** The variables to read (default: this process's environment). */
  env?: EnvSource;
  logger?: Logger;
  /** Sampling interval of the dashboard, detector, alerts and history (default 1000 ms). */
  intervalMs?: number;
  /** Replace the default rules (DEFAULT_ALERT_RULES); WHALE_ALERT_RULES adds to them. */
  rules?: AlertRule[];
  webhookUrl?: string;
  /** A history, a WHALE_METRICS_DB-style spec, or false for none (default: WHALE_METRICS_DB). */
  history?: MetricHistory | string | false;
  /** The anomaly detector per series (default: an AnomalyDetectorBank; false: none). */
  scorer?: SeriesScorer | false;
  /** Options of the default AnomalyDetectorBank (whale.config.json's "anomaly" section), e.g. its method. */
  anomaly?: AnomalyDetectorOptions;
  requireGpu?: boolean;
  title?: string;
}

export const DEFAULT_ALERT_RULES: AlertRule[] = [
  { kind: 'health', name: 'health-check-failing', check: '*', forMs: 10_000, severity: 'critical' },
  { kind: 'anomaly', name: 'latency-anomaly', series: 'latency.p95_ms', severity: 'warning', clearAfterMs: 120_000 },
  {
    kind: 'anomaly',
    name: 'error-rate-anomaly',
    series: 'requests.error_rate',
    severity: 'warning',
    clearAfterMs: 120_000,
  },
  {
    kind: 'threshold',
    name: 'queue-backlog',
    series: 'queue.depth',
    op: '>',
    value: 1000,
    clearValue: 100,
    forMs: 30_000,
    severity: 'warning',
  },
];

export class MonitoringExtension implements ServerExtension {
  readonly name = 'monitoring';
  readonly health = new HealthChecker();
  readonly system = new SystemCollector();
  private readonly env: WhaleEnv;
  private readonly logger: Logger;
  private recorders: { metrics: WhaleMetrics; performance: PerformanceMetrics } | undefined;
  private started:
    | {
        monitor: Monitor;
        alerts: AlertManager;
        dashboard: DashboardGenerator;
        bus: BusMetricsCollector;
        history: MetricHistory | undefined;
        cleanup: (() => unknown)[];
      }
    | undefined;

  constructor(private readonly o: MonitoringOptions = {}) {
    this.env = readEnv(o.env);
    this.logger = o.logger ?? createLogger('monitoring');
  }

  /** The registry /metrics exposes: the server's (WhaleServer.metrics, where every extension registers), once started. */
  get metrics(): WhaleMetrics {
    if (!this.recorders) throw new WhaleError('ERR_INVALID_STATE', 'monitoring is not started');
    return this.recorders.metrics;
  }

  /** recordPerformanceMetrics / recordFederationRound into that registry (quality and federation figures). */
  get performance(): PerformanceMetrics {
    if (!this.recorders) throw new WhaleError('ERR_INVALID_STATE', 'monitoring is not started');
    return this.recorders.performance;
  }

  private adopt(metrics: WhaleMetrics): void {
    if (this.recorders?.metrics === metrics) return;
    this.recorders = { metrics, performance: performanceMetricsOf(metrics) };
    this.system.register(metrics);
  }

  /** WHALE_CACHE_DIR, else the per-user default. */
  private cacheDir(): string {
    return defaultCacheDir({ cacheDir: this.env.cacheDir, xdgCacheHome: this.env.xdgCacheHome });
  }

  get monitor(): Monitor {
    return this.live().monitor;
  }

  get alerts(): AlertManager {
    return this.live().alerts;
  }

  get history(): MetricHistory | undefined {
    return this.live().history;
  }

  async start(server: WhaleServer): Promise<void> {
    this.adopt(server.metrics);
    const rules = [...(this.o.rules ?? DEFAULT_ALERT_RULES), ...rulesFromFile(this.env.alertRules)];
    const history =
      this.o.history === false
        ? undefined
        : typeof this.o.history === 'object'
          ? this.o.history
          : await openMetricHistory(this.o.history ?? this.env.metricsDb, { cacheDir: this.cacheDir() });
    const cleanup: (() => unknown)[] = [];
    try {
      registerServingCollectors(this.metrics, {
        scheduler: server.scheduler,
        host: server.host,
        pipeline: server.pipeline,
        cacheStats: () => server.cacheStats(),
      });
      registerConsumerLagCollector(this.metrics, () => server.messaging.bus);
      cleanup.push(() => this.metrics.registry.removeSingleMetric(CONSUMER_LAG_METRIC));
      const loop = eventLoopCheck();
      cleanup.push(() => loop.close());
      this.health
        .addCheck(loop)
        .addCheck(modelsLoadedCheck(server.host, (m) => server.cannotServe(m)))
        .addCheck(busConnectedCheck(() => server.messaging.bus, server.messaging.nodeId));
      this.health.addCheck(
        diskWritableCheck(
          history?.kind === 'sqlite' ? dirname((history as MetricHistory & { path: string }).path) : this.cacheDir(),
        ),
      );
      this.health.addCheck(gpuVisibleCheck(this.o.requireGpu ?? this.env.requireGpu));
      const redisUrl = this.env.redisUrl;
      if (redisUrl) {
        const redis = redisReachableCheck(redisUrl);
        this.health.addCheck(redis);
        cleanup.push(() => redis.close());
      }
      // Assigned once, below: the AlertManager's onChange (built first) reaches the Monitor through it.
      // eslint-disable-next-line prefer-const
      let monitor: Monitor | undefined;
      const webhookUrl = this.o.webhookUrl ?? this.env.alertWebhook;
      const alerts = new AlertManager({
        rules,
        logger: this.logger,
        publish: (type, data) => server.messaging.publishEvent(type, data),
        ...(history ? { store: (a) => history.writeAlert(a) } : {}),
        ...(webhookUrl ? { webhookUrl } : {}),
        onChange: (a) => {
          this.metrics.alertEvents.inc({ rule: a.rule, state: a.state });
          this.metrics.alertsFiring[a.state === 'firing' ? 'inc' : 'dec']({ rule: a.rule, severity: a.severity });
          monitor?.alertChanged(a);
        },
      });
      monitor = new Monitor({
        metrics: this.metrics,
        source: { scheduler: server.scheduler, host: server.host, cacheStats: () => server.cacheStats() },
        logger: this.logger,
        system: this.system,
        health: this.health,
        alerts,
        ...(history ? { history } : {}),
        ...(this.scorer() ?? {}),
        intervalMs: this.o.intervalMs ?? 1000,
      });
      const m = monitor;
      cleanup.push(server.pipeline.addObserver((r) => m.recordRequest(r)));
      const bus = new BusMetricsCollector({
        metrics: this.metrics,
        logger: this.logger,
        group: `whale-monitoring.${server.messaging.nodeId}`,
      });
      await bus.start(server.messaging.bus);
      const dashboard = new DashboardGenerator({
        monitor,
        alerts,
        ...(history ? { history } : {}),
        title: this.o.title ?? `Smart Whale · ${server.messaging.nodeId}`,
      });
      server.http.addHandler(
        monitoringRoutes({ metrics: this.metrics, health: this.health, accepting: () => server.accepting }),
      );
      server.http.addHandler(dashboard.handler);
      monitor.start();
      this.started = { monitor, alerts, dashboard, bus, history, cleanup };
    } catch (err) {
      for (const c of cleanup.reverse())
        await Promise.resolve()
          .then(c)
          .catch(() => undefined);
      await history?.close();
      throw err;
    }
  }

  async stop(): Promise<void> {
    const s = this.started;
    if (!s) return;
    this.started = undefined;
    s.dashboard.close();
    await s.monitor.stop();
    await s.bus.stop().catch(() => undefined);
    await s.alerts.close();
    for (const c of s.cleanup.reverse())
      await Promise.resolve()
        .then(c)
        .catch(() => undefined);
    // A history passed in is the caller's to close.
    if (typeof this.o.history !== 'object') await s.history?.close();
  }

  private scorer(): { scorer: SeriesScorer } | undefined {
    if (this.o.scorer === false) return undefined;
    if (this.o.scorer) return { scorer: this.o.scorer };
    try {
      return { scorer: new AnomalyDetectorBank(this.o.anomaly) };
    } catch (err) {
      this.logger.warn('anomaly detection off: the detector is not available', { error: (err as Error).message });
      return undefined;
    }
  }

  private live(): NonNullable<MonitoringExtension['started']> {
    if (!this.started) throw new WhaleError('ERR_INVALID_STATE', 'monitoring is not started');
    return this.started;
  }
}

function rulesFromFile(path: string | undefined): AlertRule[] {
  if (!path) return [];
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new WhaleError('ERR_CONFIG', `WHALE_ALERT_RULES: cannot read ${path}: ${(err as Error).message}`, {
      field: 'WHALE_ALERT_RULES',
    });
  }
  if (!Array.isArray(raw))
    throw new WhaleError('ERR_CONFIG', 'WHALE_ALERT_RULES: the file must hold a JSON array of rules', {
      field: 'WHALE_ALERT_RULES',
    });
  return raw.map((r, i) => {
    try {
      return validateRule(r, `WHALE_ALERT_RULES[${i}]`);
    } catch (err) {
      throw new WhaleError('ERR_CONFIG', (err as Error).message, {
        field: (err as WhaleError).field ?? 'WHALE_ALERT_RULES',
      });
    }
  });
}
