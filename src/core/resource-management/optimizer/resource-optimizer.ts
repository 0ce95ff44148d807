/**
 * ResourceOptimizer: reads the monitor's recent ticks and the allocators'
 * figures and proposes changes, each with the reason (the figures behind it),
 * logged. It proposes; it does not apply: the resource manager applies those
 * with a `change` that the configuration allows (resources.optimizer.apply)
 * and lists the rest (GET /v1/resources).
 */
import type { Logger } from '../../../common/logger.js';
import type { MonitorTick } from '../monitor/resource-monitor.js';

export type ProposalKind =
  | 'move-to-gpu'
  | 'increase-batch-size'
  | 'raise-memory-quota'
  | 'lower-memory-quota'
  | 'raise-cpu-quota'
  | 'investigate-memory-growth';

export interface Proposal {
  kind: ProposalKind;
  model?: string;
  reason: string;
  /** The quota values it proposes (kinds that can be applied at run time). */
  change?: { memory?: number; cpu?: number };
  /** Set by the resource manager: whether it applied the proposal, and if not, why. */
  applied?: boolean;
  note?: string;
}

export interface OptimizerContext {
  /** Memory budget per model in bytes (Infinity: none). */
  memoryBudgets: Record<string, number>;
  /** Models that can run on a GPU and are on the CPU now. */
  cpuModelsWithGpuPath: string[];
  /** A GPU with free memory exists. */
  gpuAvailable: boolean;
  /** Largest batch each model allows. */
  maxBatchSize: Record<string, number>;
  /** CPU units each model's quota grants (raise-cpu-quota needs it). */
  cpuQuotas?: Record<string, number>;
  /** CPU units of the node no model's quota grants. */
  freeCpuUnits?: number;
}

export class ResourceOptimizer {
  constructor(private readonly logger?: Logger) {}

  propose(ticks: readonly MonitorTick[], ctx: OptimizerContext): Proposal[] {
    const out: Proposal[] = [];
    if (ticks.length < 2) return out;
    const first = ticks[0]!;
    const last = ticks[ticks.length - 1]!;
    const spanMs = last.sample.timestamp - first.sample.timestamp;
    if (spanMs <= 0) return out;
    for (const [model, now] of Object.entries(last.models)) {
      const then = first.models[model];
      if (!then) continue;
      const cpuMs = now.cpuMs - then.cpuMs;
      const batches = now.batches - then.batches;
      const rows = now.rows - then.rows;
      const cpuShare = cpuMs / spanMs;
      if (cpuShare > 0.5 && ctx.gpuAvailable && ctx.cpuModelsWithGpuPath.includes(model)) {
        out.push({
          kind: 'move-to-gpu',
          model,
          reason: `used ${(cpuShare * 100).toFixed(0)}% of a CPU core over ${(spanMs / 1000).toFixed(0)} s and a GPU has free memory`,
        });
      }
      const meanBatch = batches > 0 ? rows / batches : 0;
      const max = ctx.maxBatchSize[model] ?? 1;
      if (batches >= 20 && meanBatch < 2 && max > 1 && cpuShare > 0.25) {
        out.push({
          kind: 'increase-batch-size',
          model,
          reason: `${batches} batches averaged ${meanBatch.toFixed(2)} rows while the model is busy ${(cpuShare * 100).toFixed(0)}% of the time: a longer maxQueueDelayUs would batch more`,
        });
      }
      const cpuQuota = ctx.cpuQuotas?.[model];
      const free = ctx.freeCpuUnits ?? 0;
      if (cpuQuota !== undefined && cpuQuota > 0 && cpuShare >= 0.9 * cpuQuota && free >= 1) {
        out.push({
          kind: 'raise-cpu-quota',
          model,
          reason: `used ${cpuShare.toFixed(2)} of its ${cpuQuota} CPU units over ${(spanMs / 1000).toFixed(0)} s while ${free} units are free`,
          change: { cpu: cpuQuota + 1 },
        });
      }
      const budget = ctx.memoryBudgets[model];
      if (budget !== undefined && Number.isFinite(budget) && budget > 0) {
        const peak = Math.max(...ticks.map((t) => t.models[model]?.memoryBytes ?? 0));
        if (peak > 0.9 * budget)
          out.push({
            kind: 'raise-memory-quota',
            model,
            reason: `peak ${peak} bytes is over 90% of its ${budget}-byte quota`,
            change: { memory: Math.ceil(peak * 1.5) },
          });
        else if (peak < 0.2 * budget && ticks.length >= 10)
          out.push({
            kind: 'lower-memory-quota',
            model,
            reason: `peak ${peak} bytes is under 20% of its ${budget}-byte quota (cache share could grow)`,
            change: { memory: Math.max(1, Math.ceil(peak * 2)) },
          });
      }
    }
    const slope = rssSlopePerMin(ticks);
    if (ticks.length >= 10 && slope > 0.05 * first.sample.memory.process.rss) {
      out.push({
        kind: 'investigate-memory-growth',
        reason: `process RSS grows ${(slope / 2 ** 20).toFixed(1)} MiB/min over ${ticks.length} samples`,
      });
    }
    for (const p of out) this.logger?.info('resource proposal', { ...p });
    return out;
  }
}

/** Least-squares slope of RSS over time, bytes per minute. */
function rssSlopePerMin(ticks: readonly MonitorTick[]): number {
  const n = ticks.length;
  const xs = ticks.map((t) => t.sample.timestamp / 60_000);
  const ys = ticks.map((t) => t.sample.memory.process.rss);
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}
