// The system tier (issue 20, "What it must show"): two `whale start` nodes on the Kafka mock
// cluster and one Redis, driven from outside over HTTP. The nodes start once (beforeAll); each
// capability adds its own `it` below, in its own section, and keeps its share of the run short.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { http } from './support/serving.js';
import { mnistInput, startTwoNodes, type TwoNodes, type WhaleNode } from './support/two-nodes.js';

const root = join(import.meta.dirname, '..');

async function scrape(n: WhaleNode): Promise<string> {
  const res = await fetch(`${n.url}/metrics`);
  expect(res.status).toBe(200);
  return res.text();
}

/** Every family named in the first column of docs/monitoring.md's metrics table (`whale_<…>` placeholders left out). */
export function documentedFamilies(): string[] {
  const doc = readFileSync(join(root, 'docs', 'monitoring.md'), 'utf8');
  const section = doc.slice(doc.indexOf('\n## Metrics\n'));
  const table = section.slice(0, section.indexOf('\n## ', 1));
  const out = new Set<string>();
  for (const line of table.split('\n')) {
    if (!line.startsWith('| `')) continue;
    const first = line.split('|')[1]!;
    for (const m of first.matchAll(/`([a-z_:][a-z0-9_:]*)`/g)) out.add(m[1]!);
  }
  return [...out];
}

/** The summed value of a family's samples (counters and gauges; histograms: their _count). */
function total(text: string, family: string): number {
  let sum = 0;
  const re = new RegExp(`^(${family}|${family}_count)(\\{[^}]*\\})? (\\S+)$`, 'gm');
  for (const m of text.matchAll(re)) sum += Number(m[3]);
  return sum;
}

describe('two whale nodes on one Kafka cluster and one Redis', () => {
  let cluster: TwoNodes;

  beforeAll(async () => {
    cluster = await startTwoNodes();
  }, 150_000);

  afterAll(async () => {
    await cluster?.stop();
  }, 60_000);

  // ── Metrics (docs/monitoring.md's table is the input: docs and code cannot drift) ──
  describe('metrics', () => {
    it('after traffic, every family of the docs table is on both nodes, and the request figures move', async () => {
      const families = documentedFamilies();
      expect(families.length).toBeGreaterThan(30);
      for (const n of cluster.nodes) {
        for (let i = 0; i < 20; i++) {
          const r = await http(`${n.url}/v2/models/mnist/infer`, { json: mnistInput(i % 5) });
          expect(r.status, JSON.stringify(r.body)).toBe(200);
        }
      }
      for (const n of cluster.nodes) {
        const text = await scrape(n);
        const missing = families.filter((f) => !new RegExp(`^# TYPE ${f} `, 'm').test(text));
        expect(missing, `${n.id}: documented but not on /metrics`).toEqual([]);
        for (const f of ['whale_requests_total', 'whale_request_duration_seconds', 'whale_pipeline_requests_total'])
          expect(total(text, f), `${n.id}: ${f}`).toBeGreaterThanOrEqual(20);
      }
    }, 60_000);
  });
});
