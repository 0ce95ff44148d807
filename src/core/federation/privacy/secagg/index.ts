export * from './ring.js';
export { split as shamirSplit, combine as shamirCombine, type Share as ShamirShare } from './shamir.js';
export * from './messages.js';
export * from './client.js';
export * from './server.js';
export * from './in-process.js';
