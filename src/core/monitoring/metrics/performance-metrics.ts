/**
 * PerformanceMetrics: the seed's recording API on top of WhaleMetrics.
 * recordPerformanceMetrics(modelId, accuracy, latency, resourceUsage) keeps
 * the last records per model (collectMetrics) and updates the Prometheus
 * series; recordFederationRound does the same for federated rounds.
 */
import { WhaleError } from '../../../common/errors.js';
import { checkNonNegative, WhaleMetrics } from './whale-metrics.js';

/** cpu / gpu as ratios in [0, 1], memory and the like in bytes; any finite figure >= 0. */
export type ResourceUsage = Record<string, number>;

export interface PerformanceRecord {
  modelId: string;
  accuracy: number;
  /** Seconds. */
  latency: number;
  resourceUsage: ResourceUsage;
  timestamp: number;
}

export interface FederationRound {
  round: number;
  accuracy?: number;
  clients?: number;
  durationSeconds?: number;
}

export interface PerformanceSummary {
  modelId: string;
  records: number;
  meanAccuracy: number;
  meanLatency: number;
  last: PerformanceRecord | undefined;
}

const ID = /^[A-Za-z0-9_.:/-]{1,128}$/;

const shared = new WeakMap<WhaleMetrics, PerformanceMetrics>();

/** The one PerformanceMetrics of a registry (a node's monitoring and quality extensions record through the same one). */
export function performanceMetricsOf(metrics: WhaleMetrics): PerformanceMetrics {
  let p = shared.get(metrics);
  if (!p) shared.set(metrics, (p = new PerformanceMetrics({ metrics })));
  return p;
}

export class PerformanceMetrics {
  readonly metrics: WhaleMetrics;
  private readonly history = new Map<string, PerformanceRecord[]>();
  private readonly keep: number;

  constructor(o: { metrics?: WhaleMetrics; keepPerModel?: number } = {}) {
    this.metrics = o.metrics ?? new WhaleMetrics();
    this.keep = o.keepPerModel ?? 1000;
    if (!Number.isInteger(this.keep) || this.keep < 1)
      throw new WhaleError('ERR_INVALID_OPTION', 'options.keepPerModel: must be an integer >= 1', {
        field: 'options.keepPerModel',
      });
  }

  /** accuracy in [0, 1], latency in seconds, resourceUsage as figures >= 0 by resource name. */
  recordPerformanceMetrics(
    modelId: string,
    accuracy: number,
    latency: number,
    resourceUsage: ResourceUsage = {},
  ): PerformanceRecord {
    checkId(modelId, 'modelId');
    checkRatio(accuracy, 'accuracy');
    checkNonNegative(latency, 'latency');
    if (typeof resourceUsage !== 'object' || resourceUsage === null || Array.isArray(resourceUsage)) {
      throw new WhaleError('ERR_INVALID_ARG', 'resourceUsage: must be an object of figures by resource name', {
        field: 'resourceUsage',
      });
    }
    const usage: ResourceUsage = {};
    for (const [k, v] of Object.entries(resourceUsage)) {
      checkId(k, `resourceUsage.${k}`);
      checkNonNegative(v, `resourceUsage.${k}`);
      usage[k] = v;
    }
    const record: PerformanceRecord = { modelId, accuracy, latency, resourceUsage: usage, timestamp: Date.now() };
    this.metrics.modelAccuracy.set({ model: modelId }, accuracy);
    this.metrics.modelLatency.observe({ model: modelId }, latency);
    for (const [resource, v] of Object.entries(usage))
      this.metrics.modelResourceUsage.set({ model: modelId, resource }, v);
    const list = this.history.get(modelId) ?? [];
    list.push(record);
    if (list.length > this.keep) list.splice(0, list.length - this.keep);
    this.history.set(modelId, list);
    return record;
  }

  recordFederationRound(modelId: string, r: FederationRound): void {
    checkId(modelId, 'modelId');
    if (!Number.isInteger(r?.round) || r.round < 0)
      throw new WhaleError('ERR_INVALID_ARG', 'round.round: must be an integer >= 0', { field: 'round.round' });
    if (r.accuracy !== undefined) checkRatio(r.accuracy, 'round.accuracy');
    if (r.clients !== undefined) checkNonNegative(r.clients, 'round.clients');
    if (r.durationSeconds !== undefined) checkNonNegative(r.durationSeconds, 'round.durationSeconds');
    this.metrics.federationRounds.inc({ model: modelId });
    if (r.accuracy !== undefined) this.metrics.federationAccuracy.set({ model: modelId }, r.accuracy);
    if (r.clients !== undefined) this.metrics.federationClients.set({ model: modelId }, r.clients);
    if (r.durationSeconds !== undefined)
      this.metrics.federationRoundDuration.observe({ model: modelId }, r.durationSeconds);
  }

  /** The seed's collectMetrics: a summary of the recorded performance of one model, or of all. */
  collectMetrics(modelId?: string): PerformanceSummary[] {
    const ids = modelId === undefined ? [...this.history.keys()] : [modelId];
    return ids.map((id) => {
      const list = this.history.get(id) ?? [];
      const mean = (f: (r: PerformanceRecord) => number) =>
        list.length === 0 ? 0 : list.reduce((s, r) => s + f(r), 0) / list.length;
      return {
        modelId: id,
        records: list.length,
        meanAccuracy: mean((r) => r.accuracy),
        meanLatency: mean((r) => r.latency),
        last: list.at(-1),
      };
    });
  }
}

function checkId(v: unknown, field: string): asserts v is string {
  if (typeof v !== 'string' || !ID.test(v))
    throw new WhaleError('ERR_INVALID_ARG', `${field}: must be 1-128 characters of A-Z a-z 0-9 _ . : / -`, { field });
}

function checkRatio(v: unknown, field: string): asserts v is number {
  if (typeof v !== 'number' || !(v >= 0 && v <= 1))
    throw new WhaleError('ERR_INVALID_ARG', `${field}: must be a number in [0, 1], got ${String(v)}`, { field });
}
