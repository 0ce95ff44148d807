// The V2 inference protocol over real HTTP on loopback, with in-process models behind the scheduler.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { http, rowsInput, scaleModel, startTestServer, WIDTH, type TestServer } from './support/serving.js';

describe('V2 inference protocol', () => {
  let t: TestServer;
  const double = scaleModel('double', 2);

  beforeAll(async () => {
    t = await startTestServer([double.model], { double: { batching: { maxBatchSize: 16, maxQueueDelayUs: 20_000 } } });
  });
  afterAll(() => t.stop());

  it('health, server and model metadata, model readiness', async () => {
    expect(await http(`${t.url}/v2/health/live`)).toEqual({ status: 200, body: { live: true } });
    expect(await http(`${t.url}/v2/health/ready`)).toEqual({ status: 200, body: { ready: true } });
    const server = await http(`${t.url}/v2`);
    expect(server.body).toMatchObject({ name: 'smart-whale', version: 'test' });
    expect(Array.isArray(server.body.extensions)).toBe(true);
    expect((await http(`${t.url}/v2/models/double`)).body).toEqual({
      name: 'double',
      versions: ['1'],
      platform: double.model.platform,
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, WIDTH] }],
      outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, WIDTH] }],
      // Smart Whale's addition to V2 metadata: where the version came from (here: the configuration).
      version_info: { version: '1', default: true, addedAt: expect.any(String), provenance: { source: 'config' } },
    });
    expect(await http(`${t.url}/v2/models/double/ready`)).toEqual({
      status: 200,
      body: { name: 'double', ready: true },
    });
    expect((await http(`${t.url}/v2/models/double/versions/1/ready`)).body).toEqual({ name: 'double', ready: true });
  });

  it('infer: flat and nested data, id echoed, requested outputs', async () => {
    const flat = await http(`${t.url}/v2/models/double/infer`, {
      json: { id: 'req-7', ...rowsInput([[1, 2, 3, 4.5]]) },
    });
    expect(flat.status).toBe(200);
    expect(flat.body).toMatchObject({ model_name: 'double', model_version: '1', id: 'req-7' });
    expect(flat.body.outputs).toEqual([{ name: 'y', datatype: 'FP32', shape: [1, WIDTH], data: [2, 4, 6, 9] }]);
    const nested = await http(`${t.url}/v2/models/double/versions/1/infer`, {
      json: {
        inputs: [
          {
            name: 'x',
            datatype: 'FP32',
            shape: [2, WIDTH],
            data: [
              [1, 1, 1, 1],
              [0, -1, 0.5, 8],
            ],
          },
        ],
        outputs: [{ name: 'y' }],
      },
    });
    expect(nested.body.outputs[0].data).toEqual([2, 2, 2, 2, 0, -2, 1, 16]);
  });

  it('concurrent requests are batched and each gets its own rows back', async () => {
    const before = double.calls.batches;
    const rows = Array.from({ length: 32 }, (_, i) => [i, i + 0.5, -i - 1, 1]);
    const answers = await Promise.all(
      rows.map((r) => http(`${t.url}/v2/models/double/infer`, { json: rowsInput([r]) })),
    );
    answers.forEach((a, i) => {
      expect(a.status).toBe(200);
      expect(a.body.outputs[0].data).toEqual(rows[i]!.map((v) => v * 2));
    });
    const batches = double.calls.batches - before;
    expect(batches).toBeLessThan(32);
    expect(Math.max(...double.calls.rows.slice(before))).toBeLessThanOrEqual(16);
  });

  it.each([
    ['malformed JSON', '{"inputs": [', 400, /not valid JSON/],
    ['no inputs', { inputs: [] }, 400, /inputs/],
    ['wrong shape', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] }, 400, /shape|x/],
    [
      'data length ≠ shape',
      { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3] }] },
      400,
      /needs 4/,
    ],
    [
      'wrong datatype',
      { inputs: [{ name: 'x', datatype: 'INT32', shape: [1, 4], data: [1, 2, 3, 4] }] },
      400,
      /datatype|INT32/,
    ],
    [
      'unknown datatype',
      { inputs: [{ name: 'x', datatype: 'FP8', shape: [1, 4], data: [1, 2, 3, 4] }] },
      400,
      /datatype/,
    ],
    [
      'a string where a float goes',
      { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 'two', 3, 4] }] },
      400,
      /data\[1\]/,
    ],
    ['unknown input', { inputs: [{ name: 'z', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] }, 400, /z|x/],
    ['unknown output', { ...rowsInput([[1, 2, 3, 4]]), outputs: [{ name: 'nope' }] }, 400, /nope/],
    ['bad level', { ...rowsInput([[1, 2, 3, 4]]), parameters: { level: 'ultra' } }, 400, /parameters\.level/],
  ])('%s → 4xx with a message', async (_what, body, status, message) => {
    const res = await fetch(`${t.url}/v2/models/double/infer`, {
      method: 'POST',
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    expect(res.status).toBe(status);
    const json = (await res.json()) as { error: string };
    expect(json.error).toMatch(message);
  });

  it('unknown model or version → 404, wrong method → 405, unknown route → 404, oversized body → 413', async () => {
    const unknown = await http(`${t.url}/v2/models/nope/infer`, { json: rowsInput([[1, 2, 3, 4]]) });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toMatch(/no model named 'nope'/);
    expect((await http(`${t.url}/v2/models/double/versions/9`)).status).toBe(404);
    expect((await http(`${t.url}/v2/models/double/infer`)).status).toBe(405);
    expect((await http(`${t.url}/v1/anything`)).status).toBe(404);
    const big = await http(`${t.url}/v2/models/double/infer`, { method: 'POST', body: 'x'.repeat(100 * 1024) });
    expect(big.status).toBe(413);
    expect(big.body.error).toMatch(/exceeds the limit/);
    expect((await http(`${t.url}/v2/health/live`)).status).toBe(200);
  });
});
