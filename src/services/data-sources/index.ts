export { FilesDataSource, type FilesDataSourceOptions } from './files-source.js';
export { PostgresDataSource, type PostgresDataSourceOptions } from './postgres-source.js';
export { DataSourceResponder, type DataSourceResponderOptions } from './responder.js';
export { LocalDataNode, type LocalDataNodeOptions } from './local-node.js';
export { dataSourcesFromConfig, type DataSourcesConfig } from './config.js';
export type { DataAnswer, DataFetchOptions, DataReply, DataSource } from './types.js';
