/**
 * The `resources` settings of whale.config.json: per model
 * `{ cpu, memory, gpu, requestsPerSecond, burst, maxConcurrent }` and at the
 * top level `{ intervalMs, tenants: { <name>: { requestsPerSecond, burst, maxConcurrent } } }`,
 * parsed into resource management's typed options.
 */
import {
  APPLICABLE_PROPOSALS,
  type ModelResourcesConfig,
  type ResourcesConfig,
} from '../core/resource-management/config.js';
import type { ProposalKind } from '../core/resource-management/optimizer/resource-optimizer.js';
import type { RateLimit } from '../core/resource-management/quota/quota-manager.js';
import { arrayAt, numberAt, objectAt, optional, stringAt } from '../common/validate.js';

export type { ModelResourcesConfig, ResourcesConfig };

const LIMIT_KEYS = ['requestsPerSecond', 'burst', 'maxConcurrent'] as const;

function parseLimit(o: Record<string, unknown>, at: string): RateLimit {
  const out: RateLimit = {};
  const rps = optional(o.requestsPerSecond, (v) => numberAt(v, `${at}.requestsPerSecond`, { min: 1e-6 }));
  const burst = optional(o.burst, (v) => numberAt(v, `${at}.burst`, { min: 1 }));
  const conc = optional(o.maxConcurrent, (v) => numberAt(v, `${at}.maxConcurrent`, { integer: true, min: 1 }));
  if (rps !== undefined) out.requestsPerSecond = rps;
  if (burst !== undefined) out.burst = burst;
  if (conc !== undefined) out.maxConcurrent = conc;
  return out;
}

export function parseModelResources(raw: unknown, at: string): ModelResourcesConfig {
  const o = objectAt(raw, at, ['cpu', 'memory', 'gpu', ...LIMIT_KEYS]);
  const cpu = optional(o.cpu, (v) => numberAt(v, `${at}.cpu`, { min: 0.01, max: 4096 }));
  const memory = optional(o.memory, (v) => numberAt(v, `${at}.memory`, { integer: true, min: 0 }));
  const gpu = optional(o.gpu, (v) => numberAt(v, `${at}.gpu`, { min: 0, max: 1 }));
  return {
    ...(cpu === undefined ? {} : { cpu }),
    ...(memory === undefined ? {} : { memory }),
    ...(gpu === undefined ? {} : { gpu }),
    ...parseLimit(o, at),
  };
}

export function parseResources(raw: unknown, at = 'resources'): ResourcesConfig {
  const o = objectAt(raw, at, ['intervalMs', 'tenants', 'optimizer']);
  const intervalMs = optional(o.intervalMs, (v) => numberAt(v, `${at}.intervalMs`, { min: 100, max: 3_600_000 }));
  const tenants: Record<string, RateLimit> = {};
  const t = objectAt(o.tenants ?? {}, `${at}.tenants`, Object.keys((o.tenants as object) ?? {}));
  for (const [name, limit] of Object.entries(t))
    tenants[name] = parseLimit(objectAt(limit, `${at}.tenants.${name}`, LIMIT_KEYS), `${at}.tenants.${name}`);
  const optimizer = optional(o.optimizer, (v) => parseOptimizer(v, `${at}.optimizer`));
  return {
    ...(intervalMs === undefined ? {} : { intervalMs }),
    ...(Object.keys(tenants).length ? { tenants } : {}),
    ...(optimizer ? { optimizer } : {}),
  };
}

/** `{ intervalMs (default 60000), apply: [...] (default none: every proposal is only listed) }`. */
function parseOptimizer(raw: unknown, at: string): { intervalMs: number; apply: ProposalKind[] } {
  const o = objectAt(raw, at, ['intervalMs', 'apply']);
  const intervalMs = optional(o.intervalMs, (v) => numberAt(v, `${at}.intervalMs`, { min: 100, max: 86_400_000 }));
  const apply = arrayAt(o.apply ?? [], `${at}.apply`).map(
    (k, i) => stringAt(k, `${at}.apply[${i}]`, { oneOf: APPLICABLE_PROPOSALS }) as ProposalKind,
  );
  return { intervalMs: intervalMs ?? 60_000, apply };
}
