/**
 * The extensions `whale start` runs beside the models (monitoring, resource management, …).
 * Each capability adds its factory here; tests build servers without them or with their own.
 */
import type { EnvSource } from '../common/env.js';
import type { WhaleConfig } from '../config/whale-config.js';
import { qualityRoutingExtension } from './extensions/routing.js';
import { resourceExtension } from './extensions/resources.js';
import { MonitoringExtension } from './extensions/monitoring.js';
import { knowledgeExtension } from './extensions/knowledge.js';
import { federationsExtension } from './extensions/federations.js';
import type { ServerExtension } from './whale-server.js';

/** `env`: the variables to read (undefined: this process's, through common/env.ts). */
export type ExtensionFactory = (
  config: WhaleConfig,
  env: EnvSource | undefined,
) => ServerExtension | Promise<ServerExtension>;

export const DEFAULT_EXTENSIONS: ExtensionFactory[] = [
  (config, env) =>
    new MonitoringExtension({ ...(env ? { env } : {}), ...(config.anomaly ? { anomaly: config.anomaly } : {}) }), // /metrics, /healthz, /dashboard, alerts, metric history
  resourceExtension, // /v1/resources, quotas at admission, CPU/GPU gates, resource metrics and alerts
  qualityRoutingExtension, // /v1/tasks/{task}/infer routing, /v1/feedback + whale.quality.feedback, /v1/evaluate, /v1/routing
  knowledgeExtension, // hosted models on the FederationService, KnowledgeManager, /v1/knowledge/search, deep with other nodes
  federationsExtension, // /v1/federations: coordinators in the service; rounds that pass the quality gate become new model versions
];

export async function defaultExtensions(config: WhaleConfig, env?: EnvSource): Promise<ServerExtension[]> {
  return Promise.all(DEFAULT_EXTENSIONS.map((make) => make(config, env)));
}
