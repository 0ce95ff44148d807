/**
 * Metric and alert history: the same contract on SQLite and on the real
 * PostgreSQL at 127.0.0.1:5432 (db `test`; started here with pg_ctlcluster when
 * it is down, else the suite fails). Each PG run uses its own schema.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { openMetricHistory, type MetricHistory } from '../src/core/monitoring/history/metric-history.js';
import { PostgresHistory } from '../src/core/monitoring/history/postgres-history.js';
import { SqliteHistory } from '../src/core/monitoring/history/sqlite-history.js';
import { expectWhaleError } from './helpers.js';

const PG_URL = process.env.WHALE_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
const MIN = 60_000,
  HOUR = 3_600_000;
const T0 = Date.UTC(2026, 0, 1, 10, 0, 0); // a round hour

async function pgUp(): Promise<boolean> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2_000 });
  try {
    await c.connect();
    await c.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** PostgreSQL must be reachable: start the local cluster if it is down, else fail (never skip). */
async function ensurePostgres(): Promise<void> {
  if (await pgUp()) return;
  const list = spawnSync('pg_lsclusters', ['-h'], { encoding: 'utf8' }).stdout?.trim().split('\n')[0]?.split(/\s+/);
  if (list && list.length >= 2) spawnSync('pg_ctlcluster', [list[0]!, list[1]!, 'start'], { stdio: 'inherit' });
  for (let i = 0; i < 50 && !(await pgUp()); i++) await new Promise((r) => setTimeout(r, 200));
  if (!(await pgUp()))
    throw new Error(`PostgreSQL is not reachable at ${PG_URL} and could not be started (pg_ctlcluster)`);
}

const schema = `whale_test_${process.pid}_${Date.now() % 1e6}`;
const backends: [string, () => Promise<MetricHistory>][] = [
  [
    'sqlite',
    async () =>
      openMetricHistory(join(mkdtempSync(join(tmpdir(), 'whale-hist-')), 'metrics.db')) as Promise<MetricHistory>,
  ],
  [
    'postgres',
    async () => {
      const h = new PostgresHistory(PG_URL, { schema });
      await h.init();
      return h;
    },
  ],
];

beforeAll(ensurePostgres, 30_000);
afterAll(async () => {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await c.end();
});

describe.each(backends)('%s history', (kind, open) => {
  let h: MetricHistory;
  beforeAll(async () => {
    h = await open();
    expect(h.kind).toBe(kind);
  });
  afterAll(async () => h?.close());

  it('raw → 1-minute → 1-hour rollups keep min, max, mean and count exactly; retention removes what is old', async () => {
    // 3 hours of one point every 10 s: value = minute index, plus a spike in minute 5.
    const pts = [];
    for (let t = T0; t < T0 + 3 * HOUR; t += 10_000) {
      const minute = Math.floor((t - T0) / MIN);
      pts.push({ series: 'latency.p95_ms', ts: t, value: minute === 5 && t % MIN === 20_000 ? 1000 : minute });
    }
    pts.push({ series: 'other', ts: T0, value: 7 });
    await h.writePoints(pts);
    const now = T0 + 3 * HOUR + 30_000;
    const m = await h.maintain(now);
    expect(m.minuteBuckets).toBe(180 + 1);
    expect(m.hourBuckets).toBe(3 + 1);
    const minutes = await h.query('latency.p95_ms', T0, T0 + 10 * MIN, '1m');
    expect(minutes).toHaveLength(10);
    expect(minutes[0]).toEqual({ ts: T0, min: 0, max: 0, avg: 0, count: 6 });
    expect(minutes[5]).toEqual({ ts: T0 + 5 * MIN, min: 5, max: 1000, avg: (5 * 5 + 1000) / 6, count: 6 });
    const hours = await h.query('latency.p95_ms', T0, T0 + 3 * HOUR, '1h');
    expect(hours.map((r) => r.count)).toEqual([360, 360, 360]);
    expect(hours[1]).toMatchObject({ ts: T0 + HOUR, min: 60, max: 119 });
    expect(hours[1]!.avg).toBeCloseTo((60 + 119) / 2, 9);
    expect(hours[0]!.max).toBe(1000);
    // Running maintenance again changes nothing (watermarks), new points merge into their bucket.
    expect(await h.maintain(now)).toMatchObject({ minuteBuckets: 0, hourBuckets: 0 });
    await h.writePoints([{ series: 'latency.p95_ms', ts: now, value: -4 }]);
    await h.maintain(now + MIN);
    expect(await h.query('latency.p95_ms', T0 + 3 * HOUR, T0 + 3 * HOUR + MIN, '1m')).toEqual([
      { ts: T0 + 3 * HOUR, min: -4, max: -4, avg: -4, count: 1 },
    ]);
    // Retention: a day later the raw points are gone, the rollups stay.
    const later = await h.maintain(T0 + 3 * HOUR + 25 * HOUR);
    expect(later.deleted).toBe(pts.length + 1);
    expect(await h.query('latency.p95_ms', T0, T0 + 4 * HOUR, 'raw')).toEqual([]);
    expect(await h.query('latency.p95_ms', T0, T0 + 3 * HOUR, '1h')).toHaveLength(3);
  });

  it('alert events: newest first, labels kept, bounded by limit', async () => {
    const base = {
      rule: 'queue-backlog',
      fingerprint: 'queue-backlog/queue.depth',
      severity: 'warning',
      message: 'queue.depth > 1000',
      labels: { series: 'queue.depth' },
    };
    await h.writeAlert({ ...base, id: 'a1', state: 'firing', ts: T0 });
    await h.writeAlert({ ...base, id: 'a1', state: 'resolved', ts: T0 + MIN });
    await h.writeAlert({ ...base, id: 'a2', state: 'firing', ts: T0 + 2 * MIN });
    const all = await h.alerts(T0);
    expect(all.map((a) => [a.id, a.state])).toEqual([
      ['a2', 'firing'],
      ['a1', 'resolved'],
      ['a1', 'firing'],
    ]);
    expect(all[0]).toEqual({ ...base, id: 'a2', state: 'firing', ts: T0 + 2 * MIN });
    expect(await h.alerts(T0, 1)).toHaveLength(1);
  });

  it('bad points and ranges are typed errors naming the field; nothing of the batch is written', async () => {
    await expectWhaleError(
      () =>
        h.writePoints([
          { series: 'ok', ts: T0, value: 1 },
          { series: 'ok', ts: T0, value: NaN },
        ]),
      'ERR_INVALID_ARG',
      'points[1].value',
    );
    await expectWhaleError(
      () => h.writePoints([{ series: '', ts: T0, value: 1 }]),
      'ERR_INVALID_ARG',
      'points[0].series',
    );
    await expectWhaleError(
      () => h.writePoints([{ series: 'ok', ts: 1.5, value: 1 }]),
      'ERR_INVALID_ARG',
      'points[0].ts',
    );
    expect(await h.query('ok', 0, Date.now(), 'raw')).toEqual([]);
    await expectWhaleError(() => h.query('ok', 10, 5), 'ERR_INVALID_ARG', 'toMs');
    await expectWhaleError(() => h.query('ok', 0, 5, 'weekly' as never), 'ERR_INVALID_ARG', 'resolution');
  });
});

describe('history configuration', () => {
  it('WHALE_METRICS_DB picks the backend: postgres:// URL, a SQLite path, off', async () => {
    const p = await openMetricHistory(PG_URL, { schema });
    expect(p?.kind).toBe('postgres');
    await p?.close();
    const dir = mkdtempSync(join(tmpdir(), 'whale-hist-'));
    const s = await openMetricHistory(undefined, { cacheDir: dir });
    expect(s).toBeInstanceOf(SqliteHistory);
    expect((s as SqliteHistory).path).toBe(join(dir, 'metrics.db'));
    await s?.close();
    expect(await openMetricHistory('off')).toBeUndefined();
  });

  it('an unreachable database or an unusable file is ERR_CONFIG naming WHALE_METRICS_DB; bad options are ERR_INVALID_OPTION', async () => {
    await expectWhaleError(
      () => openMetricHistory('postgres://postgres@127.0.0.1:1/test'),
      'ERR_CONFIG',
      'WHALE_METRICS_DB',
    );
    const file = join(mkdtempSync(join(tmpdir(), 'whale-hist-')), 'a-file');
    writeFileSync(file, 'not a directory');
    await expectWhaleError(() => openMetricHistory(join(file, 'metrics.db')), 'ERR_CONFIG', 'WHALE_METRICS_DB');
    await expectWhaleError(
      () => new SqliteHistory(':memory:', { retention: { rawMs: -1 } }),
      'ERR_INVALID_OPTION',
      'options.retention.rawMs',
    );
    await expectWhaleError(
      () => new PostgresHistory(PG_URL, { schema: 'x; DROP TABLE y' }),
      'ERR_INVALID_OPTION',
      'options.schema',
    );
    const closed = new SqliteHistory(':memory:');
    await expectWhaleError(() => closed.writePoints([]), 'ERR_INVALID_STATE');
  });
});
