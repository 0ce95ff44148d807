/**
 * ResourceManager: the node's allocators, quotas, monitor and alerts
 * together (resource thresholds are `levels` rules of its AlertManager, whose
 * events go to `resource.alert`). register() reserves a model's resources (CPU units, memory
 * for its weights, a GPU share placed by the load balancer) and grants them to
 * the model (ResourceAware); unregister() frees them and reports what leaked.
 * admit() and runBatch() are the request path: quotas and batch-buffer memory
 * at admission, CPU slot and GPU kernel time around execution (and, for a
 * model with a GPU share, its weights and each batch's buffers in the native
 * GPU pool, capped at the share). With `optimizeEveryMs` the ResourceOptimizer
 * runs on a timer: proposals the `apply` list allows are applied (quota
 * changes), the others listed with why not (snapshot().proposals).
 */
import { WhaleError } from '../../common/errors.js';
import { silentLogger, type Logger } from '../../common/logger.js';
import type { ResourceAware } from '../base/resource-aware.js';
import { AlertManager, RESOURCE_ALERT_EVENT, type Alert } from '../monitoring/visualization/alert-manager.js';
import { CpuAllocator } from './allocator/cpu-allocator.js';
import { GpuAllocator, type GpuDevice } from './allocator/gpu-allocator.js';
import { MemoryAllocator, type MemoryReservation } from './allocator/memory-allocator.js';
import type { ModelResourcesConfig } from './config.js';
import { ModelUsage } from './monitor/model-usage.js';
import { ResourceMonitor, type MetricPublisher, type ModelMetrics } from './monitor/resource-monitor.js';
import type { Sampler } from './monitor/system-sampler.js';
import { LoadBalancer } from './optimizer/load-balancer.js';
import { applyProposals } from './optimizer/apply-proposals.js';
import { ResourceOptimizer, type Proposal, type ProposalKind } from './optimizer/resource-optimizer.js';
import { QuotaManager, type Permit, type RateLimit } from './quota/quota-manager.js';
import { LocalQuotaStore, type QuotaStore } from './quota/quota-store.js';

/** A model that runs on the GPU its share was placed on (OnnxModel: the CUDA provider's deviceId). */
export interface DevicePlaced {
  placeOnDevice(index: number): void;
}

/** Publishes an event on whale.events (MessagingService.publishEvent). */
export type EventPublisher = (type: string, data: unknown) => Promise<void> | void;

export interface ResourceManagerOptions {
  cpuUnits: number;
  memoryBytes?: number;
  gpus?: GpuDevice[];
  gpuBackend?: 'cuda' | 'host';
  sampler: Sampler;
  store?: QuotaStore;
  intervalMs?: number;
  tenants?: Record<string, RateLimit>;
  publishMetric?: MetricPublisher;
  publishEvent?: EventPublisher;
  logger?: Logger;
  clock?: () => number;
  /** Runs the optimizer every N ms (default: never; propose()/optimize() on demand). */
  optimizeEveryMs?: number;
  /** Proposal kinds the timer may apply (raise-/lower-memory-quota, raise-cpu-quota); the rest are listed. */
  apply?: readonly ProposalKind[];
  /** Largest batch per model (the optimizer's batch-size rule). */
  maxBatchSize?: Record<string, number>;
}

interface Registered {
  model: Partial<ResourceAware>;
  config: ModelResourcesConfig;
  weights: MemoryReservation | undefined;
  weightBytes: number;
  gpuDevice: string | undefined;
  /** The weights' block in the GPU pool (while the model has a GPU share). */
  gpuWeights: number | undefined;
  note: string | undefined;
}

export class ResourceManager {
  readonly cpu: CpuAllocator;
  readonly memory: MemoryAllocator;
  readonly gpu: GpuAllocator;
  readonly quotas: QuotaManager;
  /** Resource thresholds are its `levels` rules (addRule), on the monitor's flat figures (see flatten); events go to `resource.alert`. */
  readonly alerts: AlertManager;
  readonly usage: ModelUsage;
  readonly monitor: ResourceMonitor;
  readonly balancer = new LoadBalancer({ policy: 'least-loaded' });
  readonly optimizer: ResourceOptimizer;
  private readonly models = new Map<string, Registered>();
  private proposals: Proposal[] = [];
  private readonly leaks: { model: string; memoryBytes: number; gpuBytes: number }[] = [];
  private optimizeTimer: NodeJS.Timeout | undefined;

  constructor(private readonly o: ResourceManagerOptions) {
    this.cpu = new CpuAllocator({ totalUnits: o.cpuUnits, ...(o.clock ? { clock: o.clock } : {}) });
    this.memory = new MemoryAllocator(o.memoryBytes ?? Infinity);
    this.gpu = new GpuAllocator({ devices: o.gpus ?? [], backend: o.gpuBackend ?? 'cuda' });
    this.quotas = new QuotaManager(o.store ?? new LocalQuotaStore());
    for (const [t, l] of Object.entries(o.tenants ?? {})) this.quotas.setRateLimit('tenant', t, l);
    this.quotas.onQuotaChange((model, q) => this.applyQuota(model, q));
    const publishEvent = o.publishEvent;
    this.alerts = new AlertManager({
      logger: o.logger ?? silentLogger,
      ...(publishEvent
        ? { publish: async (type: string, data: unknown) => void (await publishEvent(type, data)) }
        : {}),
      eventType: () => RESOURCE_ALERT_EVENT,
      // An event the bus refuses is retried (about once a sampling interval) until it goes: none is lost, the oldest beyond 10,000 are dropped.
      delivery: { maxAttempts: Infinity, maxBackoffMs: o.intervalMs ?? 2000, maxQueued: 10_000 },
    });
    this.usage = new ModelUsage(o.clock);
    this.optimizer = new ResourceOptimizer(o.logger);
    this.monitor = new ResourceMonitor({
      sampler: o.sampler,
      models: () => this.modelMetrics(),
      intervalMs: o.intervalMs ?? 2000,
      alerts: this.alerts,
      ...(o.publishMetric ? { publish: o.publishMetric } : {}),
      ...(o.logger ? { logger: o.logger } : {}),
    });
  }

  /** Reserves the model's resources and grants them to it. Throws ERR_QUOTA_EXCEEDED when its weights exceed its memory quota. */
  register(name: string, model: Partial<ResourceAware>, config: ModelResourcesConfig = {}, weightBytes = 0): void {
    if (this.models.has(name))
      throw new WhaleError('ERR_CONFLICT', `model '${name}' already has resources`, { field: 'name' });
    const entry: Registered = {
      model,
      config,
      weights: undefined,
      weightBytes,
      gpuDevice: undefined,
      gpuWeights: undefined,
      note: undefined,
    };
    this.models.set(name, entry);
    try {
      this.quotas.setQuota(name, config.cpu ?? this.cpu.totalUnits, config.memory ?? Infinity, config.gpu ?? 0);
      if (config.requestsPerSecond !== undefined || config.maxConcurrent !== undefined)
        this.quotas.setRateLimit('model', name, config);
      entry.weights = this.memory.reserve(name, weightBytes, 'weights');
    } catch (err) {
      this.unregister(name);
      throw err;
    }
  }

  /** Frees the model's resources; what it still held is recorded as a leak (visible in snapshot()). */
  unregister(name: string): void {
    const e = this.models.get(name);
    if (!e) return;
    e.weights?.release();
    this.freeGpuWeights(name, e);
    const gpuBytes = this.gpu.release(name);
    this.cpu.release(name);
    const memoryBytes = this.memory.remove(name);
    this.quotas.removeQuota(name);
    this.quotas.setRateLimit('model', name, {});
    e.model.releaseResources?.();
    this.models.delete(name);
    if (memoryBytes > 0 || gpuBytes > 0) {
      this.leaks.push({ model: name, memoryBytes, gpuBytes });
      this.o.logger?.warn('model released with resources still held', { model: name, memoryBytes, gpuBytes });
    }
  }

  /** Admission: rate/concurrency quotas, then the request's buffer bytes against the model's memory quota. */
  async admit(model: string, tenant: string | undefined, inputBytes: number): Promise<Permit> {
    const permit = await this.quotas.admit(model, tenant);
    let buffer: MemoryReservation | undefined;
    try {
      if (this.models.has(model)) buffer = this.memory.reserve(model, inputBytes, 'batch');
    } catch (err) {
      permit.release();
      throw err;
    }
    return {
      release: () => {
        buffer?.release();
        permit.release();
      },
    };
  }

  /**
   * Runs a batch inside the model's CPU slot and GPU time share, recording what it used. A model with a GPU
   * share holds `bytes` (the batch's buffers) in the GPU pool while it runs: ERR_QUOTA_EXCEEDED beyond the share.
   */
  async runBatch<T>(model: string, rows: number, run: () => Promise<T>, bytes = 0): Promise<T> {
    const slot = await this.cpu.acquire(model);
    let gpu: { release(): void } | undefined;
    let block: number | undefined;
    try {
      if (bytes > 0 && this.gpu.share(model)) block = this.gpu.allocateMemory(model, bytes);
      gpu = await this.gpu.acquireKernelTime(model);
      const done = this.usage.begin(model, rows);
      try {
        const out = await run();
        done(true);
        return out;
      } catch (err) {
        done(false);
        throw err;
      }
    } finally {
      gpu?.release();
      if (block !== undefined) this.gpu.freeMemory(model, block);
      slot.release();
    }
  }

  start(): void {
    this.monitor.start();
    const every = this.o.optimizeEveryMs;
    if (every && !this.optimizeTimer) {
      this.optimizeTimer = setInterval(() => {
        try {
          this.optimize();
        } catch (err) {
          this.o.logger?.warn('resource optimizer failed', { error: (err as Error).message });
        }
      }, every);
      this.optimizeTimer.unref();
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.optimizeTimer);
    this.optimizeTimer = undefined;
    await this.monitor.stop();
    // Stops retrying: what the bus still refuses gets one more attempt.
    await this.alerts.close();
    await this.quotas.close().catch(() => undefined);
  }

  /** The alerts firing, and how their events fared on the bus (sent, waiting, given up). */
  alertStats(): { firing: number; sent: number; pending: number; dropped: number; active: Alert[] } {
    const d = this.alerts.deliveryStats();
    const active = this.alerts.active();
    return { firing: active.length, sent: d.delivered, pending: d.pending, dropped: d.failed, active };
  }

  /** Proposals from the monitor's recent history (also kept for snapshot()). */
  propose(maxBatchSize: Record<string, number> = this.o.maxBatchSize ?? {}): Proposal[] {
    const budgets: Record<string, number> = {};
    const cpuQuotas: Record<string, number> = {};
    let granted = 0;
    for (const m of this.models.keys()) {
      budgets[m] = this.memory.usage(m)?.budget ?? Infinity;
      cpuQuotas[m] = this.quotas.getQuota(m)?.cpu ?? 0;
      granted += cpuQuotas[m];
    }
    this.proposals = this.optimizer.propose(this.monitor.recent(), {
      memoryBudgets: budgets,
      cpuModelsWithGpuPath: [],
      gpuAvailable: this.gpu.deviceIds().length > 0,
      maxBatchSize,
      cpuQuotas,
      freeCpuUnits: Math.max(0, Math.floor(this.cpu.totalUnits - granted)),
    });
    return this.proposals;
  }

  /**
   * propose(), then applies each proposal whose kind `apply` (default: the options' list) allows and that
   * carries a quota change; every proposal says whether it was applied and, if not, why. Applied ones are
   * published as `resource.proposal` events.
   */
  optimize(apply: readonly ProposalKind[] = this.o.apply ?? []): Proposal[] {
    const publish = this.o.publishEvent;
    return applyProposals(this.propose(), {
      quotas: this.quotas,
      apply,
      ...(publish
        ? { applied: (p: Proposal) => void Promise.resolve(publish('resource.proposal', p)).catch(() => undefined) }
        : {}),
      ...(this.o.logger ? { logger: this.o.logger } : {}),
    });
  }

  modelNames(): string[] {
    return [...this.models.keys()];
  }

  async snapshot(): Promise<Record<string, unknown>> {
    const tick = this.monitor.latest();
    const quotas = await this.quotas.snapshot();
    const models: Record<string, unknown> = {};
    const metrics = this.modelMetrics();
    for (const [name, e] of this.models) {
      models[name] = {
        granted: e.model.resourceStatus?.().allocated ?? null,
        runtime: runtimeOf(e.model),
        quota: this.quotas.getQuota(name) ?? null,
        rateLimit: this.quotas.getRateLimit('model', name) ?? null,
        cpu: this.cpu.snapshot().models[name] ?? null,
        memory: this.memory.usage(name) ?? null,
        gpu: this.gpu.usage(name) ?? null,
        usage: metrics[name],
        ...(e.note ? { note: e.note } : {}),
      };
    }
    return {
      timestamp: Date.now(),
      devices: {
        cpu: { units: this.cpu.totalUnits, cores: tick?.sample.cpu.cores ?? null },
        gpus: tick?.sample.gpus ?? [],
        ...(tick?.sample.gpuNote ? { gpuNote: tick.sample.gpuNote } : {}),
      },
      usage: tick
        ? { cpu: tick.sample.cpu, memory: tick.sample.memory, disks: tick.sample.disks, network: tick.sample.network }
        : null,
      allocations: { cpu: this.cpu.snapshot(), memory: this.memory.snapshot(), gpuPools: this.gpu.stats() },
      models,
      quotas,
      alerts: this.alertStats(),
      proposals: this.proposals,
      leaks: this.leaks,
      monitor: this.monitor.stats(),
    };
  }

  private applyQuota(model: string, q: { cpu: number; memory: number; gpu: number } | undefined): void {
    const e = this.models.get(model);
    if (!e || !q) return;
    if (q.cpu > 0) this.cpu.allocate(model, q.cpu);
    this.memory.setBudget(model, q.memory);
    let gpuShare = 0;
    if (q.gpu > 0) {
      const devices = this.gpu.deviceIds();
      if (devices.length === 0) {
        e.note = `asked for a GPU share of ${q.gpu} but this node has no usable GPU`;
      } else {
        const stats = this.gpu.stats();
        const placed =
          e.gpuDevice ??
          this.balancer.distributeLoad(
            [{ id: model, cost: q.gpu }],
            devices.map((d) => ({
              id: d,
              load: stats[d]!.allocated / stats[d]!.totalBytes,
              freeBytes: stats[d]!.totalBytes - stats[d]!.allocated,
            })),
          ).placements[model];
        if (placed) {
          this.gpu.allocate(model, placed, Math.min(1, q.gpu));
          e.gpuDevice = placed;
          gpuShare = q.gpu;
          // A model that can choose its device runs on the one its share was placed on (before it loads).
          const index = this.o.gpus?.find((d) => d.id === placed)?.index;
          if (index !== undefined) (e.model as Partial<DevicePlaced>).placeOnDevice?.(index);
          // The weights live in the share: a model whose weights exceed it cannot be placed (ERR_QUOTA_EXCEEDED).
          if (e.gpuWeights === undefined && e.weightBytes > 0)
            e.gpuWeights = this.gpu.allocateMemory(model, e.weightBytes);
        }
      }
    } else if (e.gpuDevice) {
      this.freeGpuWeights(model, e);
      this.gpu.release(model);
      e.gpuDevice = undefined;
    }
    if (q.cpu > 0 || gpuShare > 0)
      e.model.allocateResources?.(q.cpu, Number.isFinite(q.memory) ? q.memory : 0, gpuShare);
  }

  private freeGpuWeights(model: string, e: Registered): void {
    if (e.gpuWeights === undefined) return;
    this.gpu.freeMemory(model, e.gpuWeights);
    e.gpuWeights = undefined;
  }

  private modelMetrics(): Record<string, ModelMetrics> {
    const out: Record<string, ModelMetrics> = {};
    for (const name of this.models.keys()) {
      const u = this.usage.get(name);
      out[name] = {
        batches: u?.batches ?? 0,
        rows: u?.rows ?? 0,
        wallMs: u?.wallMs ?? 0,
        cpuMs: u?.cpuMs ?? 0,
        memoryBytes: this.memory.usage(name)?.used ?? 0,
        gpuBytes: this.gpu.usage(name)?.allocated ?? 0,
      };
    }
    return out;
  }
}

/** How the grant was applied, as the model describes itself (provider, device, intra-op threads), or null. */
function runtimeOf(model: object): Record<string, unknown> | null {
  const describe = (model as { describe?: () => Record<string, unknown> }).describe;
  if (typeof describe !== 'function') return null;
  const d = describe.call(model);
  const out: Record<string, unknown> = {};
  for (const k of ['provider', 'device', 'intraOpThreads']) if (d[k] !== undefined) out[k] = d[k];
  return Object.keys(out).length > 0 ? out : null;
}
