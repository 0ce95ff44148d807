/**
 * A PostgreSQL query as a data source (through `pg`). Requests name one of the configured queries and give
 * its parameters — `{ query: 'digits', params: [3] }` — never SQL of their own. The answer is JSON
 * `{ columns, rows }` (rows as arrays). sizeOf() asks the planner (EXPLAIN: rows × width).
 */
import pg from 'pg';

import { WhaleError } from '../../common/errors.js';
import { isPlainObject } from '../../common/validate.js';
import type { DataFetchOptions, DataReply, DataSource } from './types.js';

export interface PostgresDataSourceOptions {
  /** postgres://user@host:port/db */
  url: string;
  /** Named SQL statements with $1, $2 … parameters. */
  queries: Record<string, string>;
  /** Longest a statement may run (default 30 s; the request's deadline cuts it shorter). */
  statementTimeoutMs?: number;
  maxConnections?: number;
}

type Param = string | number | boolean | null;

export class PostgresDataSource implements DataSource {
  readonly type = 'postgres';
  private readonly pool: pg.Pool;
  private readonly queries: Record<string, string>;

  constructor(o: PostgresDataSourceOptions) {
    if (typeof o?.url !== 'string' || !/^postgres(ql)?:\/\//.test(o.url))
      throw new WhaleError('ERR_INVALID_OPTION', 'options.url: a postgres:// URL is required', {
        field: 'options.url',
      });
    if (!isPlainObject(o.queries) || Object.keys(o.queries).length === 0)
      throw new WhaleError('ERR_INVALID_OPTION', 'options.queries: at least one named query is required', {
        field: 'options.queries',
      });
    for (const [name, sql] of Object.entries(o.queries))
      if (typeof sql !== 'string' || sql.trim() === '')
        throw new WhaleError('ERR_INVALID_OPTION', `options.queries.${name}: must be an SQL statement`, {
          field: `options.queries.${name}`,
        });
    this.queries = { ...o.queries };
    this.pool = new pg.Pool({
      connectionString: o.url,
      max: o.maxConnections ?? 4,
      statement_timeout: o.statementTimeoutMs ?? 30_000,
      connectionTimeoutMillis: 5_000,
    });
    this.pool.on('error', () => undefined); // an idle client's error: the next query reconnects
  }

  async sizeOf(query: unknown): Promise<number | undefined> {
    const { sql, params } = this.statement(query);
    const r = await this.pool.query<{ 'QUERY PLAN': Array<{ Plan: { 'Plan Rows': number; 'Plan Width': number } }> }>(
      `EXPLAIN (FORMAT JSON) ${sql}`,
      params,
    );
    const plan = r.rows[0]?.['QUERY PLAN'][0]?.Plan;
    return plan ? plan['Plan Rows'] * plan['Plan Width'] : undefined;
  }

  async fetch(query: unknown, o: DataFetchOptions): Promise<DataReply> {
    const { sql, params } = this.statement(query);
    const client = await this.pool.connect();
    let aborted = false;
    const onAbort = () => {
      aborted = true;
      client.release(new Error('data request aborted')); // closes the connection: the server ends the statement
    };
    o.signal.addEventListener('abort', onAbort, { once: true });
    try {
      const r = await client.query({ text: sql, values: params, rowMode: 'array' });
      const body = { columns: r.fields.map((f) => f.name), rows: r.rows as unknown[][] };
      return {
        bytes: new TextEncoder().encode(JSON.stringify(body)),
        contentType: 'application/json',
        rows: r.rowCount ?? r.rows.length,
      };
    } catch (err) {
      if (aborted) throw new WhaleError('ERR_CANCELLED', 'the data request was cancelled or timed out', { cause: err });
      throw new WhaleError('ERR_INVALID_ARG', `query: PostgreSQL refused it: ${(err as Error).message}`, {
        field: 'query',
        cause: err,
      });
    } finally {
      o.signal.removeEventListener('abort', onAbort);
      if (!aborted) client.release();
    }
  }

  close(): Promise<void> {
    return this.pool.end();
  }

  private statement(query: unknown): { sql: string; params: Param[] } {
    const name = isPlainObject(query) ? query.query : undefined;
    if (typeof name !== 'string' || !Object.hasOwn(this.queries, name))
      throw new WhaleError(
        'ERR_INVALID_ARG',
        `query.query: one of this source's named queries (${Object.keys(this.queries).join(', ')})`,
        { field: 'query.query' },
      );
    const params = (query as { params?: unknown }).params ?? [];
    if (
      !Array.isArray(params) ||
      !params.every((p) => p === null || ['string', 'number', 'boolean'].includes(typeof p))
    )
      throw new WhaleError('ERR_INVALID_ARG', 'query.params: an array of strings, numbers, booleans or nulls', {
        field: 'query.params',
      });
    return { sql: this.queries[name]!, params: params as Param[] };
  }
}
