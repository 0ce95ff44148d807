export { LogSketch } from './log-sketch.js';
export { RollingWindow, type WindowFigures } from './rolling-window.js';
export {
  QualityPerformanceMetrics,
  type SeriesKey,
  type PerformanceSink,
  type QualityPerformanceSummary,
  type QualityPerformanceMetricsOptions,
} from './performance-metrics.js';
