/** MetricHistory in an embedded SQLite file (better-sqlite3, WAL mode). */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

import Database from 'better-sqlite3';

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

const SCHEMA = `
CREATE TABLE IF NOT EXISTS whale_metrics_raw (series TEXT NOT NULL, ts INTEGER NOT NULL, value REAL NOT NULL);
CREATE INDEX IF NOT EXISTS whale_metrics_raw_series_ts ON whale_metrics_raw (series, ts);
CREATE INDEX IF NOT EXISTS whale_metrics_raw_ts ON whale_metrics_raw (ts);
CREATE TABLE IF NOT EXISTS whale_metrics_1m (series TEXT NOT NULL, ts INTEGER NOT NULL, min REAL, max REAL, sum REAL, count INTEGER, PRIMARY KEY (series, ts));
CREATE TABLE IF NOT EXISTS whale_metrics_1h (series TEXT NOT NULL, ts INTEGER NOT NULL, min REAL, max REAL, sum REAL, count INTEGER, PRIMARY KEY (series, ts));
CREATE TABLE IF NOT EXISTS whale_alerts (id TEXT NOT NULL, rule TEXT NOT NULL, fingerprint TEXT NOT NULL, state TEXT NOT NULL,
  severity TEXT NOT NULL, message TEXT NOT NULL, ts INTEGER NOT NULL, labels TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS whale_alerts_ts ON whale_alerts (ts);
CREATE TABLE IF NOT EXISTS whale_history_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
`;

export class SqliteHistory implements MetricHistory {
  readonly kind = 'sqlite' as const;
  readonly retention: Retention;
  private db: Database.Database | undefined;

  constructor(
    readonly path: string,
    o: HistoryOptions = {},
  ) {
    this.retention = checkRetention(o.retention);
  }

  async init(): Promise<void> {
    if (this.db) return;
    try {
      if (this.path !== ':memory:') mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
      const db = new Database(this.path);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.exec(SCHEMA);
      this.db = db;
    } catch (err) {
      throw new WhaleError(
        'ERR_CONFIG',
        `WHALE_METRICS_DB: cannot open the SQLite file ${this.path}: ${(err as Error).message}`,
        { field: 'WHALE_METRICS_DB', cause: err },
      );
    }
  }

  async writePoints(points: readonly MetricPoint[]): Promise<void> {
    checkPoints(points);
    const db = this.open();
    const insert = db.prepare('INSERT INTO whale_metrics_raw (series, ts, value) VALUES (?, ?, ?)');
    db.transaction(() => {
      for (const p of points) insert.run(p.series, p.ts, p.value);
    })();
  }

  async writeAlert(a: AlertRecord): Promise<void> {
    this.open()
      .prepare(
        'INSERT INTO whale_alerts (id, rule, fingerprint, state, severity, message, ts, labels) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      )
      .run(a.id, a.rule, a.fingerprint, a.state, a.severity, a.message, a.ts, JSON.stringify(a.labels));
  }

  async query(
    series: string,
    fromMs: number,
    toMs: number,
    resolution: Resolution | 'auto' = 'auto',
  ): Promise<HistoryRow[]> {
    checkRange(fromMs, toMs);
    const r = pickResolution(resolution, fromMs, Date.now(), this.retention);
    const db = this.open();
    if (r === 'raw') {
      const rows = db
        .prepare('SELECT ts, value FROM whale_metrics_raw WHERE series = ? AND ts >= ? AND ts < ? ORDER BY ts')
        .all(series, fromMs, toMs) as { ts: number; value: number }[];
      return rows.map((x) => ({ ts: x.ts, min: x.value, max: x.value, avg: x.value, count: 1 }));
    }
    const rows = db
      .prepare(
        `SELECT ts, min, max, sum, count FROM whale_metrics_${r} WHERE series = ? AND ts >= ? AND ts < ? ORDER BY ts`,
      )
      .all(series, fromMs, toMs) as {
      ts: number;
      min: number;
      max: number;
      sum: number;
      count: number;
    }[];
    return rows.map((x) => ({ ts: x.ts, min: x.min, max: x.max, avg: x.sum / x.count, count: x.count }));
  }

  async alerts(fromMs = 0, limit = 100): Promise<AlertRecord[]> {
    const rows = this.open()
      .prepare('SELECT * FROM whale_alerts WHERE ts >= ? ORDER BY ts DESC, rowid DESC LIMIT ?')
      .all(fromMs, limit) as (Omit<AlertRecord, 'labels'> & { labels: string })[];
    return rows.map((r) => ({ ...r, labels: JSON.parse(r.labels) as Record<string, string> }));
  }

  async maintain(now = Date.now()): Promise<MaintenanceResult> {
    const db = this.open();
    const res = { minuteBuckets: 0, hourBuckets: 0, deleted: 0 };
    db.transaction(() => {
      res.minuteBuckets = this.rollUp(
        db,
        'whale_metrics_raw',
        'whale_metrics_1m',
        BUCKET_MS['1m'],
        now,
        'MIN(value), MAX(value), SUM(value), COUNT(*)',
      );
      res.hourBuckets = this.rollUp(
        db,
        'whale_metrics_1m',
        'whale_metrics_1h',
        BUCKET_MS['1h'],
        now,
        'MIN(min), MAX(max), SUM(sum), SUM(count)',
      );
      const del = (table: string, keepMs: number) =>
        db.prepare(`DELETE FROM ${table} WHERE ts < ?`).run(now - keepMs).changes;
      res.deleted =
        del('whale_metrics_raw', this.retention.rawMs) +
        del('whale_metrics_1m', this.retention.minuteMs) +
        del('whale_metrics_1h', this.retention.hourMs) +
        del('whale_alerts', this.retention.alertsMs);
    })();
    return res;
  }

  async close(): Promise<void> {
    this.db?.close();
    this.db = undefined;
  }

  /** Aggregates [watermark, the current bucket's start) of `from` into `to`, merging with buckets already there. */
  private rollUp(
    db: Database.Database,
    from: string,
    to: string,
    bucket: number,
    now: number,
    aggregates: string,
  ): number {
    const key = `${to}.watermark`;
    const mark =
      (db.prepare('SELECT value FROM whale_history_meta WHERE key = ?').get(key) as { value: number } | undefined)
        ?.value ?? 0;
    const cutoff = now - (now % bucket);
    if (cutoff <= mark) return 0;
    const n = db
      .prepare(
        `INSERT INTO ${to} (series, ts, min, max, sum, count)
         SELECT series, ts - (ts % ${bucket}) AS b, ${aggregates} FROM ${from} WHERE ts >= ? AND ts < ? GROUP BY series, b
         ON CONFLICT (series, ts) DO UPDATE SET min = MIN(min, excluded.min), max = MAX(max, excluded.max), sum = sum + excluded.sum, count = count + excluded.count`,
      )
      .run(mark, cutoff).changes;
    db.prepare(
      'INSERT INTO whale_history_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    ).run(key, cutoff);
    return n;
  }

  private open(): Database.Database {
    if (!this.db)
      throw new WhaleError('ERR_INVALID_STATE', 'metrics history: not open (call init() first, or it was closed)');
    return this.db;
  }
}
