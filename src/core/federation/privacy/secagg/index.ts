export * from './ring.js';
export * from './shamir.js';
export * from './messages.js';
export * from './client.js';
export * from './server.js';
export * from './in-process.js';
