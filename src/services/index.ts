export * from './messaging-service.js';
export * from './federation-service.js';
export * from './user-service.js';
export * from './data-request-service.js';
export * from './state-store.js';
export { privacyGuard } from './privacy.js';
