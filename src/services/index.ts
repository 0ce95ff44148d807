export * from './messaging-service.js';
export * from './federation-service.js';
export * from './user-service.js';
export * from './data-request-service.js';
export * from './state-store.js';
export {
  createPrivacyGuard,
  privacyGuard,
  normalizeKey,
  type PrivacyGuard,
  type PrivacyGuardOptions,
  type CustomDetector,
  type DetectorName,
} from './privacy/index.js';
export { MIN_KEY_BITS } from './federation-key.js';
export type { ReplayWindowOptions } from '../core/federation/security/replay-guard.js';
export {
  type DataAnswer,
  type DataFetchOptions,
  type DataReply,
  type DataSource,
  DataSourceResponder,
  type DataSourceResponderOptions,
  type DataSourcesConfig,
  dataSourcesFromConfig,
  FilesDataSource,
  type FilesDataSourceOptions,
  LocalDataNode,
  type LocalDataNodeOptions,
  PostgresDataSource,
  type PostgresDataSourceOptions,
} from './data-sources/index.js';
