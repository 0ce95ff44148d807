/** The local PostgreSQL of the tests (127.0.0.1:5432, db `test`, or WHALE_TEST_PG): started when down, never skipped. */
import { spawnSync } from 'node:child_process';

import pg from 'pg';

export const PG_URL = process.env.WHALE_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';

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

/** PostgreSQL must be reachable: start the local cluster if it is down, else fail. */
export async function ensurePostgres(): Promise<void> {
  if (await pgUp()) return;
  const list = spawnSync('pg_lsclusters', ['-h'], { encoding: 'utf8' }).stdout?.trim().split('\n')[0]?.split(/\s+/);
  if (list && list.length >= 2) spawnSync('pg_ctlcluster', [list[0]!, list[1]!, 'start'], { stdio: 'inherit' });
  for (let i = 0; i < 50 && !(await pgUp()); i++) await new Promise((r) => setTimeout(r, 200));
  if (!(await pgUp()))
    throw new Error(`PostgreSQL is not reachable at ${PG_URL} and could not be started (pg_ctlcluster)`);
}

/** Runs SQL statements on one connection. */
export async function pgExec(...sql: string[]): Promise<void> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    for (const s of sql) await c.query(s);
  } finally {
    await c.end();
  }
}
