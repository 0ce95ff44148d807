export { QualityMonitor, type QualityMonitorOptions, type QualityPoint } from './quality-monitor.js';
