/**
 * WhaleServer: one node of Smart Whale. Loads the configured models, runs
 * them behind the native scheduler and the processing pipeline, and serves
 * them over HTTP (V2 protocol) and the bus (user requests → streamed answers).
 * stop() shuts down in order: stop intake, drain in-flight work up to the
 * grace period, then close the bus, the stores and the models.
 */
import { readEnv } from '../common/env.js';
import { WhaleError } from '../common/errors.js';
import { createLogger, type Logger } from '../common/logger.js';
import type { ModelInterface } from '../core/base/model.js';
import type { NamedTensors } from '../core/base/tensor.js';
import { TieredCache, type CacheStats } from '../core/memory/tiered-cache.js';
import { WhaleMetrics } from '../core/monitoring/metrics/whale-metrics.js';
import { ModelHost } from '../core/processing/model-host.js';
import { ProcessingOptimizer, describedDevice } from '../core/processing/processing-optimizer.js';
import { ProcessingPipeline, type ResponseCache } from '../core/processing/processing-pipeline.js';
import { TaskScheduler } from '../core/processing/task-scheduler.js';
import { createModel } from '../models/index.js';
import { engine } from '../native/engine.js';
import { MessagingService } from '../services/messaging-service.js';
import type { WhaleConfig } from '../config/whale-config.js';
import { ApiKeyStore } from '../config/api-keys.js';
import { authGuard } from './auth/guard.js';
import { BusInferenceEndpoint } from './bus-endpoint.js';
import { generateRoutes } from './v2-generate.js';
import { repositoryRoutes } from './v2-repository.js';
import { InferenceGrpcServer, readTls } from './grpc/grpc-server.js';
import { exceptInferRoutes, InferenceHttpServer, V2_EXTENSIONS, type HttpRouteHandler } from './http-server.js';

/** Something that lives as long as the server (monitoring, resource management, …). */
export interface ServerExtension {
  readonly name: string;
  /**
   * Called before the models load (optional): what a model must know when it loads, e.g. its resource
   * grant (ONNX intra-op threads, execution provider). An extension that has it is stopped like a started one.
   */
  beforeLoad?(server: WhaleServer, models: readonly ModelInterface[]): Promise<void> | void;
  /** Called once the models are loaded, before the HTTP server listens. */
  start(server: WhaleServer): Promise<void> | void;
  /** Called after intake stopped and in-flight work drained, before the bus and stores close. */
  stop(): Promise<void> | void;
}

export interface WhaleServerOptions {
  config: WhaleConfig;
  /** Default: a MessagingService on KAFKA_BROKERS / REDIS_URL, else in-process. */
  messaging?: MessagingService;
  /** Models to host instead of the configured ones (tests, embedding). */
  models?: ModelInterface[];
  logger?: Logger;
  env?: NodeJS.ProcessEnv;
  serverVersion?: string;
  /** Extra HTTP routes, tried before the V2 routes. */
  httpHandlers?: HttpRouteHandler[];
  extensions?: ServerExtension[];
  /** The node's metric registry (default: a new one); GET /metrics (the monitoring extension) exposes it. */
  metrics?: WhaleMetrics;
}

const RESPONSES = 'whale.responses';

export class WhaleServer {
  readonly host: ModelHost;
  readonly optimizer: ProcessingOptimizer;
  readonly scheduler: TaskScheduler;
  readonly pipeline: ProcessingPipeline;
  readonly messaging: MessagingService;
  /** The node's one metric registry: every extension registers its families here, at start, whatever their order. */
  readonly metrics: WhaleMetrics;
  private readonly cache: TieredCache;
  readonly http: InferenceHttpServer;
  /** The gRPC endpoint (KServe's GRPCInferenceService), when grpc.enabled. */
  readonly grpc: InferenceGrpcServer | undefined;
  private grpcUrl: string | undefined;
  private readonly extensions: ServerExtension[];
  private readonly started: ServerExtension[] = [];
  private readonly endpoint: BusInferenceEndpoint;
  private readonly logger: Logger;
  private acceptingRequests = false;
  private readonly servingChecks = new Set<(model: string) => string | undefined>();
  private url: string | undefined;
  private stopping: Promise<void> | undefined;

  constructor(private readonly o: WhaleServerOptions) {
    const { config } = o;
    const redisUrl = readEnv(o.env).redisUrl;
    this.logger = o.logger ?? createLogger('server');
    // With an explicit env the messaging service reads Kafka from it; otherwise from the configuration (KAFKA_* applied).
    this.messaging =
      o.messaging ??
      new MessagingService({ ...(o.env ? { env: o.env } : { kafka: config.kafka }), logger: this.logger });
    this.metrics = o.metrics ?? new WhaleMetrics();
    this.host = new ModelHost({ logger: this.logger });
    const gpus = safeGpus();
    // A request's device is the one its model runs on (the runtime's choice after the grant), never a guess.
    this.optimizer = new ProcessingOptimizer({
      gpus,
      deviceOf: (m) => (this.host.has(m) ? deviceOfModel(this.host.get(m)) : undefined),
    });
    this.scheduler = new TaskScheduler({
      executor: (model, inputs) => this.host.runBatch(model, inputs as NamedTensors[]),
      models: Object.fromEntries(config.models.map((m) => [m.name, m.batching])),
      tenants: config.tenants,
      onBatchTimeout: (model) => this.host.markHung(model),
    });
    this.cache = new TieredCache({
      diskDir: false,
      ...(redisUrl ? { redisUrl } : {}),
      namespaces: { [RESPONSES]: { ttlMs: config.pipeline.quick.cacheTtlMs } },
      logger: this.logger,
    });
    this.pipeline = new ProcessingPipeline({
      host: this.host,
      scheduler: this.scheduler,
      optimizer: this.optimizer,
      defaultModel: config.pipeline.defaultModel,
      cache: responseCache(this.cache),
      quick: config.pipeline.quick,
      deep: config.pipeline.deep,
      complexity: config.pipeline.complexity,
      costs: Object.fromEntries(config.models.map((m) => [m.name, m.cost])),
      maxBatchRows: Object.fromEntries(config.models.map((m) => [m.name, m.batching.maxBatchSize])),
    });
    const auth = { keys: new ApiKeyStore(config.auth.keys), inference: config.auth.inference };
    this.http = new InferenceHttpServer({
      host: this.host,
      pipeline: this.pipeline,
      logger: this.logger,
      serverName: 'smart-whale',
      serverVersion: o.serverVersion ?? '0',
      maxBodyBytes: config.http.maxBodyBytes,
      requestTimeoutMs: config.http.requestTimeoutMs,
      headersTimeoutMs: config.http.headersTimeoutMs,
      keepAliveTimeoutMs: config.http.keepAliveTimeoutMs,
      ...(config.http.maxConnections === undefined ? {} : { maxConnections: config.http.maxConnections }),
      maxBodyBytesInFlight: config.http.maxBodyBytesInFlight,
      maxJsonDepth: config.http.maxJsonDepth,
      maxDiscardBytes: config.http.maxDiscardBytes,
      isReady: () => this.acceptingRequests,
      cannotServe: (model) => this.cannotServe(model),
      // generateRoutes below serves Triton's generate extension.
      protocolExtensions: [...V2_EXTENSIONS, 'generate'],
      // The key guard runs before every route (extensions add theirs after it).
      handlers: [
        authGuard(auth),
        exceptInferRoutes(
          repositoryRoutes({
            host: this.host,
            scheduler: this.scheduler,
            batching: (m) => config.models.find((c) => c.name === m)?.batching,
          }),
        ),
        exceptInferRoutes(
          generateRoutes({
            host: this.host,
            pipeline: this.pipeline,
            maxBodyBytes: config.http.maxBodyBytes,
            isReady: () => this.acceptingRequests,
            logger: this.logger,
            user: this.messaging.user,
          }),
        ),
        ...(o.httpHandlers ?? []),
      ],
      ...(config.http.tls ? { tls: readTls(config.http.tls, 'http') } : {}),
    });
    // gRPC shares the pipeline, the keys and the HTTP server's byte budget.
    this.grpc = config.grpc.enabled
      ? new InferenceGrpcServer({
          host: this.host,
          pipeline: this.pipeline,
          logger: this.logger,
          serverName: 'smart-whale',
          serverVersion: o.serverVersion ?? '0',
          auth,
          maxMessageBytes: config.grpc.maxMessageBytes,
          maxConcurrentStreams: config.grpc.maxConcurrentStreams,
          budget: this.http.bodyBudget,
          isReady: () => this.acceptingRequests,
          ...(config.grpc.tls ? { tls: readTls(config.grpc.tls, 'grpc') } : {}),
        })
      : undefined;
    this.extensions = o.extensions ?? [];
    this.endpoint = new BusInferenceEndpoint(
      this.messaging.bus,
      this.messaging.user,
      this.pipeline,
      this.logger,
      config.pipeline.defaultModel,
      this.host,
    );
  }

  /** Starts everything; on a failure what was started is stopped again and the error is thrown. */
  async start(): Promise<{ url: string; grpc?: string }> {
    const { config } = this.o;
    try {
      await this.messaging.initialize();
      const models = this.o.models ?? config.models.map((m) => createModel(m));
      const optional = new Set(config.models.filter((m) => m.optional).map((m) => m.name));
      for (const ext of this.extensions) {
        if (!ext.beforeLoad) continue;
        this.started.push(ext);
        await ext.beforeLoad(this, models);
      }
      for (const m of models) await this.host.add(m, { optional: optional.has(m.name) });
      // A required model that cannot load fails the start (the CLI exits 2): never serve half-broken.
      const broken = models.filter((m) => !optional.has(m.name) && !this.host.isReady(m.name));
      if (broken.length > 0) {
        // One line: runtimes' messages may span several.
        const why = broken
          .map(
            (m) =>
              `model '${m.name}' cannot be loaded: ${(this.host.loadError(m.name) ?? 'not ready').replace(/\s*\n\s*/g, ' ').trim()}`,
          )
          .join('; ');
        throw new WhaleError(
          'ERR_MODEL_LOAD',
          `${why} (mark it "optional": true in the configuration to serve without it)`,
          { field: 'models' },
        );
      }
      for (const ext of this.extensions) {
        await ext.start(this);
        if (!this.started.includes(ext)) this.started.push(ext);
      }
      await this.endpoint.start();
      const addr = await this.http.listen(config.http.port, config.http.host);
      const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      this.url = `${config.http.tls ? 'https' : 'http'}://${host}:${addr.port}`;
      if (this.grpc) {
        const port = await this.grpc.listen(config.grpc.port, config.grpc.host);
        this.grpcUrl = `${config.grpc.host.includes(':') ? `[${config.grpc.host}]` : config.grpc.host}:${port}`;
      }
      this.acceptingRequests = true;
      return { url: this.url, ...(this.grpcUrl ? { grpc: this.grpcUrl } : {}) };
    } catch (err) {
      await this.stop(0).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Adds a reason a loaded model may be unable to serve (e.g. a quota that admits no request):
   * readiness (/v2/health/ready, /v2/models/{m}/ready, /healthz) reports it.
   */
  addServingCheck(check: (model: string) => string | undefined): () => void {
    this.servingChecks.add(check);
    return () => this.servingChecks.delete(check);
  }

  /** A started extension by name (e.g. 'monitoring'), for extensions that build on another. */
  extension(name: string): ServerExtension | undefined {
    return this.started.find((e) => e.name === name);
  }

  /** Why a hosted model cannot serve although it is loaded, or undefined. */
  cannotServe(model: string): string | undefined {
    for (const check of this.servingChecks) {
      const why = check(model);
      if (why) return why;
    }
    return undefined;
  }

  /** The response cache's counters per tier (monitoring). */
  cacheStats(): CacheStats {
    return this.cache.stats();
  }

  /** Whether the server takes requests now (false while starting and once stopping). */
  get accepting(): boolean {
    return this.acceptingRequests;
  }

  /** host:port of the gRPC endpoint (undefined when grpc is not enabled or not listening). */
  get grpcAddress(): string | undefined {
    return this.grpcUrl;
  }

  get address(): string {
    if (!this.url) throw new WhaleError('ERR_MODEL_NOT_READY', 'the server is not listening');
    return this.url;
  }

  /** Idempotent ordered shutdown; requests still queued after graceMs fail with a typed error. */
  stop(graceMs = this.o.config.shutdownGraceMs): Promise<void> {
    this.stopping ??= this.shutdown(graceMs);
    return this.stopping;
  }

  private async shutdown(graceMs: number): Promise<void> {
    this.acceptingRequests = false;
    const steps: [string, Promise<unknown>][] = [
      ['http', this.http.close(graceMs)],
      ['grpc', this.grpc?.close(graceMs) ?? Promise.resolve()],
      ['bus endpoint', this.endpoint.stop()],
      ['scheduler', this.scheduler.drain(graceMs)],
    ];
    const results = await Promise.allSettled(steps.map(([, p]) => p));
    results.forEach((r, i) => {
      if (r.status === 'rejected')
        this.logger.warn('shutdown step failed', { step: steps[i]![0], error: (r.reason as Error)?.message });
    });
    for (const ext of this.started.reverse()) {
      await Promise.resolve()
        .then(() => ext.stop())
        .catch((err: Error) => this.logger.warn('extension stop failed', { extension: ext.name, error: err?.message }));
    }
    await this.messaging
      .shutdown()
      .catch((err: Error) => this.logger.warn('messaging shutdown failed', { error: err.message }));
    await this.host.close();
    await this.cache.close().catch(() => undefined);
  }
}

function responseCache(cache: TieredCache): ResponseCache {
  return {
    get: async (key) => {
      const v = await cache.get(RESPONSES, key);
      return typeof v === 'string' ? v : undefined;
    },
    set: (key, value, ttlMs) => cache.set(RESPONSES, key, value, { ttlMs }),
  };
}

const devices = new WeakMap<ModelInterface, string>();

/** The device a loaded model runs on (describe() once per loaded model object). */
function deviceOfModel(model: ModelInterface): string {
  let d = devices.get(model);
  if (d === undefined) {
    d = describedDevice(model.describe());
    if (model.status === 'ready') devices.set(model, d);
  }
  return d;
}

function safeGpus(): string[] {
  try {
    return engine
      .devices()
      .devices.filter((d) => d.kind === 'cuda')
      .map((d) => d.id);
  } catch {
    return [];
  }
}
