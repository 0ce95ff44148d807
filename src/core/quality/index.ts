export * from './evaluation/index.js';
export * from './metrics/index.js';
export * from './optimization/index.js';
export * from './monitoring/index.js';
