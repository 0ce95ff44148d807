/**
 * The typed `resources` options of resource management: per model
 * `{ cpu, memory, gpu, requestsPerSecond, burst, maxConcurrent }` and for the
 * node `{ intervalMs, tenants: { <name>: { requestsPerSecond, burst, maxConcurrent } } }`.
 * whale.config.json's `resources` sections are parsed into these by
 * src/config/resources.ts.
 */
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
}
