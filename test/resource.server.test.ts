// Resource management inside a running server: models get their resources on
// start and give them back on stop, GET /v1/resources reports devices, usage,
// allocations and quotas, a model at its quota gets typed errors over HTTP
// while another proceeds, quotas change at run time, metrics reach whale.metrics.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { silentLogger } from '../src/common/logger.js';
import { ResourceExtension } from '../src/server/extensions/resources.js';
import { topCommand } from '../src/cli/top.js';
import { createApiKey } from '../src/config/api-keys.js';
import { parseConfig } from '../src/config/whale-config.js';
import { WhaleServer } from '../src/server/whale-server.js';
import { MessagingService } from '../src/services/messaging-service.js';
import { MemoryStateStore } from '../src/services/state-store.js';
import { LocalBus } from '../src/transport/local-bus.js';
import { counterModel, http, rowsInput, scaleModel } from './support/serving.js';
import { until } from './helpers.js';

describe('resource management in whale start', () => {
  const free = scaleModel('free', 2);
  const limited = scaleModel('limited', 3);
  const counter = counterModel('counter');
  const bus = new LocalBus();
  const metrics: string[] = [];
  let server: WhaleServer;
  let ext: ResourceExtension;
  let url: string;
  const operator = createApiKey('operator');
  const asOperator = { authorization: `Bearer ${operator.key}` };

  beforeAll(async () => {
    const config = parseConfig(
      {
        http: { port: 0 },
        models: [
          { name: 'free', adapter: 'onnx', path: '/unused/free.onnx' },
          {
            name: 'limited',
            adapter: 'onnx',
            path: '/unused/limited.onnx',
            resources: { cpu: 0.5, memory: 4096, requestsPerSecond: 0.01, burst: 2, maxConcurrent: 4 },
          },
          // A model with its own generate(): one stream at a time.
          { name: 'counter', adapter: 'onnx', path: '/unused/counter.onnx', resources: { maxConcurrent: 1 } },
        ],
        resources: { intervalMs: 200 },
        shutdownGraceMs: 1000,
        auth: { keys: [operator.record] },
      },
      '/',
    );
    const messaging = new MessagingService({
      bus,
      store: new MemoryStateStore(),
      nodeId: 'res-node',
      logger: silentLogger,
    });
    await bus.subscribe('whale.metrics', (m) => void metrics.push((m.payload as { name: string }).name), {
      group: 'test',
    });
    ext = new ResourceExtension(
      config,
      {},
      { gpus: [{ id: 'gpu:host0', index: 0, totalBytes: 64 * 1024 * 1024 }], gpuBackend: 'host' },
    );
    server = new WhaleServer({
      config,
      messaging,
      models: [free.model, limited.model, counter.model],
      logger: silentLogger,
      serverVersion: 'test',
      extensions: [ext],
    });
    ({ url } = await server.start());
  });
  afterAll(() => server?.stop());

  it('GET /v1/resources: devices, usage, allocations and quotas per model', async () => {
    await until(() => ext.manager!.monitor.stats().ticks > 0, 10_000);
    const { status, body } = await http(`${url}/v1/resources`);
    expect(status).toBe(200);
    expect(body.devices.cpu.units).toBeGreaterThan(0);
    expect(body.usage.cpu.cores).toBeGreaterThan(0);
    // The machine's memory, disks, network and the process's RSS are not for anonymous clients (issue 23 item 10).
    expect(body.usage.memory).toBeUndefined();
    expect(body.usage.disks).toBeUndefined();
    expect(body.usage.network).toBeUndefined();
    expect(body.models.limited).toMatchObject({
      granted: { cpu: 0.5, memory: 4096, gpu: 0 },
      quota: { cpu: 0.5, memory: 4096, gpu: 0 },
      rateLimit: { requestsPerSecond: 0.01, burst: 2, maxConcurrent: 4 },
    });
    expect(body.models.free.granted.cpu).toBe(body.devices.cpu.units);
    expect(body.allocations.gpuPools['gpu:host0']).toMatchObject({ backend: 'host', allocated: 0 });
    expect(body.quotas.store).toBe('local');
  });

  it('a model over its requests/s gets ERR_QUOTA_EXCEEDED while the other proceeds; usage is attributed', async () => {
    const send = (m: string) => http(`${url}/v2/models/${m}/infer`, { json: rowsInput([[1, 2, 3, 4]]) });
    const limitedAnswers = await Promise.all([1, 2, 3, 4, 5].map(() => send('limited')));
    const ok = limitedAnswers.filter((a) => a.status === 200);
    const refused = limitedAnswers.filter((a) => a.body?.code === 'ERR_QUOTA_EXCEEDED');
    expect(ok.length).toBe(2); // the burst
    expect(refused.length).toBe(3);
    expect(refused[0]!.body.error).toContain('limited');
    expect(refused.map((a) => a.status)).toEqual([429, 429, 429]);
    const again = await fetch(`${url}/v2/models/limited/infer`, {
      method: 'POST',
      body: JSON.stringify(rowsInput([[1, 2, 3, 4]])),
    });
    expect(again.status).toBe(429);
    expect(Number(again.headers.get('retry-after'))).toBeGreaterThan(0);
    const freeAnswers = await Promise.all([1, 2, 3, 4, 5].map(() => send('free')));
    expect(freeAnswers.every((a) => a.status === 200)).toBe(true);
    const { body } = await http(`${url}/v1/resources`);
    expect(body.models.limited.usage).toMatchObject({ rows: 2 }); // the burst; 0.01/s refills nothing meanwhile
    expect(body.models.free.usage.rows).toBe(5);
    expect(body.models.free.usage.wallMs).toBeGreaterThan(0);
    expect(body.models.limited.memory).toMatchObject({ used: 0, byKind: { batch: 0 } }); // buffers released after answering
  });

  it("a model's own generate() stream is admitted like a scheduled request and holds its permit until it ends", async () => {
    const count = (n: number, stream = false) =>
      fetch(`${url}/v2/models/counter/${stream ? 'generate_stream' : 'generate'}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ n: [n] }),
      });
    const open = await count(10, true); // 10 steps of 20 ms
    expect(open.status).toBe(200);
    const during = await count(1);
    expect(during.status).toBe(503);
    const refused = (await during.json()) as { code: string; error: string };
    expect(refused.code).toBe('ERR_OVERLOADED');
    expect(refused.error).toContain('maxConcurrent');
    expect(await open.text()).toContain('"final":true'); // the stream ran to its end
    const after = await count(1);
    expect(after.status).toBe(200); // its permit was released with the stream
    expect((await http(`${url}/v1/resources`)).body.models.counter.quota).toBeDefined();
  });

  it('a request bigger than the model memory quota is refused with the model and resource named', async () => {
    await http(`${url}/v1/resources/quotas/limited`, {
      method: 'PUT',
      headers: asOperator,
      json: { requestsPerSecond: 1000, burst: 1000 },
    });
    // A new rate applies from the next request on: that one may still find the old, empty bucket.
    await http(`${url}/v2/models/limited/infer`, { json: rowsInput([[1, 2, 3, 4]]) });
    await new Promise((r) => setTimeout(r, 50));
    const rows = Array.from({ length: 300 }, () => [1, 2, 3, 4]); // 4800 bytes > 4096
    const r = await http(`${url}/v2/models/limited/infer`, { json: rowsInput(rows) });
    expect(r.body.code).toBe('ERR_QUOTA_EXCEEDED');
    expect(r.body.error).toMatch(/memory: model 'limited'/);
  });

  it('PUT /v1/resources/quotas/<model> changes the quota at run time; bad input is a typed 400', async () => {
    const put = await http(`${url}/v1/resources/quotas/limited`, {
      method: 'PUT',
      headers: asOperator,
      json: { memory: 1 << 20, gpu: 0.25 },
    });
    expect(put.status).toBe(200);
    expect(put.body.quota).toEqual({ cpu: 0.5, memory: 1 << 20, gpu: 0.25 });
    const { body } = await http(`${url}/v1/resources`);
    expect(body.models.limited.gpu).toMatchObject({ device: 'gpu:host0', fraction: 0.25, cap: 16 * 1024 * 1024 });
    expect(body.models.limited.granted).toMatchObject({ gpu: 0.25 });
    const rows = Array.from({ length: 300 }, () => [1, 2, 3, 4]);
    expect((await http(`${url}/v2/models/limited/infer`, { json: rowsInput(rows) })).status).toBe(200);
    expect(
      (await http(`${url}/v1/resources/quotas/limited`, { method: 'PUT', headers: asOperator, json: { cpu: 'lots' } }))
        .body,
    ).toMatchObject({ code: 'ERR_INVALID_ARG' });
    expect(
      (await http(`${url}/v1/resources/quotas/nope`, { method: 'PUT', headers: asOperator, json: {} })).status,
    ).toBe(404);
  });

  it('a quota that admits no request shows in readiness (hardening round 2, item 8)', async () => {
    expect((await http(`${url}/v2/health/ready`)).status).toBe(200);
    const put = (json: unknown) =>
      http(`${url}/v1/resources/quotas/limited`, { method: 'PUT', headers: asOperator, json });
    expect((await put({ memory: 0 })).status).toBe(200);
    expect((await http(`${url}/v2/health/ready`)).status).toBe(503);
    expect((await http(`${url}/v2/models/limited/ready`)).body).toEqual({ name: 'limited', ready: false });
    expect((await http(`${url}/v2/models/free/ready`)).body).toEqual({ name: 'free', ready: true });
    expect((await put({ memory: 1 << 20 })).status).toBe(200);
    expect((await http(`${url}/v2/health/ready`)).status).toBe(200);
    expect((await http(`${url}/v2/models/limited/ready`)).body.ready).toBe(true);
  });

  it('whale top reads /v1/resources and shows the models, usage and quotas', async () => {
    const out: string[] = [];
    const err: string[] = [];
    expect(
      await topCommand(
        ['--url', url, '--count', '2', '--interval', '0.1'],
        { out: (x) => void out.push(x), err: (x) => void err.push(x) },
        false,
      ),
    ).toBe(0);
    expect(out).toHaveLength(2);
    expect(out[1]).toMatch(/^CPU .*% of \d+ cores/m);
    expect(out[1]).toMatch(/^limited +0\.5 /m);
    expect(out[1]).toMatch(/^free /m);
    expect(out[1]).toContain('pool gpu:host0');
    expect(
      await topCommand(
        ['--url', 'http://127.0.0.1:1', '--count', '1'],
        { out: () => undefined, err: (x) => void err.push(x) },
        false,
      ),
    ).toBe(1);
    expect(err.join('')).toContain('/v1/resources');
  });

  it('publishes resource metrics on whale.metrics; stop gives every resource back', async () => {
    expect(
      await until(() => metrics.includes('resource.cpu.load') && metrics.includes('resource.model.cpu_ms'), 10_000),
    ).toBe(true);
    const manager = ext.manager!;
    await server.stop();
    expect(manager.modelNames()).toEqual([]);
    expect(manager.memory.snapshot().used).toBe(0);
    expect(manager.gpu.stats()['gpu:host0']!.allocated).toBe(0);
    expect(limited.model.resourceStatus().allocated).toBeNull();
  });
});
