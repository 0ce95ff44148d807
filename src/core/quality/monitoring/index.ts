export { QualityMonitor, type QualityMonitorOptions, type QualityPoint } from './quality-monitor.js';
export {
  distribution,
  ServedQuality,
  type LabelOutcome,
  type ServedAnswer,
  type ServedQualityOptions,
  type ServedScore,
  type ServedSeries,
} from './served-quality.js';
