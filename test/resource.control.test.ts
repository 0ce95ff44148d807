// Resources that control (issue 20): grants decided before a model loads and applied to its ONNX session
// (intra-op threads, CPU provider without a GPU share), the device label is the device that ran, the GPU
// memory share is enforced through the native pool (host-backed device: this machine has no GPU), the
// optimizer's timer applies the proposals the configuration allows and lists the others, and the
// alerts section of whale.config.json is parsed with errors naming the field.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { silentLogger } from '../src/common/logger.js';
import { parseConfig, defaultModelConfig } from '../src/config/whale-config.js';
import { AlertManager } from '../src/core/monitoring/visualization/alert-manager.js';
import { ProcessingOptimizer } from '../src/core/processing/processing-optimizer.js';
import type { SystemSample } from '../src/core/resource-management/monitor/system-sampler.js';
import { RedisQuotaStore } from '../src/core/resource-management/quota/redis-quota-store.js';
import { ResourceManager } from '../src/core/resource-management/resource-manager.js';
import { loadOrt } from '../src/models/onnx-runtime.js';
import { ResourceExtension } from '../src/server/extensions/resources.js';
import { WhaleServer } from '../src/server/whale-server.js';
import { MessagingService } from '../src/services/messaging-service.js';
import { MemoryStateStore } from '../src/services/state-store.js';
import { LocalBus } from '../src/transport/local-bus.js';
import { expectWhaleError, until } from './helpers.js';
import { RedisServer } from './support/redis-server.js';
import { http, rowsInput, scaleModel } from './support/serving.js';

const MNIST = defaultModelConfig().path;

function messaging(nodeId: string): MessagingService {
  return new MessagingService({ bus: new LocalBus(), store: new MemoryStateStore(), nodeId, logger: silentLogger });
}

describe('grants before load: the ONNX session gets the granted threads', () => {
  let server: WhaleServer;
  let create: ReturnType<typeof vi.spyOn>;

  beforeAll(async () => {
    const ort = await loadOrt();
    create = vi.spyOn(ort.InferenceSession, 'create');
    const config = parseConfig(
      {
        http: { port: 0 },
        models: [{ name: 'mnist', adapter: 'onnx', path: MNIST, resources: { cpu: 2 } }],
        resources: { intervalMs: 200 },
        shutdownGraceMs: 500,
      },
      '/',
    );
    server = new WhaleServer({
      config,
      messaging: messaging('grant-node'),
      logger: silentLogger,
      serverVersion: 'test',
      extensions: [new ResourceExtension(config, {})],
    });
    await server.start();
  });
  afterAll(async () => {
    create?.mockRestore();
    await server?.stop();
  });

  it('creates the session with intraOpNumThreads = the CPU grant and the CPU provider (no GPU share)', () => {
    expect(create).toHaveBeenCalled();
    const options = create.mock.calls.at(-1)![1] as { intraOpNumThreads?: number; executionProviders?: unknown[] };
    expect(options.intraOpNumThreads).toBe(2);
    expect(options.executionProviders).toEqual(['cpu']);
    const d = server.host.get('mnist').describe();
    expect(d).toMatchObject({ provider: 'cpu', device: 'cpu', intraOpThreads: 2 });
    expect(String(d.providerNote)).toContain('no GPU granted');
  });

  it('GET /v1/resources shows the grant and how the runtime applied it', async () => {
    const { status, body } = await http(`${server.address}/v1/resources`);
    expect(status).toBe(200);
    expect(body.models.mnist.granted).toMatchObject({ cpu: 2, gpu: 0 });
    expect(body.models.mnist.runtime).toEqual({ provider: 'cpu', device: 'cpu', intraOpThreads: 2 });
  });

  it('labels a request with the device its model ran on', async () => {
    const m = server.host.get('mnist');
    const spec = m.inputs[0]!;
    const width = spec.shape[spec.shape.length - 1]!;
    const r = await server.pipeline.processRequest({
      model: 'mnist',
      level: 'normal',
      inputs: { [spec.name]: { name: spec.name, datatype: 'FP32', shape: [1, width], data: new Float32Array(width) } },
    });
    expect(r.device).toBe('cpu');
  });
});

describe('ProcessingOptimizer device label', () => {
  it('is the model’s device, never a GPU while the model runs on the CPU', () => {
    const o = new ProcessingOptimizer({
      totalSlots: 4,
      gpus: ['cuda:0'],
      deviceOf: (m) => (m === 'on-gpu' ? 'cuda:1' : m === 'on-cpu' ? 'cpu' : undefined),
    });
    expect(o.allocateResources(1, 'on-cpu').device).toBe('cpu');
    expect(o.allocateResources(1, 'on-gpu').device).toBe('cuda:1');
    expect(o.allocateResources(1, 'unknown').device).toBe('cpu');
    // Without a model the old preference stays (callers that do not know the model).
    expect(o.allocateResources(1).device).toBe('cuda:0');
  });
});

describe('GPU memory share through the native pool (host-backed device, no GPU here)', () => {
  const TOTAL = 64 * 1024 * 1024; // the pool's segments are 2 MiB
  let server: WhaleServer;
  let ext: ResourceExtension;
  let url: string;
  let peak = 0;

  beforeAll(async () => {
    const config = parseConfig(
      {
        http: { port: 0 },
        models: [{ name: 'g', adapter: 'onnx', path: '/unused/g.onnx', resources: { gpu: 0.25 } }],
        shutdownGraceMs: 500,
      },
      '/',
    );
    const g = scaleModel('g', 2, {
      onBatch: () => void (peak = Math.max(peak, ext.manager!.gpu.usage('g')?.allocated ?? 0)),
    });
    ext = new ResourceExtension(
      config,
      {},
      { gpus: [{ id: 'gpu:host0', index: 0, totalBytes: TOTAL }], gpuBackend: 'host' },
    );
    server = new WhaleServer({
      config,
      messaging: messaging('gpu-node'),
      models: [g.model],
      logger: silentLogger,
      serverVersion: 'test',
      extensions: [ext],
    });
    ({ url } = await server.start());
  });
  afterAll(() => server?.stop());

  it('the share is granted before load and a batch holds its buffers in the pool while it runs', async () => {
    expect(server.host.get('g').resourceStatus?.().allocated?.gpu).toBe(0.25);
    const { status } = await http(`${url}/v2/models/g/infer`, {
      method: 'POST',
      json: rowsInput(Array.from({ length: 8 }, () => [1, 2, 3, 4])),
    });
    expect(status).toBe(200);
    expect(peak).toBeGreaterThanOrEqual(8 * 4 * 4);
    expect(ext.manager!.gpu.usage('g')!.allocated).toBe(0); // freed after the batch
  });

  it('a batch larger than the share is refused with ERR_QUOTA_EXCEEDED', async () => {
    const m = ext.manager!;
    await expectWhaleError(() => m.runBatch('g', 1, async () => 1, TOTAL / 2), 'ERR_QUOTA_EXCEEDED', 'gpu');
  });

  it('weights larger than the share cannot be placed', async () => {
    const m = new ResourceManager({
      cpuUnits: 2,
      gpus: [{ id: 'gpu:host0', index: 0, totalBytes: TOTAL }],
      gpuBackend: 'host',
      sampler: async () => fakeSample(0),
    });
    await expectWhaleError(() => m.register('big', {}, { gpu: 0.1 }, TOTAL / 2), 'ERR_QUOTA_EXCEEDED', 'gpu');
    const placed: number[] = [];
    m.register('small', { placeOnDevice: (i: number) => void placed.push(i) } as object, { gpu: 0.5 }, 1000);
    expect(placed).toEqual([0]); // a model that can choose its device runs where its share is
    expect(m.gpu.usage('small')!.allocated).toBeGreaterThanOrEqual(1000);
    m.unregister('small');
    expect((await m.snapshot()).leaks).toEqual([]);
    await m.stop();
  });
});

function fakeSample(rss: number, ts = Date.now()): SystemSample {
  return {
    timestamp: ts,
    cpu: { load: 0.1, perCore: [0.1], cores: 1, process: 0.1 },
    memory: {
      total: 1e9,
      used: 1e8,
      available: 9e8,
      process: { rss, heapUsed: 1, heapTotal: 1, external: 0, arrayBuffers: 0 },
    },
    disks: [],
    network: [],
    gpus: [],
  };
}

describe('the optimizer on its timer', () => {
  it('applies the proposals `apply` allows (a quota change) and lists the others with why', async () => {
    let ts = Date.now();
    const events: { type: string; data: unknown }[] = [];
    const m = new ResourceManager({
      cpuUnits: 2,
      sampler: async () => fakeSample(1e8, (ts += 1000)),
      intervalMs: 100,
      optimizeEveryMs: 150,
      apply: ['raise-memory-quota'],
      publishEvent: (type, data) => void events.push({ type, data }),
    });
    m.register('hot', {}, { memory: 1000 }, 950); // weights fill 95% of its memory quota
    m.register('cold', {}, { memory: 1_000_000 }, 10); // under 20%: lower-memory-quota, not allowed here
    m.start();
    type Listed = { kind: string; model?: string; applied?: boolean; note?: string };
    const listed = async () => (await m.snapshot()).proposals as Listed[];
    // lower-memory-quota needs 10 samples of history.
    expect(await until(async () => (await listed()).some((p) => p.model === 'cold'), 10_000)).toBe(true);
    await m.stop();
    expect(m.quotas.getQuota('hot')!.memory).toBe(Math.ceil(950 * 1.5));
    const applied = events.find((e) => e.type === 'resource.proposal')!.data;
    expect(applied).toMatchObject({
      kind: 'raise-memory-quota',
      model: 'hot',
      applied: true,
      change: { memory: 1425 },
    });
    const cold = (await listed()).find((p) => p.model === 'cold');
    expect(cold).toMatchObject({ kind: 'lower-memory-quota', applied: false });
    expect(cold!.note).toContain('resources.optimizer.apply');
    expect(m.quotas.getQuota('cold')!.memory).toBe(1_000_000);
  });
});

describe('a quota set through one node holds on another (Redis)', () => {
  let redis: RedisServer;
  const managers: ResourceManager[] = [];
  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterAll(async () => {
    for (const m of managers) await m.stop();
    await redis?.stop();
  });

  const node = async (): Promise<ResourceManager> => {
    const m = new ResourceManager({
      cpuUnits: 4,
      sampler: async () => fakeSample(0),
      store: new RedisQuotaStore({ url: redis.url, prefix: 'test-shared:' }),
    });
    managers.push(m);
    m.register('mnist', {}, {});
    await m.quotas.followShared((x) => m.modelNames().includes(x));
    return m;
  };

  it('B enforces the rate limit and quota A set, and a node started later gets them too', async () => {
    const a = await node();
    const b = await node();
    await a.quotas.updateModel('mnist', { cpu: 1, memory: 4096, requestsPerSecond: 0.01, burst: 1 });
    expect(await until(() => b.quotas.getRateLimit('model', 'mnist')?.requestsPerSecond === 0.01, 5_000)).toBe(true);
    expect(b.quotas.getQuota('mnist')).toEqual({ cpu: 1, memory: 4096, gpu: 0 });
    expect(b.memory.usage('mnist')?.budget).toBe(4096);
    (await b.admit('mnist', undefined, 0)).release(); // the shared bucket's one token
    await expectWhaleError(() => b.admit('mnist', undefined, 0), 'ERR_QUOTA_EXCEEDED');
    await expectWhaleError(() => a.admit('mnist', undefined, 0), 'ERR_QUOTA_EXCEEDED');
    const c = await node();
    expect(c.quotas.getRateLimit('model', 'mnist')).toEqual({ requestsPerSecond: 0.01, burst: 1 });
    expect(c.quotas.getQuota('mnist')!.memory).toBe(4096);
  });
});

describe('one alert list per node: AlertManager.mirror', () => {
  it("shows the other engine's alerts (active, recent, onChange) without publishing them again", async () => {
    const published: string[] = [];
    const changes: string[] = [];
    const node = new AlertManager({
      logger: silentLogger,
      publish: async (type) => void published.push(type),
      onChange: (a) => void changes.push(`${a.rule}:${a.state}`),
    });
    const resources = new AlertManager({
      logger: silentLogger,
      rules: [{ kind: 'threshold', name: 'rows', series: 'models.m.rows', op: '>=', value: 3 }],
      publish: async (type) => void published.push(`resources:${type}`),
      eventType: () => 'resource.alert',
    });
    const undo = node.mirror(resources);
    resources.observeAll({ 'models.m.rows': 5 }, 1);
    expect(node.active().map((a) => a.rule)).toEqual(['rows']);
    resources.observeAll({ 'models.m.rows': 1 }, 2);
    expect(node.active()).toEqual([]);
    expect(node.recent().map((a) => `${a.rule}:${a.state}`)).toEqual(['rows:resolved', 'rows:firing']);
    expect(changes).toEqual(['rows:firing', 'rows:resolved']);
    await Promise.all([node.flush(), resources.flush()]);
    expect(published).toEqual(['resources:resource.alert', 'resources:resource.alert']);
    undo();
    resources.observeAll({ 'models.m.rows': 9 }, 3);
    expect(node.active()).toEqual([]);
    await Promise.all([node.close(), resources.close()]);
  });
});

describe('whale.config.json: alerts and resources.optimizer', () => {
  const base = { models: [{ name: 'm', adapter: 'onnx', path: '/x.onnx' }] };
  it('parses threshold rules', () => {
    const c = parseConfig(
      {
        ...base,
        alerts: {
          rules: [
            { name: 'slow', metric: 'latency.p95_ms', comparison: '>', value: 250, forMs: 30000, severity: 'critical' },
            { name: 'busy', metric: 'models.m.rows', comparison: '>=', value: 100 },
          ],
        },
        resources: { optimizer: { intervalMs: 5000, apply: ['raise-cpu-quota'] } },
      },
      '/',
    );
    expect(c.alerts!.rules[0]).toEqual({
      kind: 'threshold',
      name: 'slow',
      series: 'latency.p95_ms',
      op: '>',
      value: 250,
      forMs: 30000,
      severity: 'critical',
    });
    expect(c.alerts!.rules[1]!.severity).toBe('warning');
    expect(c.resources!.optimizer).toEqual({ intervalMs: 5000, apply: ['raise-cpu-quota'] });
  });

  it.each([
    [{ name: 'a', metric: 'x', comparison: '!=', value: 1 }, 'alerts.rules[0].comparison'],
    [{ name: 'a', metric: 'x', comparison: '>', value: 'high' }, 'alerts.rules[0].value'],
    [{ name: 'a', comparison: '>', value: 1 }, 'alerts.rules[0].metric'],
    [{ name: 'a', metric: 'x', comparison: '>', value: 1, forMs: -1 }, 'alerts.rules[0].forMs'],
    [{ name: 'a', metric: 'x', comparison: '>', value: 1, severity: 'loud' }, 'alerts.rules[0].severity'],
    [{ name: 'a', metric: 'x', comparison: '>', value: 1, clearValue: 2 }, 'alerts.rules[0].clearValue'],
    [{ name: 'a', metric: 'x', comparison: '>', value: 1, for: 3 }, 'alerts.rules[0].for'],
  ])('rejects %j naming %s', async (rule, field) => {
    await expectWhaleError(() => parseConfig({ ...base, alerts: { rules: [rule] } }, '/'), 'ERR_CONFIG', field);
  });

  it('rejects duplicate names and optimizer kinds that cannot be applied', async () => {
    const r = { name: 'a', metric: 'x', comparison: '>', value: 1 };
    await expectWhaleError(
      () => parseConfig({ ...base, alerts: { rules: [r, r] } }, '/'),
      'ERR_CONFIG',
      'alerts.rules[1].name',
    );
    await expectWhaleError(
      () => parseConfig({ ...base, resources: { optimizer: { apply: ['move-to-gpu'] } } }, '/'),
      'ERR_CONFIG',
      'resources.optimizer.apply[0]',
    );
  });
});
