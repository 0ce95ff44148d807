export { WhaleMetrics, type WhaleMetricsOptions, type RequestOutcome } from './metrics/whale-metrics.js';
export {
  PerformanceMetrics,
  type PerformanceRecord,
  type PerformanceSummary,
  type FederationRound,
  type ResourceUsage,
} from './metrics/performance-metrics.js';
export { registerServingCollectors, type ServingSource } from './metrics/serving-collector.js';
export { SystemCollector, type DeviceUsage, type DiskUsage } from './metrics/system-collector.js';
export {
  BusMetricsCollector,
  busMetricFamily,
  busMetricLabel,
  type BusMetric,
  type BusMetricsOptions,
} from './metrics/bus-metrics.js';
export {
  HealthChecker,
  type HealthCheck,
  type HealthReport,
  type CheckReport,
  type CheckResult,
  type CheckKind,
  type HealthCheckerOptions,
} from './health/health-checker.js';
export {
  modelsLoadedCheck,
  busConnectedCheck,
  redisReachableCheck,
  diskWritableCheck,
  gpuVisibleCheck,
  eventLoopCheck,
} from './health/checks.js';
export {
  openMetricHistory,
  DEFAULT_RETENTION,
  type MetricHistory,
  type MetricPoint,
  type HistoryRow,
  type AlertRecord,
  type Resolution,
  type Retention,
  type MaintenanceResult,
  type HistoryOptions,
} from './history/metric-history.js';
export { SqliteHistory } from './history/sqlite-history.js';
export { PostgresHistory } from './history/postgres-history.js';
export {
  AlertManager,
  RESOURCE_ALERT_EVENT,
  type Alert,
  type AlertManagerOptions,
} from './visualization/alert-manager.js';
export {
  validateRule,
  type AlertRule,
  type ThresholdRule,
  type AnomalyRule,
  type HealthRule,
  type LevelsRule,
  type Severity,
} from './visualization/alert-rules.js';
export { DashboardGenerator, type DashboardOptions } from './visualization/dashboard-generator.js';
export { Monitor, type MonitorOptions, type DashboardSample, type MonitorEvent, type SeriesScorer } from './monitor.js';
