// Triton's statistics and model repository extensions and the model config, as tritonclient reads them
// (standard-clients issue): shapes, counts that move with traffic, load/unload with an operator key.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { silentLogger } from '../src/common/logger.js';
import { createApiKey } from '../src/config/api-keys.js';
import { parseConfig } from '../src/config/whale-config.js';
import { WhaleServer } from '../src/server/whale-server.js';
import { MessagingService } from '../src/services/messaging-service.js';
import { MemoryStateStore } from '../src/services/state-store.js';
import { LocalBus } from '../src/transport/local-bus.js';
import { http, rowsInput, scaleModel } from './support/serving.js';

describe('Triton extensions', () => {
  const operator = createApiKey('operator');
  const op = { authorization: `Bearer ${operator.key}` };
  let server: WhaleServer;
  let url: string;
  beforeAll(async () => {
    const config = parseConfig(
      {
        http: { port: 0 },
        models: [
          {
            name: 'a',
            adapter: 'onnx',
            path: '/unused/a.onnx',
            batching: { maxBatchSize: 8, preferredBatchSizes: [4, 8], maxQueueDelayUs: 500 },
          },
          { name: 'b', adapter: 'onnx', path: '/unused/b.onnx' },
        ],
        auth: { keys: [operator.record] },
        shutdownGraceMs: 500,
      },
      '/',
    );
    const messaging = new MessagingService({
      bus: new LocalBus(),
      store: new MemoryStateStore(),
      nodeId: 'triton',
      logger: silentLogger,
    });
    server = new WhaleServer({
      config,
      messaging,
      models: [scaleModel('a', 2).model, scaleModel('b', 3).model],
      logger: silentLogger,
      serverVersion: 'test',
    });
    ({ url } = await server.start());
  });
  afterAll(() => server?.stop());

  it('statistics: Triton shape, counts and durations that move with traffic', async () => {
    const before = (await http(`${url}/v2/models/a/stats`)).body.model_stats[0];
    expect(before).toMatchObject({
      name: 'a',
      version: '1',
      inference_count: 0,
      execution_count: 0,
      last_inference: 0,
    });
    for (const k of ['success', 'fail', 'queue', 'compute_input', 'compute_infer', 'compute_output'])
      expect(before.inference_stats[k]).toEqual({ count: 0, ns: 0 });
    await Promise.all(
      Array.from({ length: 5 }, () => http(`${url}/v2/models/a/infer`, { json: rowsInput([[1, 2, 3, 4]]) })),
    );
    const after = (await http(`${url}/v2/models/a/versions/1/stats`)).body.model_stats[0];
    expect(after.inference_count).toBe(5);
    expect(after.execution_count).toBeGreaterThanOrEqual(1);
    expect(after.execution_count).toBeLessThanOrEqual(5);
    expect(after.inference_stats.success.count).toBe(5);
    expect(after.inference_stats.success.ns).toBeGreaterThan(0);
    expect(after.inference_stats.queue.count).toBe(5);
    expect(after.inference_stats.compute_infer.count).toBe(5);
    expect(after.last_inference).toBeGreaterThan(Date.now() - 60_000);
    const all = (await http(`${url}/v2/models/stats`)).body.model_stats;
    expect(all.map((m: { name: string }) => m.name)).toEqual(['a', 'b']);
    expect(JSON.stringify(all)).not.toMatch(/unused|\.onnx/);
    expect((await http(`${url}/v2/models/a/versions/9/stats`)).status).toBe(404);
  });

  it('config: Triton names for the batching and tensors', async () => {
    const { status, body } = await http(`${url}/v2/models/a/config`);
    expect(status).toBe(200);
    expect(body).toMatchObject({
      name: 'a',
      max_batch_size: 8,
      dynamic_batching: { preferred_batch_size: [4, 8], max_queue_delay_microseconds: 500 },
    });
    expect(body.input[0]).toMatchObject({ name: 'x', data_type: 'TYPE_FP32' });
  });

  it('repository: index, unload and load (operator key); an unloaded model is not served', async () => {
    const index = await http(`${url}/v2/repository/index`, { method: 'POST', body: '' });
    expect(index.body).toEqual([
      { name: 'a', version: '1', state: 'READY', reason: '' },
      { name: 'b', version: '1', state: 'READY', reason: '' },
    ]);
    expect((await http(`${url}/v2/repository/models/b/unload`, { method: 'POST', body: '' })).status).toBe(401); // no key
    expect((await http(`${url}/v2/repository/models/b/unload`, { method: 'POST', headers: op, body: '' })).status).toBe(
      200,
    );
    expect((await http(`${url}/v2/models/b/infer`, { json: rowsInput([[1, 2, 3, 4]]) })).status).toBe(503);
    expect((await http(`${url}/v2/health/ready`)).status).toBe(200); // an unloaded model is not waited for
    expect(
      (await http(`${url}/v2/repository/index`, { method: 'POST', json: { ready: true } })).body.map(
        (m: { name: string }) => m.name,
      ),
    ).toEqual(['a']);
    expect((await http(`${url}/v2/repository/models/b/load`, { method: 'POST', headers: op, body: '' })).status).toBe(
      200,
    );
    expect((await http(`${url}/v2/models/b/infer`, { json: rowsInput([[1, 2, 3, 4]]) })).status).toBe(200);
    expect(
      (await http(`${url}/v2/repository/models/nope/load`, { method: 'POST', headers: op, body: '' })).status,
    ).toBe(404);
  });

  // Last: its requests move the counters the tests above start from.
  it('server metadata lists exactly the extensions served, each answering on its route', async () => {
    const listed = (await http(`${url}/v2`)).body.extensions as string[];
    // One valid request per extension, on the route only a server with that extension has.
    const probes: Record<string, () => Promise<{ status: number }>> = {
      statistics: () => http(`${url}/v2/models/a/stats`),
      model_repository: () => http(`${url}/v2/repository/index`, { json: {} }),
      model_configuration: () => http(`${url}/v2/models/a/config`),
      binary_tensor_data: () =>
        fetch(`${url}/v2/models/a/infer`, {
          method: 'POST',
          headers: { 'inference-header-content-length': '0', 'content-type': 'application/octet-stream' },
          body: Buffer.from(new Float32Array([1, 2, 3, 4]).buffer),
        }),
      generate: () => http(`${url}/v2/models/a/generate`, { json: { x: [1, 2, 3, 4] } }),
    };
    expect([...listed].sort()).toEqual(Object.keys(probes).sort());
    for (const name of listed) {
      const { status } = await probes[name]!();
      expect({ name, status }).toEqual({ name, status: 200 });
    }
  });
});
