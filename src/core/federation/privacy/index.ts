export * from './rdp.js';
export * from './rdp-accountant.js';
export * from './clipping.js';
export * from './gaussian.js';
export * from './dp-fedavg.js';
export * from './secagg/index.js';
