/**
 * The data sources of a learner's node from JSON (a learner's or whale.config.json's `dataSources`):
 *   { "files": { "dir": "data/learner-1" },
 *     "postgres": { "url": "postgres://…", "queries": { "digits": "SELECT pixels, label FROM digits WHERE shard = $1" } } }
 */
import { isPlainObject } from '../../common/validate.js';
import { WhaleError } from '../../common/errors.js';
import { FilesDataSource } from './files-source.js';
import { PostgresDataSource } from './postgres-source.js';
import type { DataSource } from './types.js';

export interface DataSourcesConfig {
  files?: { dir: string; maxBytes?: number };
  postgres?: { url: string; queries: Record<string, string>; statementTimeoutMs?: number };
}

/** Builds the configured sources; `at` names the section in messages (relative `dir` resolved by the caller). */
export function dataSourcesFromConfig(raw: unknown, at = 'dataSources'): DataSource[] {
  if (!isPlainObject(raw)) throw new WhaleError('ERR_CONFIG', `${at}: must be an object`, { field: at });
  const out: DataSource[] = [];
  for (const [kind, v] of Object.entries(raw)) {
    const field = `${at}.${kind}`;
    if (!isPlainObject(v)) throw new WhaleError('ERR_CONFIG', `${field}: must be an object`, { field });
    try {
      if (kind === 'files') out.push(new FilesDataSource(v as unknown as DataSourcesConfig['files'] & object));
      else if (kind === 'postgres')
        out.push(new PostgresDataSource(v as unknown as DataSourcesConfig['postgres'] & object));
      else throw new WhaleError('ERR_CONFIG', `${field}: unknown source type (files, postgres)`, { field });
    } catch (err) {
      if (err instanceof WhaleError && err.code === 'ERR_INVALID_OPTION')
        throw new WhaleError('ERR_CONFIG', `${field}.${err.message.replace(/^options\./, '')}`, {
          field: `${field}.${(err.field ?? '').replace(/^options\./, '')}`,
        });
      throw err;
    }
  }
  return out;
}
