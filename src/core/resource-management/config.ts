/**
 * The typed `resources` options of resource management: per model
 * `{ cpu, memory, gpu, requestsPerSecond, burst, maxConcurrent }` and for the
 * node `{ intervalMs, tenants: { <name>: { requestsPerSecond, burst, maxConcurrent } },
 * optimizer: { intervalMs, apply: [<proposal kind>…] } }`.
 * whale.config.json's `resources` sections are parsed into these by
 * src/config/resources.ts.
 */
import type { ProposalKind } from './optimizer/resource-optimizer.js';
import type { RateLimit } from './quota/quota-manager.js';

export interface ModelResourcesConfig extends RateLimit {
  cpu?: number;
  memory?: number;
  /** Share of one GPU in (0, 1]. */
  gpu?: number;
}

export interface ResourcesConfig {
  intervalMs?: number;
  tenants?: Record<string, RateLimit>;
  /** The ResourceOptimizer's timer in the running node, and the proposal kinds it may apply (others are listed). */
  optimizer?: { intervalMs: number; apply: ProposalKind[] };
}

/** Proposal kinds that change a quota at run time (resources.optimizer.apply may list them). */
export const APPLICABLE_PROPOSALS: readonly ProposalKind[] = [
  'raise-memory-quota',
  'lower-memory-quota',
  'raise-cpu-quota',
];
