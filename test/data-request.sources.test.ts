/**
 * The DataRequest service's data sources on a learner's own node: a files directory and a PostgreSQL
 * query (the real local server), answers claim-checked (only a reference on the bus), status,
 * cancellation, timeouts, batches, and the processing-time estimate learned from past replies by size.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { MemoryKv } from '../src/core/federation/orchestration/kv-store.js';
import { TOPICS } from '../src/transport/topics.js';
import { LocalBus } from '../src/transport/local-bus.js';
import type { Envelope } from '../src/transport/envelope.js';
import {
  FilesDataSource,
  LocalDataNode,
  PostgresDataSource,
  dataSourcesFromConfig,
} from '../src/services/data-sources/index.js';
import { ensurePostgres, pgExec, PG_URL } from './support/postgres.js';

const schema = `whale_data_${process.pid}_${Date.now() % 1e6}`;
const dir = mkdtempSync(join(tmpdir(), 'whale-data-'));
let node: LocalDataNode;
const bus = new LocalBus();
const store = new MemoryKv();
const onBus: Envelope[] = [];

beforeAll(async () => {
  await ensurePostgres();
  await pgExec(
    `CREATE SCHEMA ${schema}`,
    `CREATE TABLE ${schema}.digits (id int, shard int, label int, pixels real[])`,
    `INSERT INTO ${schema}.digits SELECT i, i % 3, i % 10, ARRAY[i * 0.5, 1, 2] FROM generate_series(0, 299) i`,
  );
  mkdirSync(join(dir, 'client-0'));
  for (const n of [1, 50, 3000])
    writeFileSync(join(dir, 'client-0', `rows-${n}.csv`), 'x0,x1,label\n' + '0.5,0.25,3\n'.repeat(n * 100));
  node = await LocalDataNode.start({
    nodeId: 'learner-a',
    bus,
    store,
    sources: [
      new FilesDataSource({ dir }),
      new PostgresDataSource({
        url: PG_URL,
        queries: {
          shard: `SELECT label, pixels FROM ${schema}.digits WHERE shard = $1 ORDER BY id`,
          slow: 'SELECT pg_sleep($1::float8)',
        },
      }),
    ],
  });
  await bus.subscribe(TOPICS.dataResponses, (e) => void onBus.push(e), { group: 'tap' });
}, 30_000);

afterAll(async () => {
  await node?.stop();
  await bus.close();
  await pgExec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
});

describe('data sources behind the DataRequest service', () => {
  it('a files source answers bytes by reference; the bus carries only the claim-check', async () => {
    const got = await node.fetch('mnist', { path: 'client-0/rows-50.csv' }, { sourceType: 'files' });
    expect(new TextDecoder().decode(got.bytes).split('\n')[1]).toBe('0.5,0.25,3');
    expect(got).toMatchObject({ contentType: 'text/csv', source: 'files' });
    await expect.poll(() => onBus.length).toBe(1);
    const reply = onBus.at(-1)!.payload as { data: { ref: { sha256: string; inline?: string }; bytes: number } };
    expect(reply.data.ref.inline).toBeUndefined();
    expect(JSON.stringify(onBus.at(-1)).length).toBeLessThan(1000);
    expect(reply.data.bytes).toBe(got.bytes.length);
    expect(await store.get(`fed/blob/${reply.data.ref.sha256}`)).toEqual(got.bytes);

    await expect(node.fetch('mnist', { path: '../etc/passwd' }, { sourceType: 'files' })).rejects.toMatchObject({
      code: 'ERR_EXECUTION_FAILED',
      message: expect.stringMatching(/query\.path/),
    });
    await expect(node.fetch('mnist', { path: 'x' }, { sourceType: 'kafka' })).rejects.toMatchObject({
      message: expect.stringMatching(/no 'kafka' source on node learner-a \(files, postgres\)/),
    });
  });

  it('a PostgreSQL named query answers rows; requestBatch keeps the order; unknown names are refused', async () => {
    const answers = await node.fetchBatch('mnist', [
      { query: { query: 'shard', params: [0] }, options: { sourceType: 'postgres' } },
      { query: { query: 'shard', params: [2] }, options: { sourceType: 'postgres' } },
    ]);
    const [a, b] = answers.map((x) => JSON.parse(new TextDecoder().decode(x.bytes)));
    expect(a.columns).toEqual(['label', 'pixels']);
    expect(a.rows).toHaveLength(100);
    expect(a.rows[1]).toEqual([3, [1.5, 1, 2]]);
    expect(b.rows[0]).toEqual([2, [1, 1, 2]]);
    expect(answers[0]!.rows).toBe(100);
    await expect(node.fetch('mnist', { query: 'DROP TABLE x' }, { sourceType: 'postgres' })).rejects.toMatchObject({
      message: expect.stringMatching(/named queries \(shard, slow\)/),
    });
  });

  it('cancelRequest stops a running query; a deadline times one out', async () => {
    const id = await node.service.requestData('mnist', { query: 'slow', params: [5] }, { sourceType: 'postgres' });
    await new Promise((r) => setTimeout(r, 200));
    const started = Date.now();
    const waiting = node.service.awaitData(id, node.claims);
    await node.service.cancelRequest(id, 'learner left');
    await expect(waiting).rejects.toMatchObject({ code: 'ERR_CANCELLED' });
    expect((await node.service.getRequestStatus(id)).status).toBe('cancelled');
    await expect.poll(() => node.responder.counts.cancelled).toBe(1);
    expect(Date.now() - started).toBeLessThan(2_000);
    await expect(node.service.cancelRequest(id)).rejects.toMatchObject({ code: 'ERR_CONFLICT' });

    const late = await node.service.requestData(
      'mnist',
      { query: 'slow', params: [3] },
      { sourceType: 'postgres', timeoutMs: 300 },
    );
    await expect(node.service.awaitData(late, node.claims)).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
    expect((await node.service.getRequestStatus(late)).status).toBe('timeout');
    await expect.poll(() => node.responder.counts.timeout).toBe(1);
  }, 20_000);

  it('the processing-time estimate is learned per source type and grows with the size asked', async () => {
    for (let i = 0; i < 4; i++)
      for (const n of [1, 50, 3000])
        await node.fetch('mnist', { path: `client-0/rows-${n}.csv` }, { sourceType: 'files' });
    const small = node.service.estimateProcessingTime('files', 1_000)!;
    const big = node.service.estimateProcessingTime('files', 50_000_000)!;
    expect(small.basis).toBe('source');
    expect(small.samples).toBeGreaterThanOrEqual(12);
    expect(small.forSizeMs).toBeGreaterThanOrEqual(0);
    expect(big.forSizeMs).toBeGreaterThan(small.forSizeMs!);
    const pgEstimate = node.service.estimateProcessingTime('postgres')!;
    expect(pgEstimate.basis).toBe('source');
    expect(node.service.estimateProcessingTime('never-seen')!.basis).toBe('all');
    console.log(
      `data estimate: files ${small.forSizeMs!.toFixed(2)} ms for 1 kB, ${big.forSizeMs!.toFixed(1)} ms for 50 MB; postgres mean ${pgEstimate.meanMs.toFixed(1)} ms`,
    );
  });

  it('sources from configuration, with the field at fault named', () => {
    expect(dataSourcesFromConfig({ files: { dir } }).map((s) => s.type)).toEqual(['files']);
    expect(() => dataSourcesFromConfig({ files: { dir: join(dir, 'nope') } })).toThrow(/dataSources\.files\.dir/);
    expect(() => dataSourcesFromConfig({ postgres: { url: PG_URL } })).toThrow(/dataSources\.postgres\.queries/);
    expect(() => dataSourcesFromConfig({ s3: {} })).toThrow(/dataSources\.s3: unknown source type/);
  });
});
