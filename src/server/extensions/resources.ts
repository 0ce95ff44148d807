/**
 * The resource-management extension of `whale start`: before the models load
 * it builds the node's ResourceManager and grants every model its resources
 * (so an ONNX session is created with the granted threads and, without a GPU
 * share, on the CPU provider); once they are loaded it puts quota
 * admission in front of the scheduler and the CPU/GPU gates around batch
 * execution, serves /v1/resources and /v1/alerts (alerts.ts), runs the
 * optimizer on its timer (resources.optimizer), publishes metrics on
 * whale.metrics and alerts on whale.events. The TaskScheduler and ModelHost have no admission
 * hook, so this wraps their scheduleTask/runBatch on the server's instances
 * (restored on stop).
 */
import { readdirSync, statSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import { join } from 'node:path';

import type { Registry } from 'prom-client';

import { readEnv, type EnvSource } from '../../common/env.js';
import { createLogger } from '../../common/logger.js';
import type { WhaleConfig } from '../../config/whale-config.js';
import { engine } from '../../native/engine.js';
import type { ServerExtension, WhaleServer } from '../whale-server.js';
import type { ResourceAware } from '../../core/base/resource-aware.js';
import { storageOf, type NamedTensors, type TensorSpec } from '../../core/base/tensor.js';
import type { TaskRequest } from '../../core/processing/scheduler-config.js';
import type { GpuDevice } from '../../core/resource-management/allocator/gpu-allocator.js';
import { resourceRoutes } from './resources-routes.js';
import { createSystemSampler, type Sampler } from '../../core/resource-management/monitor/system-sampler.js';
import { registerResourceGauges } from './resources-gauges.js';
import { RedisQuotaStore } from '../../core/resource-management/quota/redis-quota-store.js';
import { ResourceManager } from '../../core/resource-management/resource-manager.js';
import type { ModelInterface } from '../../core/base/model.js';
import { wireAlerts } from './resources-alerts.js';

export interface ResourceExtensionOptions {
  sampler?: Sampler;
  /** GPUs to manage (default: the CUDA devices found); tests pass host-backed ones. */
  gpus?: GpuDevice[];
  gpuBackend?: 'cuda' | 'host';
  /** A prom-client registry for the resource gauges (else the server's `metrics.registry` if it has one). */
  registry?: Registry;
}

/** Bytes of a model file, or of the files in a model directory (tfjs); 0 when unknown. */
export function modelBytes(path: string | undefined): number {
  if (!path) return 0;
  try {
    const st = statSync(path);
    if (st.isFile()) return st.size;
    return readdirSync(path).reduce((n, f) => n + modelBytes(join(path, f)), 0);
  } catch {
    return 0;
  }
}

function inputBytes(input: unknown): number {
  let n = 0;
  if (typeof input !== 'object' || input === null) return 0;
  for (const t of Object.values(input as NamedTensors)) {
    const d = (t as { data?: unknown })?.data;
    if (ArrayBuffer.isView(d)) n += d.byteLength;
    else if (Array.isArray(d)) n += d.length * 8;
  }
  return n;
}

/**
 * Why the model's quota admits no request at all (hardening round 2, item 8: a memory quota of 0 made
 * every inference 429 while readiness said ready): no CPU, or less memory than the smallest request.
 */
export function quotaBlocks(
  manager: ResourceManager,
  model: string,
  inputs: readonly TensorSpec[],
): string | undefined {
  const q = manager.quotas.getQuota(model);
  if (!q) return undefined;
  if (q.cpu <= 0) return `model '${model}': its CPU quota is 0`;
  const smallest = inputs.reduce(
    (n, t) =>
      n +
      t.shape.reduce((p, d) => p * Math.max(1, d), 1) *
        ((storageOf(t.datatype) as { BYTES_PER_ELEMENT?: number } | undefined)?.BYTES_PER_ELEMENT ?? 1),
    0,
  );
  if (q.memory < Math.max(1, smallest))
    return `model '${model}': its memory quota (${q.memory} bytes) is below the smallest request (${Math.max(1, smallest)} bytes)`;
  return undefined;
}

function cudaDevices(): GpuDevice[] {
  try {
    return engine
      .devices()
      .devices.filter((d) => d.kind === 'cuda')
      .map((d) => ({
        id: d.id,
        index: (d as { index: number }).index,
        totalBytes:
          (d as { nvml?: { memoryTotal: number } }).nvml?.memoryTotal ?? (d as { totalMemory: number }).totalMemory,
      }));
  } catch {
    return [];
  }
}

/** How often the optimizer runs without a resources.optimizer section. */
export const DEFAULT_OPTIMIZE_MS = 60_000;

export class ResourceExtension implements ServerExtension {
  readonly name = 'resources';
  manager: ResourceManager | undefined;
  private restore: (() => void)[] = [];
  private stopping: Promise<void> | undefined;

  constructor(
    private readonly config: WhaleConfig,
    private readonly env: EnvSource | undefined = undefined,
    private readonly opts: ResourceExtensionOptions = {},
  ) {}

  /** Builds the manager and grants each model its resources before it loads. */
  async beforeLoad(server: WhaleServer, models: readonly ModelInterface[]): Promise<void> {
    const manager = this.build(server);
    try {
      for (const model of models) {
        const cfg = this.config.models.find((m) => m.name === model.name);
        manager.register(
          model.name,
          model as Partial<ResourceAware> & ModelInterface,
          cfg?.resources ?? {},
          modelBytes(cfg?.path),
        );
      }
      // Quotas set at run time through any node (Redis): applied before the models load, and as they change.
      await manager.quotas.followShared(
        (m) => manager.modelNames().includes(m),
        (err) => createLogger('resources').warn('shared quota setting not applied', { error: err.message }),
      );
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  async start(server: WhaleServer): Promise<void> {
    // Without beforeLoad (a caller that starts it by hand): grants now, to the loaded models.
    if (!this.manager)
      await this.beforeLoad(
        server,
        server.host.names().map((n) => server.host.get(n)),
      );
    const manager = this.manager!;
    this.gate(server, manager);
    this.restore.push(
      server.addServingCheck((model) =>
        quotaBlocks(manager, model, server.host.has(model) ? server.host.get(model).inputs : []),
      ),
    );
    server.http.addHandler(resourceRoutes(manager));
    this.restore.push(wireAlerts(server, manager, this.config.alerts?.rules ?? []));
    const registry =
      this.opts.registry ?? (server as unknown as { metrics?: { registry?: Registry } }).metrics?.registry;
    if (registry) registerResourceGauges(registry, manager);
    manager.start();
  }

  private build(server: WhaleServer): ResourceManager {
    let threads = availableParallelism();
    try {
      threads = engine.build().threads;
    } catch {
      // no addon: the machine's parallelism
    }
    const redisUrl = readEnv(this.env).redisUrl;
    const manager = new ResourceManager({
      cpuUnits: threads,
      memoryBytes: totalmem(),
      gpus: this.opts.gpus ?? cudaDevices(),
      gpuBackend: this.opts.gpuBackend ?? 'cuda',
      sampler: this.opts.sampler ?? createSystemSampler(),
      ...(redisUrl ? { store: new RedisQuotaStore({ url: redisUrl }) } : {}),
      ...(this.config.resources?.intervalMs ? { intervalMs: this.config.resources.intervalMs } : {}),
      ...(this.config.resources?.tenants ? { tenants: this.config.resources.tenants } : {}),
      // The optimizer always runs (its proposals listed on /v1/resources); it applies only what resources.optimizer.apply allows.
      optimizeEveryMs: this.config.resources?.optimizer?.intervalMs ?? DEFAULT_OPTIMIZE_MS,
      apply: this.config.resources?.optimizer?.apply ?? [],
      maxBatchSize: Object.fromEntries(this.config.models.map((m) => [m.name, m.batching.maxBatchSize])),
      publishMetric: (name, value, labels) => server.messaging.publishMetric(name, value, labels),
      publishEvent: (type, data) => server.messaging.publishEvent(type, data),
    });
    this.manager = manager;
    return manager;
  }

  async stop(): Promise<void> {
    for (const r of this.restore.splice(0)) r();
    const m = this.manager;
    if (!m) return;
    this.stopping ??= (async () => {
      for (const name of m.modelNames()) m.unregister(name);
      await m.stop();
    })();
    await this.stopping;
  }

  private gate(server: WhaleServer, manager: ResourceManager): void {
    // A model's own generate() stream runs outside the scheduler: the same admission, held for the whole stream.
    server.pipeline.setAdmission((model, tenant, inputs) => manager.admit(model, tenant, inputBytes(inputs)));
    this.restore.push(() => server.pipeline.setAdmission(undefined));
    const scheduler = server.scheduler;
    const schedule = scheduler.scheduleTask;
    scheduler.scheduleTask = async (request: TaskRequest): Promise<unknown> => {
      const permit = await manager.admit(request?.model, request?.tenant, inputBytes(request?.input));
      try {
        return await schedule.call(scheduler, request);
      } finally {
        permit.release();
      }
    };
    const host = server.host;
    const runBatch = host.runBatch;
    host.runBatch = (name: string, inputs: NamedTensors[]) =>
      manager.runBatch(
        name,
        inputs.length,
        () => runBatch.call(host, name, inputs),
        inputs.reduce((n, i) => n + inputBytes(i), 0),
      );
    this.restore.push(
      () => (scheduler.scheduleTask = schedule),
      () => (host.runBatch = runBatch),
    );
  }
}

export function resourceExtension(config: WhaleConfig, env?: EnvSource): ServerExtension {
  return new ResourceExtension(config, env);
}
