/**
 * whale.config.json: the models a node serves, their batching, the pipeline
 * levels and the HTTP endpoint. Backends come from the environment
 * (KAFKA_BROKERS, REDIS_URL, WHALE_HTTP_PORT, WHALE_HTTP_HOST). With no file the
 * node serves the shipped MNIST model.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';

import { readEnv, type WhaleEnv } from '../common/env.js';
import { isWhaleError, WhaleError } from '../common/errors.js';
import { packageRoot } from '../native/loader.js';
import { arrayAt, booleanAt, configError, numberAt, objectAt, optional, stringAt } from '../common/validate.js';
import { parseAuth, type AuthConfig } from './auth.js';
import { parseHttp, type HttpConfig } from './http.js';
import { parseGrpc, parseTls, type GrpcConfig } from './grpc.js';
import { parseKafka, type KafkaSettings } from './kafka.js';
import { parseTracing, type TracingConfig } from './tracing.js';
import { parseCollaboration, parseKnowledge, type CollaborationConfig, type KnowledgeConfig } from './knowledge.js';
import { parseFederations, type FederationsConfig } from './federations.js';
import { parseAlerts, type AlertsConfig } from './alerts.js';
import { parseQuality, type QualityConfig } from './quality.js';
import { parseModelResources, parseResources, type ModelResourcesConfig, type ResourcesConfig } from './resources.js';
import {
  resolveAnomalyOptions,
  type AnomalyDetectorOptions,
} from '../core/monitoring/health/anomaly-detector-options.js';

export type ModelAdapter = 'onnx' | 'tfjs';
export type ExecutionProvider = 'auto' | 'cpu' | 'cuda';

export interface ModelBatching {
  maxBatchSize: number;
  preferredBatchSizes?: number[];
  maxQueueDelayUs: number;
  maxQueueSize: number;
  instances: number;
  /** Work-conserving dispatch: a model with no batch running takes its queue at once (TaskScheduler's BatchingConfig). */
  dispatchWhenIdle: boolean;
  executionTimeoutMs: number;
}

export interface ModelConfig {
  name: string;
  adapter: ModelAdapter;
  /** Absolute path of the model file (onnx) or directory (tfjs). */
  path: string;
  version: string;
  batching: ModelBatching;
  executionProvider: ExecutionProvider;
  intraOpThreads?: number;
  /** Relative cost used by the `quick` level to pick the cheapest model. */
  cost: number;
  /** Quotas: CPU units, memory bytes, GPU share, requests/s, concurrency (core/resource-management). */
  resources?: ModelResourcesConfig;
  /**
   * The node may serve without it: a failed load is retried with backoff instead of failing `whale start`
   * (default false: a model that cannot load stops the start with exit 2).
   */
  optional?: boolean;
}

export interface PipelineConfig {
  defaultModel: string;
  quick: { model?: string; cacheTtlMs: number };
  /** Models combined by `deep` (outputs averaged); default: every model with the default model's signature. */
  deep: { models?: string[] };
  /** A request without a level gets `quick` below this complexity, `deep` above the other (0..1). */
  complexity: { quickBelow: number; deepAbove: number };
}

export interface WhaleConfig {
  /** File the configuration came from, or undefined for the built-in defaults. */
  source: string | undefined;
  http: HttpConfig;
  models: ModelConfig[];
  pipeline: PipelineConfig;
  /** Weights of tenants' fair shares (default 1 each). */
  tenants: Record<string, number>;
  shutdownGraceMs: number;
  /** Resource monitor interval and tenant rate limits (core/resource-management). */
  resources?: ResourcesConfig;
  /** The monitoring extension's anomaly detector: AnomalyDetectorOptions, e.g. { "method": "ensemble" }. */
  anomaly?: AnomalyDetectorOptions;
  /** Threshold alert rules (src/config/alerts.ts; docs/resources.md, "Alerts"). */
  alerts?: AlertsConfig;
  /** API keys and who may call what (server/auth; docs/security-and-privacy.md). */
  auth: AuthConfig;
  /** OpenTelemetry tracing (src/config/tracing.ts; off by default; WHALE_TRACING / OTEL_* on top). */
  tracing?: TracingConfig;
  /** The gRPC endpoint (KServe's GRPCInferenceService; off by default). */
  grpc: GrpcConfig;
  /** Kafka: brokers, TLS/SASL, producer, topic provisioning (src/config/kafka.ts; KAFKA_* variables on top). */
  kafka: KafkaSettings;
  /** Knowledge the hosted models share (src/config/knowledge.ts; default: on, in memory or Redis). */
  knowledge?: KnowledgeConfig;
  /** Federations hosted by the server (src/config/federations.ts; docs/federated-learning.md). */
  federations?: FederationsConfig;
  /** Deep requests answered with models on other nodes (src/config/knowledge.ts; default: over Kafka). */
  collaboration?: CollaborationConfig;
  /** Served answers sampled for evaluation (src/config/quality.ts; default: 5 %). */
  quality?: QualityConfig;
}

export const DEFAULT_BATCHING: ModelBatching = {
  maxBatchSize: 64,
  preferredBatchSizes: [16, 32, 64],
  maxQueueDelayUs: 2_000,
  maxQueueSize: 4_096,
  instances: 1,
  dispatchWhenIdle: false,
  executionTimeoutMs: 10_000,
};

export const CONFIG_FILE = 'whale.config.json';

/** The shipped default model: an MNIST classifier (784 floats in [0,1] → 10 class scores). */
export function defaultModelConfig(): ModelConfig {
  return {
    name: 'mnist',
    adapter: 'onnx',
    path: join(packageRoot(), 'models', 'mnist', 'model.onnx'),
    version: '1',
    // Work-conserving dispatch: measured 10.6x / 5.5x faster than the delay rule at concurrency 1 / 8, no loss at 64
    // (bench/RESULTS.md, "Serving end to end", 2026-12-02).
    batching: { ...DEFAULT_BATCHING, dispatchWhenIdle: true },
    executionProvider: 'auto',
    cost: 1,
  };
}

/**
 * Loads the configuration: `path` (or $WHALE_CONFIG) when given, else
 * ./whale.config.json when present, else the defaults. Env overrides the port/host.
 */
export function loadConfig(opts: { path?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): WhaleConfig {
  const env = readEnv(opts.env);
  const cwd = opts.cwd ?? process.cwd();
  const explicit = opts.path ?? env.configFile;
  const file = explicit ? resolve(cwd, explicit) : join(cwd, CONFIG_FILE);
  let raw: unknown = {};
  let source: string | undefined;
  if (explicit || existsSync(file)) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new WhaleError('ERR_CONFIG', `config: cannot read the configuration ${file}: ${(err as Error).message}`, {
        field: 'config',
        cause: err,
      });
    }
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new WhaleError('ERR_CONFIG', `config: ${file} is not valid JSON: ${(err as Error).message}`, {
        field: 'config',
        cause: err,
      });
    }
    source = file;
  }
  const config = parseConfig(raw, source ? dirname(source) : cwd, source, env.apiKeysFile, env);
  const port = env.httpPort;
  if (port !== undefined) config.http.port = port;
  if (env.httpHost) {
    // gRPC binds where HTTP does unless its host was set apart (a container's WHALE_HTTP_HOST=0.0.0.0 opens both).
    if (config.grpc.host === config.http.host) config.grpc.host = env.httpHost;
    config.http.host = env.httpHost;
  }
  return config;
}

/** Validates a configuration object; relative model paths resolve against `baseDir`. */
export function parseConfig(
  raw: unknown,
  baseDir: string,
  source?: string,
  apiKeysFile?: string,
  env: WhaleEnv = readEnv(),
): WhaleConfig {
  // federationSecurity: a secure federation's access policy may live here; AccessControl reads it, the server does not.
  const o = objectAt(raw, '', [
    '$schema',
    'http',
    'models',
    'pipeline',
    'tenants',
    'shutdownGraceMs',
    'resources',
    'anomaly',
    'alerts',
    'auth',
    'kafka',
    'grpc',
    'tracing',
    'federationSecurity',
    'knowledge',
    'collaboration',
    'quality',
    'federations',
  ]);
  const http = parseHttp(o.http ?? {});
  const httpTls = optional((o.http as Record<string, unknown> | undefined)?.tls, (v) =>
    parseTls(v, 'http.tls', baseDir),
  );
  if (httpTls) http.tls = httpTls;
  const grpc = parseGrpc(o.grpc, baseDir, { host: http.host, maxMessageBytes: http.maxBodyBytes });
  const models =
    o.models === undefined
      ? [defaultModelConfig()]
      : arrayAt(o.models, 'models').map((m, i) => parseModel(m, `models[${i}]`, baseDir));
  if (models.length === 0) throw configError('models', 'must list at least one model');
  const names = new Set<string>();
  for (const [i, m] of models.entries()) {
    if (names.has(m.name)) throw configError(`models[${i}].name`, `duplicate model name '${m.name}'`);
    names.add(m.name);
  }
  const pipeline = parsePipeline(o.pipeline ?? {}, names, models[0]!.name);
  const tenants: Record<string, number> = {};
  for (const [t, w] of Object.entries(objectAt(o.tenants ?? {}, 'tenants', Object.keys(o.tenants ?? {})))) {
    tenants[t] = numberAt(w, `tenants.${t}`, { min: 1e-6 });
  }
  const shutdownGraceMs =
    optional(o.shutdownGraceMs, (v) => numberAt(v, 'shutdownGraceMs', { min: 0, max: 600_000 })) ?? 10_000;
  const resources = optional(o.resources, (v) => parseResources(v));
  const anomaly = optional(o.anomaly, parseAnomaly);
  const alerts = optional(o.alerts, (v) => parseAlerts(v));
  const auth = parseAuth(o.auth, baseDir, apiKeysFile);
  const kafka = parseKafka(o.kafka, baseDir, env);
  const knowledge = parseKnowledge(o.knowledge, (p) => (isAbsolute(p) ? p : resolve(baseDir, p)));
  const collaboration = parseCollaboration(o.collaboration);
  const quality = parseQuality(o.quality);
  return {
    source,
    http,
    models,
    pipeline,
    tenants,
    shutdownGraceMs,
    auth,
    kafka,
    grpc,
    tracing: parseTracing(o.tracing, env),
    knowledge,
    collaboration,
    quality,
    ...(resources ? { resources } : {}),
    ...(anomaly ? { anomaly } : {}),
    ...(alerts ? { alerts } : {}),
    ...(o.federations === undefined ? {} : { federations: parseFederations(o.federations, baseDir) }),
  };
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** The detector's own checks, as ERR_CONFIG naming anomaly.<option>. */
function parseAnomaly(raw: unknown): AnomalyDetectorOptions {
  const o = objectAt(raw, 'anomaly', Object.keys(raw !== null && typeof raw === 'object' ? raw : {}));
  try {
    resolveAnomalyOptions(o as AnomalyDetectorOptions);
  } catch (err) {
    if (!isWhaleError(err, 'ERR_INVALID_OPTION')) throw err;
    const field = `anomaly${String(err.field ?? '').replace(/^options/, '')}`;
    throw configError(field, err.message.replace(/^options\.[A-Za-z]+: /, ''));
  }
  return { ...o } as AnomalyDetectorOptions;
}

function parseModel(raw: unknown, at: string, baseDir: string): ModelConfig {
  const m = objectAt(raw, at, [
    'name',
    'adapter',
    'path',
    'version',
    'batching',
    'executionProvider',
    'intraOpThreads',
    'cost',
    'resources',
    'optional',
  ]);
  const path = stringAt(m.path, `${at}.path`);
  const intraOpThreads = optional(m.intraOpThreads, (v) =>
    numberAt(v, `${at}.intraOpThreads`, { integer: true, min: 1, max: 1024 }),
  );
  return {
    name: stringAt(m.name, `${at}.name`, { pattern: NAME }),
    adapter: stringAt(m.adapter, `${at}.adapter`, { oneOf: ['onnx', 'tfjs'] }) as ModelAdapter,
    path: isAbsolute(path) ? path : resolve(baseDir, path),
    version: optional(m.version, (v) => stringAt(v, `${at}.version`, { pattern: NAME })) ?? '1',
    batching: parseBatching(m.batching ?? {}, `${at}.batching`),
    executionProvider: (optional(m.executionProvider, (v) =>
      stringAt(v, `${at}.executionProvider`, { oneOf: ['auto', 'cpu', 'cuda'] }),
    ) ?? 'auto') as ExecutionProvider,
    ...(intraOpThreads === undefined ? {} : { intraOpThreads }),
    cost: optional(m.cost, (v) => numberAt(v, `${at}.cost`, { min: 0 })) ?? 1,
    ...(m.resources === undefined ? {} : { resources: parseModelResources(m.resources, `${at}.resources`) }),
    ...(optional(m.optional, (v) => booleanAt(v, `${at}.optional`)) ? { optional: true } : {}),
  };
}

function parseBatching(raw: unknown, at: string): ModelBatching {
  const b = objectAt(raw, at, [
    'maxBatchSize',
    'preferredBatchSizes',
    'maxQueueDelayUs',
    'maxQueueSize',
    'instances',
    'dispatchWhenIdle',
    'executionTimeoutMs',
  ]);
  const maxBatchSize =
    optional(b.maxBatchSize, (v) => numberAt(v, `${at}.maxBatchSize`, { integer: true, min: 1, max: 65_536 })) ??
    DEFAULT_BATCHING.maxBatchSize;
  const preferred = optional(b.preferredBatchSizes, (v) =>
    arrayAt(v, `${at}.preferredBatchSizes`).map((p, i) =>
      numberAt(p, `${at}.preferredBatchSizes[${i}]`, { integer: true, min: 1, max: maxBatchSize }),
    ),
  );
  return {
    maxBatchSize,
    preferredBatchSizes: preferred ?? DEFAULT_BATCHING.preferredBatchSizes!.filter((p) => p <= maxBatchSize),
    maxQueueDelayUs:
      optional(b.maxQueueDelayUs, (v) =>
        numberAt(v, `${at}.maxQueueDelayUs`, { integer: true, min: 0, max: 60_000_000 }),
      ) ?? DEFAULT_BATCHING.maxQueueDelayUs,
    maxQueueSize:
      optional(b.maxQueueSize, (v) => numberAt(v, `${at}.maxQueueSize`, { integer: true, min: 1, max: 10_000_000 })) ??
      DEFAULT_BATCHING.maxQueueSize,
    instances:
      optional(b.instances, (v) => numberAt(v, `${at}.instances`, { integer: true, min: 1, max: 256 })) ??
      DEFAULT_BATCHING.instances,
    dispatchWhenIdle:
      optional(b.dispatchWhenIdle, (v) => booleanAt(v, `${at}.dispatchWhenIdle`)) ?? DEFAULT_BATCHING.dispatchWhenIdle,
    executionTimeoutMs:
      optional(b.executionTimeoutMs, (v) => numberAt(v, `${at}.executionTimeoutMs`, { min: 1 })) ??
      DEFAULT_BATCHING.executionTimeoutMs,
  };
}

function parsePipeline(raw: unknown, names: Set<string>, first: string): PipelineConfig {
  const p = objectAt(raw, 'pipeline', ['defaultModel', 'quick', 'deep', 'complexity']);
  const model = (v: unknown, field: string): string => {
    const n = stringAt(v, field);
    if (!names.has(n)) throw configError(field, `no model named '${n}' (models: ${[...names].join(', ')})`);
    return n;
  };
  const q = objectAt(p.quick ?? {}, 'pipeline.quick', ['model', 'cacheTtlMs']);
  const d = objectAt(p.deep ?? {}, 'pipeline.deep', ['models']);
  const c = objectAt(p.complexity ?? {}, 'pipeline.complexity', ['quickBelow', 'deepAbove']);
  const quickModel = optional(q.model, (v) => model(v, 'pipeline.quick.model'));
  const deepModels = optional(d.models, (v) =>
    arrayAt(v, 'pipeline.deep.models').map((m, i) => model(m, `pipeline.deep.models[${i}]`)),
  );
  const complexity = {
    quickBelow: optional(c.quickBelow, (v) => numberAt(v, 'pipeline.complexity.quickBelow', { min: 0, max: 1 })) ?? 0,
    deepAbove: optional(c.deepAbove, (v) => numberAt(v, 'pipeline.complexity.deepAbove', { min: 0, max: 1 })) ?? 1,
  };
  if (complexity.quickBelow > complexity.deepAbove)
    throw configError('pipeline.complexity.quickBelow', 'must not exceed deepAbove');
  return {
    defaultModel: optional(p.defaultModel, (v) => model(v, 'pipeline.defaultModel')) ?? first,
    quick: {
      ...(quickModel ? { model: quickModel } : {}),
      cacheTtlMs:
        optional(q.cacheTtlMs, (v) => numberAt(v, 'pipeline.quick.cacheTtlMs', { min: 1, max: 7 * 86_400_000 })) ??
        60_000,
    },
    deep: deepModels ? { models: deepModels } : {},
    complexity,
  };
}
