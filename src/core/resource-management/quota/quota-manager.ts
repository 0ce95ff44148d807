/**
 * QuotaManager: resource quotas per model (CPU units, memory bytes, GPU share)
 * and rate limits per model and per tenant (requests/s through a token bucket,
 * concurrent requests), all changeable at run time. admit() is what the
 * scheduler's admission consults: it resolves with a Permit to release when
 * the request is answered, or rejects with ERR_QUOTA_EXCEEDED (requests/s)
 * or ERR_OVERLOADED (concurrency), both retriable with `retryAfterMs`.
 */
import { WhaleError } from '../../../common/errors.js';
import { LocalQuotaStore, type QuotaStore } from './quota-store.js';

export interface ResourceQuota {
  /** CPU units (worker slots, fractional allowed). */
  cpu: number;
  /** Memory bytes. */
  memory: number;
  /** GPU share: 0.5 is half a device (memory fraction and kernel time). */
  gpu: number;
}

export interface RateLimit {
  requestsPerSecond?: number;
  /** Bucket size (default: one second of requests, at least 1). */
  burst?: number;
  maxConcurrent?: number;
}

export interface Permit {
  release(): void;
}

export type QuotaScope = 'model' | 'tenant';

/** A model's quota settings as the nodes share them. */
interface SharedSetting {
  quota: ResourceQuota;
  rateLimit: RateLimit;
}

function check(v: unknown, field: string, opts: { min?: number; integer?: boolean } = {}): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < (opts.min ?? 0) || (opts.integer && !Number.isInteger(v))) {
    throw new WhaleError(
      'ERR_INVALID_ARG',
      `${field}: expected a finite ${opts.integer ? 'integer' : 'number'} >= ${opts.min ?? 0}, got ${String(v)}`,
      { field },
    );
  }
  return v;
}

function checkName(v: unknown, field: string): string {
  if (typeof v !== 'string' || v === '' || v.length > 256)
    throw new WhaleError('ERR_INVALID_ARG', `${field}: expected a non-empty name`, { field });
  return v;
}

export function validateRateLimit(limit: RateLimit, at: string): RateLimit {
  if (typeof limit !== 'object' || limit === null)
    throw new WhaleError('ERR_INVALID_ARG', `${at}: expected an object`, { field: at });
  const out: RateLimit = {};
  if (limit.requestsPerSecond !== undefined)
    out.requestsPerSecond = check(limit.requestsPerSecond, `${at}.requestsPerSecond`, { min: 1e-6 });
  if (limit.burst !== undefined) out.burst = check(limit.burst, `${at}.burst`, { min: 1 });
  if (limit.maxConcurrent !== undefined)
    out.maxConcurrent = check(limit.maxConcurrent, `${at}.maxConcurrent`, { min: 1, integer: true });
  return out;
}

export class QuotaManager {
  private readonly quotas = new Map<string, ResourceQuota>();
  private readonly limits = { model: new Map<string, RateLimit>(), tenant: new Map<string, RateLimit>() };
  private readonly listeners: ((modelId: string, quota: ResourceQuota | undefined) => void)[] = [];
  private rejected = { rate: 0, concurrency: 0 };

  constructor(readonly store: QuotaStore = new LocalQuotaStore()) {}

  /** Sets (or replaces) the model's resource quota (memory Infinity: no budget); the allocators follow at once. */
  setQuota(modelId: string, cpu: number, memory: number, gpu: number): ResourceQuota {
    checkName(modelId, 'modelId');
    // memory may be Infinity: no budget.
    const q = {
      cpu: check(cpu, 'cpu'),
      memory: memory === Infinity ? memory : check(memory, 'memory'),
      gpu: check(gpu, 'gpu'),
    };
    this.quotas.set(modelId, q);
    for (const l of this.listeners) l(modelId, q);
    return { ...q };
  }

  removeQuota(modelId: string): void {
    if (this.quotas.delete(modelId)) for (const l of this.listeners) l(modelId, undefined);
  }

  getQuota(modelId: string): ResourceQuota | undefined {
    const q = this.quotas.get(modelId);
    return q ? { ...q } : undefined;
  }

  /** Called on every quota change (the resource manager re-applies the allocators' caps). */
  onQuotaChange(listener: (modelId: string, quota: ResourceQuota | undefined) => void): void {
    this.listeners.push(listener);
  }

  /** Rate limits of a model or tenant; an empty object removes them. */
  setRateLimit(scope: QuotaScope, name: string, limit: RateLimit): void {
    if (scope !== 'model' && scope !== 'tenant')
      throw new WhaleError('ERR_INVALID_ARG', `scope: expected 'model' or 'tenant'`, { field: 'scope' });
    checkName(name, 'name');
    const v = validateRateLimit(limit, `${scope}s.${name}`);
    if (v.requestsPerSecond === undefined && v.maxConcurrent === undefined) this.limits[scope].delete(name);
    else this.limits[scope].set(name, v);
  }

  getRateLimit(scope: QuotaScope, name: string): RateLimit | undefined {
    const l = this.limits[scope].get(name);
    return l ? { ...l } : undefined;
  }

  /**
   * Changes the model's quota and rate limit (the fields given; the others stay) here and, with a shared
   * store (Redis), on every node: the setting is saved there and announced (followShared applies it).
   */
  async updateModel(
    modelId: string,
    change: Partial<ResourceQuota> & RateLimit,
  ): Promise<{ quota: ResourceQuota; rateLimit: RateLimit | undefined }> {
    const cur = this.quotas.get(modelId);
    if (!cur)
      throw new WhaleError('ERR_MODEL_NOT_FOUND', `no model named '${modelId}' has a quota`, { field: 'model' });
    const limit: RateLimit = { ...this.limits.model.get(modelId) };
    for (const k of ['requestsPerSecond', 'burst', 'maxConcurrent'] as const)
      if (change[k] !== undefined) limit[k] = change[k];
    const setting: SharedSetting = {
      quota: { cpu: change.cpu ?? cur.cpu, memory: change.memory ?? cur.memory, gpu: change.gpu ?? cur.gpu },
      rateLimit: limit,
    };
    this.applySetting(modelId, setting);
    const q = setting.quota;
    await this.store.shareSetting?.(`model:${modelId}`, {
      ...setting,
      quota: { ...q, memory: Number.isFinite(q.memory) ? q.memory : null },
    });
    return { quota: this.getQuota(modelId)!, rateLimit: this.getRateLimit('model', modelId) };
  }

  /**
   * With a shared store: applies the settings other nodes saved (for the models `hosts` accepts) and, from
   * now on, each one announced. A setting that does not validate is reported to onError and skipped.
   */
  async followShared(hosts: (modelId: string) => boolean, onError?: (err: Error) => void): Promise<void> {
    if (!this.store.watchSettings) return;
    const apply = (key: string, value: unknown): void => {
      if (!key.startsWith('model:') || !hosts(key.slice(6))) return;
      try {
        const v = value as { quota?: { cpu: number; memory: number | null; gpu: number }; rateLimit?: RateLimit };
        if (!v?.quota) throw new WhaleError('ERR_INVALID_ARG', `${key}: a shared setting without a quota`);
        this.applySetting(key.slice(6), {
          quota: { ...v.quota, memory: v.quota.memory === null ? Infinity : v.quota.memory },
          rateLimit: v.rateLimit ?? {},
        });
      } catch (err) {
        onError?.(err as Error);
      }
    };
    const saved = await this.store.watchSettings(apply);
    for (const [k, v] of Object.entries(saved)) apply(k, v);
  }

  private applySetting(modelId: string, s: SharedSetting): void {
    const limit = validateRateLimit(s.rateLimit, `models.${modelId}`);
    this.setQuota(modelId, s.quota.cpu, s.quota.memory, s.quota.gpu);
    this.setRateLimit('model', modelId, limit);
  }

  /** Admission: a Permit when the model and tenant are within their limits; the typed error otherwise. */
  async admit(model: string, tenant = 'default'): Promise<Permit> {
    const checks: [QuotaScope, string, RateLimit][] = [];
    const ml = this.limits.model.get(model);
    if (ml) checks.push(['model', model, ml]);
    const tl = this.limits.tenant.get(tenant);
    if (tl) checks.push(['tenant', tenant, tl]);
    if (checks.length === 0) return NO_OP;
    // Concurrency first (a refused request must not spend a token), then the buckets.
    const held: string[] = [];
    const releaseAll = (): void => {
      for (const key of held.splice(0)) void Promise.resolve(this.store.release(key)).catch(() => undefined);
    };
    try {
      for (const [scope, name, l] of checks) {
        if (l.maxConcurrent === undefined) continue;
        const key = `${scope}:${name}`;
        if (!(await this.store.acquire(key, l.maxConcurrent))) {
          this.rejected.concurrency++;
          throw new WhaleError(
            'ERR_OVERLOADED',
            `${scope} '${name}' has ${l.maxConcurrent} requests in flight (its maxConcurrent quota)`,
            {
              field: scope,
              [scope]: name,
              resource: 'concurrent_requests',
              retriable: true,
              retryAfterMs: 10,
            },
          );
        }
        held.push(key);
      }
      for (const [scope, name, l] of checks) {
        if (l.requestsPerSecond === undefined) continue;
        const burst = l.burst ?? Math.max(1, l.requestsPerSecond);
        const r = await this.store.take(`${scope}:${name}`, l.requestsPerSecond, burst);
        if (!r.ok) {
          this.rejected.rate++;
          throw new WhaleError(
            'ERR_QUOTA_EXCEEDED',
            `${scope} '${name}' is over its quota of ${l.requestsPerSecond} requests/s; retry after ${r.retryAfterMs} ms`,
            {
              field: scope,
              [scope]: name,
              resource: 'requests_per_second',
              retriable: true,
              retryAfterMs: r.retryAfterMs,
            },
          );
        }
      }
    } catch (err) {
      releaseAll();
      throw err;
    }
    if (held.length === 0) return NO_OP;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        releaseAll();
      },
    };
  }

  /** Quotas, limits and rejection counts (for /v1/resources). */
  async snapshot(): Promise<{
    store: string;
    models: Record<string, { quota?: ResourceQuota; limit?: RateLimit; inFlight?: number }>;
    tenants: Record<string, { limit: RateLimit; inFlight?: number }>;
    rejected: { rate: number; concurrency: number };
  }> {
    const models: Record<string, { quota?: ResourceQuota; limit?: RateLimit; inFlight?: number }> = {};
    for (const [m, q] of this.quotas) models[m] = { quota: { ...q } };
    for (const [m, l] of this.limits.model) {
      models[m] = { ...models[m], limit: { ...l } };
      if (l.maxConcurrent !== undefined) models[m]!.inFlight = await this.store.held(`model:${m}`);
    }
    const tenants: Record<string, { limit: RateLimit; inFlight?: number }> = {};
    for (const [t, l] of this.limits.tenant) {
      tenants[t] = { limit: { ...l } };
      if (l.maxConcurrent !== undefined) tenants[t]!.inFlight = await this.store.held(`tenant:${t}`);
    }
    return { store: this.store.kind, models, tenants, rejected: { ...this.rejected } };
  }

  close(): Promise<void> {
    return this.store.close();
  }
}

const NO_OP: Permit = { release: () => undefined };
