export * from './identity.js';
export * from './access-control.js';
export * from './audit.js';
export * from './replay-guard.js';
export * from './signed-envelope.js';
export * from './secure-bus.js';
export * from './integrity-checker.js';
