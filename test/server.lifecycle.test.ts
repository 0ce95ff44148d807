// Models that fail or hang, pipeline levels, and the ordered shutdown, over real HTTP.
import { describe, expect, it } from 'vitest';

import { until } from './helpers.js';
import { http, rowsInput, scaleModel, startTestServer } from './support/serving.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('serving under failure', () => {
  it('a model that throws fails its requests with a typed error, is reloaded, and serves again; the server stays up', async () => {
    let broken = true;
    const flaky = scaleModel('flaky', 3, {
      onBatch: () => {
        if (broken) throw new Error('weights went missing');
      },
    });
    const t = await startTestServer([flaky.model]);
    try {
      const failed = await http(`${t.url}/v2/models/flaky/infer`, { json: rowsInput([[1, 1, 1, 1]]) });
      expect(failed.status).toBeGreaterThanOrEqual(500);
      expect(failed.body.error).toMatch(/weights went missing/);
      expect(typeof failed.body.code).toBe('string');
      broken = false;
      expect(t.server.host.status('flaky').failures).toBe(1);
      expect((await http(`${t.url}/v2/health/live`)).status).toBe(200);
      expect(await until(() => t.server.host.isReady('flaky'), 5_000)).toBe(true);
      expect(t.server.host.status('flaky').restarts).toBe(1);
      const ok = await http(`${t.url}/v2/models/flaky/infer`, { json: rowsInput([[1, 2, 3, 4]]) });
      expect(ok.body.outputs[0].data).toEqual([3, 6, 9, 12]);
    } finally {
      await t.stop();
    }
  });

  it(
    'a model that hangs: its requests time out (504), it is reloaded, and the next request is answered',
    { timeout: 30_000 },
    async () => {
      let hang = true;
      const stuck = scaleModel('stuck', 1, { onBatch: () => (hang ? new Promise<void>(() => undefined) : undefined) });
      const t = await startTestServer([stuck.model], {
        stuck: { batching: { executionTimeoutMs: 300, maxQueueDelayUs: 0 } },
      });
      try {
        const timedOut = await http(`${t.url}/v2/models/stuck/infer`, { json: rowsInput([[1, 2, 3, 4]]) });
        expect(timedOut.status).toBe(504);
        expect(timedOut.body.code).toBe('ERR_TIMEOUT');
        hang = false;
        // Marked failed, the model is reloaded without waiting out its drain timeout for the hung call.
        expect(
          await until(() => t.server.host.status('stuck').restarts === 1 && t.server.host.isReady('stuck'), 3_000),
        ).toBe(true);
        const ok = await http(`${t.url}/v2/models/stuck/infer`, { json: rowsInput([[5, 6, 7, 8]]) });
        expect(ok.status).toBe(200);
        expect(ok.body.outputs[0].data).toEqual([5, 6, 7, 8]);
      } finally {
        await t.stop();
      }
    },
  );
});

describe('pipeline levels', () => {
  it('quick answers a repeated input from the cache; normal runs the model; deep averages the compatible models', async () => {
    const double = scaleModel('double', 2);
    const triple = scaleModel('triple', 3);
    const t = await startTestServer([double.model, triple.model], {
      pipeline: { defaultModel: 'double', deep: { models: ['double', 'triple'] } },
    });
    try {
      const ask = (level: string, row = [1, 2, 3, 4]) =>
        http(`${t.url}/v2/models/double/infer`, { json: { ...rowsInput([row]), parameters: { level } } });
      const first = await ask('quick');
      const runs = double.calls.batches;
      const second = await ask('quick');
      expect(first.body.parameters).toMatchObject({ level: 'quick', cached: false });
      expect(second.body.parameters).toMatchObject({ level: 'quick', cached: true });
      expect(second.body.outputs).toEqual(first.body.outputs);
      expect(double.calls.batches).toBe(runs);
      const other = await ask('quick', [1, 2, 3, 5]);
      expect(other.body.parameters.cached).toBe(false);
      const normal = await ask('normal');
      expect(normal.body.parameters).toMatchObject({ level: 'normal', cached: false, models: 'double' });
      expect(normal.body.outputs[0].data).toEqual([2, 4, 6, 8]);
      const deep = await ask('deep');
      expect(deep.body.parameters).toMatchObject({ level: 'deep', models: 'double,triple' });
      expect(deep.body.outputs[0].data).toEqual([2.5, 5, 7.5, 10]);
    } finally {
      await t.stop();
    }
  });

  it('without a level, the complexity estimate picks it (thresholds from the config)', async () => {
    const double = scaleModel('double', 2);
    const t = await startTestServer([double.model], { pipeline: { complexity: { quickBelow: 0.1, deepAbove: 0.9 } } });
    try {
      const one = await http(`${t.url}/v2/models/double/infer`, { json: rowsInput([[1, 1, 1, 1]]) });
      expect(one.body.parameters.level).toBe('quick');
      const rows = Array.from({ length: 64 }, () => [1, 1, 1, 1]);
      const many = await http(`${t.url}/v2/models/double/infer`, { json: rowsInput(rows) });
      expect(many.body.parameters.level).toBe('deep');
      const hinted = await http(`${t.url}/v2/models/double/infer`, {
        json: { ...rowsInput([[1, 1, 1, 1]]), parameters: { complexity: 0.5 } },
      });
      expect(hinted.body.parameters.level).toBe('normal');
    } finally {
      await t.stop();
    }
  });
});

describe('shutdown', () => {
  it('drains requests in flight, refuses new ones, and answers every accepted request exactly once', async () => {
    const slow = scaleModel('slow', 1, { onBatch: () => sleep(300) });
    const t = await startTestServer([slow.model], { slow: { batching: { maxBatchSize: 2, maxQueueDelayUs: 0 } } });
    const inflight = Array.from({ length: 6 }, (_, i) =>
      http(`${t.url}/v2/models/slow/infer`, { json: rowsInput([[i, 0, 0, 0]]) }),
    );
    await sleep(100);
    const stopping = t.stop();
    const late = await http(`${t.url}/v2/models/slow/infer`, { json: rowsInput([[9, 9, 9, 9]]) }).catch(
      (err: Error) => ({ status: 0, body: err.message }),
    );
    expect([0, 503]).toContain(late.status);
    const answers = await Promise.all(inflight);
    await stopping;
    answers.forEach((a, i) => {
      expect(a.status, JSON.stringify(a.body)).toBe(200);
      expect(a.body.outputs[0].data).toEqual([i, 0, 0, 0]);
    });
    await expect(fetch(`${t.url}/v2/health/live`)).rejects.toThrow();
  });
});
