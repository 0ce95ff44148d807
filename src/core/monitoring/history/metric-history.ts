/**
 * Metric and alert history: raw points, rolled up into 1-minute and 1-hour
 * buckets (min, max, sum, count: merging two buckets stays exact), each
 * resolution kept for its own retention. SQLite (better-sqlite3) by default,
 * PostgreSQL when WHALE_METRICS_DB=postgres://… (a TimescaleDB hypertable when
 * the extension is available, a plain table with a (series, ts) index otherwise).
 */
import { join } from 'node:path';

import { WhaleError } from '../../../common/errors.js';
import { defaultCacheDir } from '../../memory/disk-dir.js';

export interface MetricPoint {
  series: string;
  /** Epoch milliseconds. */
  ts: number;
  value: number;
}

export type Resolution = 'raw' | '1m' | '1h';

export interface HistoryRow {
  ts: number;
  min: number;
  max: number;
  avg: number;
  count: number;
}

export interface AlertRecord {
  id: string;
  rule: string;
  fingerprint: string;
  state: 'firing' | 'resolved';
  severity: string;
  message: string;
  ts: number;
  labels: Record<string, string>;
}

export interface Retention {
  rawMs: number;
  minuteMs: number;
  hourMs: number;
  alertsMs: number;
}

export const DEFAULT_RETENTION: Retention = {
  rawMs: 24 * 3600_000,
  minuteMs: 7 * 24 * 3600_000,
  hourMs: 90 * 24 * 3600_000,
  alertsMs: 90 * 24 * 3600_000,
};

export const BUCKET_MS: Record<Exclude<Resolution, 'raw'>, number> = { '1m': 60_000, '1h': 3600_000 };

export interface MaintenanceResult {
  /** Buckets written or merged. */
  minuteBuckets: number;
  hourBuckets: number;
  /** Rows removed by retention, all tables together. */
  deleted: number;
}

export interface MetricHistory {
  readonly kind: 'sqlite' | 'postgres';
  readonly retention: Retention;
  init(): Promise<void>;
  writePoints(points: readonly MetricPoint[]): Promise<void>;
  writeAlert(alert: AlertRecord): Promise<void>;
  /** Rows of one series in [fromMs, toMs), oldest first; 'auto' picks the finest resolution still kept at fromMs. */
  query(series: string, fromMs: number, toMs: number, resolution?: Resolution | 'auto'): Promise<HistoryRow[]>;
  /** Alert events since fromMs, newest first. */
  alerts(fromMs?: number, limit?: number): Promise<AlertRecord[]>;
  /** Rolls complete raw minutes into 1m and complete 1m hours into 1h, then applies retention. */
  maintain(nowMs?: number): Promise<MaintenanceResult>;
  close(): Promise<void>;
}

export function checkPoints(points: readonly MetricPoint[]): void {
  if (!Array.isArray(points)) throw new WhaleError('ERR_INVALID_ARG', 'points: must be an array', { field: 'points' });
  points.forEach((p, i) => {
    if (typeof p?.series !== 'string' || p.series.length === 0 || p.series.length > 200) {
      throw new WhaleError('ERR_INVALID_ARG', `points[${i}].series: must be a string of 1-200 characters`, {
        field: `points[${i}].series`,
      });
    }
    if (!Number.isSafeInteger(p.ts) || p.ts < 0)
      throw new WhaleError('ERR_INVALID_ARG', `points[${i}].ts: must be epoch milliseconds (an integer >= 0)`, {
        field: `points[${i}].ts`,
      });
    if (typeof p.value !== 'number' || !Number.isFinite(p.value))
      throw new WhaleError('ERR_INVALID_ARG', `points[${i}].value: must be a finite number`, {
        field: `points[${i}].value`,
      });
  });
}

export function checkRange(fromMs: number, toMs: number): void {
  if (!Number.isFinite(fromMs))
    throw new WhaleError('ERR_INVALID_ARG', 'fromMs: must be a finite number', { field: 'fromMs' });
  if (!Number.isFinite(toMs) || toMs < fromMs)
    throw new WhaleError('ERR_INVALID_ARG', 'toMs: must be a finite number >= fromMs', { field: 'toMs' });
}

export function pickResolution(r: Resolution | 'auto', fromMs: number, now: number, retention: Retention): Resolution {
  if (r === 'raw' || r === '1m' || r === '1h') return r;
  if (r !== 'auto')
    throw new WhaleError('ERR_INVALID_ARG', "resolution: must be 'raw', '1m', '1h' or 'auto'", { field: 'resolution' });
  const age = now - fromMs;
  if (age <= retention.rawMs) return 'raw';
  return age <= retention.minuteMs ? '1m' : '1h';
}

export function checkRetention(r: Partial<Retention> | undefined): Retention {
  const out = { ...DEFAULT_RETENTION, ...(r ?? {}) };
  for (const [k, v] of Object.entries(out)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
      throw new WhaleError('ERR_INVALID_OPTION', `options.retention.${k}: must be a number of milliseconds > 0`, {
        field: `options.retention.${k}`,
      });
  }
  if (out.rawMs < BUCKET_MS['1m'] * 2 || out.minuteMs < BUCKET_MS['1h'] * 2) {
    throw new WhaleError(
      'ERR_INVALID_OPTION',
      'options.retention: raw must be kept >= 2 minutes and 1m buckets >= 2 hours (they are rolled up before they go)',
      { field: 'options.retention' },
    );
  }
  return out;
}

export interface HistoryOptions {
  retention?: Partial<Retention>;
  /** PostgreSQL schema for the tables (default public). */
  schema?: string;
}

/**
 * The history WHALE_METRICS_DB names: `postgres://…` / `postgresql://…`, `off`
 * (none), a SQLite file path, or (unset) `<cache dir>/metrics.db`.
 */
export async function openMetricHistory(
  spec: string | undefined,
  o: HistoryOptions & { cacheDir?: string } = {},
): Promise<MetricHistory | undefined> {
  const s = spec?.trim();
  if (s === 'off' || s === 'none') return undefined;
  let h: MetricHistory;
  if (s && /^postgres(ql)?:\/\//.test(s)) {
    const { PostgresHistory } = await import('./postgres-history.js');
    h = new PostgresHistory(s, o);
  } else {
    const { SqliteHistory } = await import('./sqlite-history.js');
    h = new SqliteHistory(s || join(o.cacheDir ?? defaultCacheDir(), 'metrics.db'), o);
  }
  try {
    await h.init();
  } catch (err) {
    await h.close().catch(() => undefined);
    throw err;
  }
  return h;
}
