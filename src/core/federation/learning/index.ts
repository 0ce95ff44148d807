export { Aggregator } from './aggregator.js';
export { ServerOptimizer, type ServerOptimizerOptions } from './server-optimizer.js';
export * from './reference.js';
export type * from './types.js';
