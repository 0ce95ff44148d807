/**
 * MetricHistory in PostgreSQL (pg). Times are epoch-millisecond BIGINTs, as in
 * SQLite; when TimescaleDB is available the raw table becomes a hypertable
 * (1-day integer chunks), otherwise it is a plain table indexed on (series, ts).
 */
import pg from 'pg';

import { WhaleError } from '../../../common/errors.js';
import {
  BUCKET_MS,
  checkPoints,
  checkRange,
  checkRetention,
  pickResolution,
  type AlertRecord,
  type HistoryOptions,
  type HistoryRow,
  type MaintenanceResult,
  type MetricHistory,
  type MetricPoint,
  type Resolution,
  type Retention,
} from './metric-history.js';

const IDENT = /^[a-z_][a-z0-9_]{0,62}$/;

export class PostgresHistory implements MetricHistory {
  readonly kind = 'postgres' as const;
  readonly retention: Retention;
  /** Whether the raw table is a TimescaleDB hypertable (known after init()). */
  hypertable = false;
  private readonly pool: pg.Pool;
  private readonly s: string;
  private ready = false;

  constructor(url: string, o: HistoryOptions = {}) {
    this.retention = checkRetention(o.retention);
    const schema = o.schema ?? 'public';
    if (!IDENT.test(schema))
      throw new WhaleError('ERR_INVALID_OPTION', 'options.schema: must be a lower-case SQL identifier', {
        field: 'options.schema',
      });
    this.s = schema;
    this.pool = new pg.Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 5_000 });
    this.pool.on('error', () => undefined); // an idle client's connection dropped: the next query reconnects
  }

  async init(): Promise<void> {
    if (this.ready) return;
    const s = this.s;
    try {
      await this.pool.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
      await this.pool.query(`
        CREATE TABLE IF NOT EXISTS ${s}.whale_metrics_raw (series TEXT NOT NULL, ts BIGINT NOT NULL, value DOUBLE PRECISION NOT NULL);
        CREATE INDEX IF NOT EXISTS whale_metrics_raw_series_ts ON ${s}.whale_metrics_raw (series, ts);
        CREATE TABLE IF NOT EXISTS ${s}.whale_metrics_1m (series TEXT NOT NULL, ts BIGINT NOT NULL, min DOUBLE PRECISION, max DOUBLE PRECISION, sum DOUBLE PRECISION, count BIGINT, PRIMARY KEY (series, ts));
        CREATE TABLE IF NOT EXISTS ${s}.whale_metrics_1h (series TEXT NOT NULL, ts BIGINT NOT NULL, min DOUBLE PRECISION, max DOUBLE PRECISION, sum DOUBLE PRECISION, count BIGINT, PRIMARY KEY (series, ts));
        CREATE TABLE IF NOT EXISTS ${s}.whale_alerts (id TEXT NOT NULL, rule TEXT NOT NULL, fingerprint TEXT NOT NULL, state TEXT NOT NULL,
          severity TEXT NOT NULL, message TEXT NOT NULL, ts BIGINT NOT NULL, labels JSONB NOT NULL, seq BIGSERIAL);
        CREATE INDEX IF NOT EXISTS whale_alerts_ts ON ${s}.whale_alerts (ts);
        CREATE TABLE IF NOT EXISTS ${s}.whale_history_meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL);`);
      this.hypertable = await this.tryHypertable();
      this.ready = true;
    } catch (err) {
      throw new WhaleError('ERR_CONFIG', `WHALE_METRICS_DB: PostgreSQL: ${(err as Error).message}`, {
        field: 'WHALE_METRICS_DB',
        cause: err,
        retriable: true,
      });
    }
  }

  async writePoints(points: readonly MetricPoint[]): Promise<void> {
    checkPoints(points);
    this.assertReady();
    if (points.length === 0) return;
    await this.pool.query(
      `INSERT INTO ${this.s}.whale_metrics_raw (series, ts, value) SELECT * FROM unnest($1::text[], $2::bigint[], $3::float8[])`,
      [points.map((p) => p.series), points.map((p) => p.ts), points.map((p) => p.value)],
    );
  }

  async writeAlert(a: AlertRecord): Promise<void> {
    this.assertReady();
    await this.pool.query(
      `INSERT INTO ${this.s}.whale_alerts (id, rule, fingerprint, state, severity, message, ts, labels) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [a.id, a.rule, a.fingerprint, a.state, a.severity, a.message, a.ts, JSON.stringify(a.labels)],
    );
  }

  async query(
    series: string,
    fromMs: number,
    toMs: number,
    resolution: Resolution | 'auto' = 'auto',
  ): Promise<HistoryRow[]> {
    checkRange(fromMs, toMs);
    this.assertReady();
    const r = pickResolution(resolution, fromMs, Date.now(), this.retention);
    if (r === 'raw') {
      const { rows } = await this.pool.query<{ ts: string; value: number }>(
        `SELECT ts, value FROM ${this.s}.whale_metrics_raw WHERE series = $1 AND ts >= $2 AND ts < $3 ORDER BY ts`,
        [series, fromMs, toMs],
      );
      return rows.map((x) => ({ ts: Number(x.ts), min: x.value, max: x.value, avg: x.value, count: 1 }));
    }
    const { rows } = await this.pool.query<{ ts: string; min: number; max: number; sum: number; count: string }>(
      `SELECT ts, min, max, sum, count FROM ${this.s}.whale_metrics_${r} WHERE series = $1 AND ts >= $2 AND ts < $3 ORDER BY ts`,
      [series, fromMs, toMs],
    );
    return rows.map((x) => ({
      ts: Number(x.ts),
      min: x.min,
      max: x.max,
      avg: x.sum / Number(x.count),
      count: Number(x.count),
    }));
  }

  async alerts(fromMs = 0, limit = 100): Promise<AlertRecord[]> {
    this.assertReady();
    const { rows } = await this.pool.query<Omit<AlertRecord, 'ts'> & { ts: string }>(
      `SELECT id, rule, fingerprint, state, severity, message, ts, labels FROM ${this.s}.whale_alerts WHERE ts >= $1 ORDER BY ts DESC, seq DESC LIMIT $2`,
      [fromMs, limit],
    );
    return rows.map((r) => ({ ...r, ts: Number(r.ts) }));
  }

  async maintain(now = Date.now()): Promise<MaintenanceResult> {
    this.assertReady();
    const s = this.s;
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      // One maintainer at a time per schema (several nodes may share the database).
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`${s}.whale_history`]);
      const minuteBuckets = await rollUp(
        client,
        s,
        'whale_metrics_raw',
        'whale_metrics_1m',
        BUCKET_MS['1m'],
        now,
        'MIN(value), MAX(value), SUM(value), COUNT(*)',
      );
      const hourBuckets = await rollUp(
        client,
        s,
        'whale_metrics_1m',
        'whale_metrics_1h',
        BUCKET_MS['1h'],
        now,
        'MIN(min), MAX(max), SUM(sum), SUM(count)',
      );
      let deleted = 0;
      for (const [table, keep] of [
        ['whale_metrics_raw', this.retention.rawMs],
        ['whale_metrics_1m', this.retention.minuteMs],
        ['whale_metrics_1h', this.retention.hourMs],
        ['whale_alerts', this.retention.alertsMs],
      ] as const) {
        deleted += (await client.query(`DELETE FROM ${s}.${table} WHERE ts < $1`, [now - keep])).rowCount ?? 0;
      }
      await client.query('COMMIT');
      return { minuteBuckets, hourBuckets, deleted };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    this.ready = false;
    await this.pool.end().catch(() => undefined);
  }

  private async tryHypertable(): Promise<boolean> {
    const { rows } = await this.pool.query<{ n: string }>(
      "SELECT count(*) AS n FROM pg_available_extensions WHERE name = 'timescaledb'",
    );
    if (Number(rows[0]?.n ?? 0) === 0) return false;
    try {
      await this.pool.query('CREATE EXTENSION IF NOT EXISTS timescaledb');
      await this.pool.query(
        `SELECT create_hypertable('${this.s}.whale_metrics_raw', 'ts', chunk_time_interval => 86400000, if_not_exists => TRUE, migrate_data => TRUE)`,
      );
      return true;
    } catch {
      return false; // listed but not loadable (shared_preload_libraries): the plain table serves
    }
  }

  private assertReady(): void {
    if (!this.ready)
      throw new WhaleError('ERR_INVALID_STATE', 'metrics history: not open (call init() first, or it was closed)');
  }
}

async function rollUp(
  c: pg.PoolClient,
  s: string,
  from: string,
  to: string,
  bucket: number,
  now: number,
  aggregates: string,
): Promise<number> {
  const key = `${to}.watermark`;
  const mark = Number(
    (await c.query<{ value: string }>(`SELECT value FROM ${s}.whale_history_meta WHERE key = $1`, [key])).rows[0]
      ?.value ?? 0,
  );
  const cutoff = now - (now % bucket);
  if (cutoff <= mark) return 0;
  const res = await c.query(
    `INSERT INTO ${s}.${to} AS dst (series, ts, min, max, sum, count)
     SELECT series, ts - (ts % ${bucket}) AS b, ${aggregates} FROM ${s}.${from} WHERE ts >= $1 AND ts < $2 GROUP BY series, b
     ON CONFLICT (series, ts) DO UPDATE SET min = LEAST(dst.min, excluded.min), max = GREATEST(dst.max, excluded.max),
       sum = dst.sum + excluded.sum, count = dst.count + excluded.count`,
    [mark, cutoff],
  );
  await c.query(
    `INSERT INTO ${s}.whale_history_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
    [key, cutoff],
  );
  return res.rowCount ?? 0;
}
