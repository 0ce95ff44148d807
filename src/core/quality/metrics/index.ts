export { LogSketch } from './log-sketch.js';
export { RollingWindow, type WindowFigures } from './rolling-window.js';
export {
  PerformanceWindows,
  type SeriesKey,
  type PerformanceSink,
  type PerformanceWindowSummary,
  type PerformanceWindowsOptions,
} from './performance-windows.js';
