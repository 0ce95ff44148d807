/**
 * The quality and routing extension `whale start` runs: routes task requests
 * between the models (and levels) serving them, takes feedback over HTTP
 * (POST /v1/feedback) and the bus (whale.quality.feedback), learns from it,
 * watches quality over time, raises `quality.drop` events, evaluates a sample
 * of the answers it serves (ServedQuality: whale.config.json `quality`), turns
 * labelled feedback into the accuracy gauge, and lets the QualityOptimizer apply
 * what the policy allows (shift traffic, change level, roll a version back, a
 * federated round through the starter the federations extension sets).
 */
import { readEnv, type EnvSource } from '../../common/env.js';
import { WhaleError } from '../../common/errors.js';
import { createLogger, type Logger } from '../../common/logger.js';
import type { NamedTensors } from '../../core/base/tensor.js';
import { EmbeddingSimilarity } from '../../core/quality/evaluation/embedding.js';
import { QualityEvaluator } from '../../core/quality/evaluation/quality-evaluator.js';
import { PerformanceWindows } from '../../core/quality/metrics/performance-windows.js';
import { FeedbackAnalyzer, type QualityDrop } from '../../core/quality/optimization/feedback-analyzer.js';
import { QualityOptimizer, type QualityProposal } from '../../core/quality/optimization/quality-optimizer.js';
import { QualityMonitor } from '../../core/quality/monitoring/quality-monitor.js';
import { ServedQuality, type ServedAnswer } from '../../core/quality/monitoring/served-quality.js';
import { performanceMetricsOf } from '../../core/monitoring/metrics/performance-metrics.js';
import type { InferenceRequest, InferenceResult } from '../../core/processing/processing-pipeline.js';
import { defaultQualityConfig, type QualityConfig } from '../../config/quality.js';
import type { WhaleConfig } from '../../config/whale-config.js';
import type { Subscription } from '../../transport/bus.js';
import type { ServerExtension, WhaleServer } from '../whale-server.js';
import { subscribeFeedback } from '../../core/federation/routing/feedback-topic.js';
import { qualityRoutes } from './routing-routes.js';
import { heldVersions, peerAnswer, registerAppliers, sameSignature } from './routing-appliers.js';
import { LoadBalancer } from '../../core/resource-management/optimizer/load-balancer.js';
import { RequestDispatcher } from '../../core/federation/routing/request-dispatcher.js';
import { RouteOptimizer, type TaskRouting } from '../../core/federation/routing/route-optimizer.js';
import {
  loadRoutingConfig,
  parseRoutingConfig,
  type RoutingConfig,
} from '../../core/federation/routing/routing-config.js';

export interface QualityRoutingParts {
  analyzer: FeedbackAnalyzer;
  metrics: PerformanceWindows;
  optimizer: RouteOptimizer;
  balancer: LoadBalancer;
  dispatcher: RequestDispatcher;
  evaluator: QualityEvaluator;
  monitor: QualityMonitor;
  qualityOptimizer: QualityOptimizer;
  served: ServedQuality;
}

/** Starts a federated round of a model (the federations extension provides it): schedule-federated-round's applier. */
export type FederatedRoundStarter = (model: string, reason: string) => Promise<void> | void;

export class QualityRoutingExtension implements ServerExtension {
  readonly name = 'quality-routing';
  private readonly config: RoutingConfig;
  private readonly logger: Logger;
  private parts: QualityRoutingParts | undefined;
  private sub: Subscription | undefined;
  private timers: NodeJS.Timeout[] = [];
  private server: WhaleServer | undefined;
  private running = false;
  private restore: (() => void) | undefined;
  private federatedRound: FederatedRoundStarter | undefined;

  /** defaultModel names the default task when the routing config lists none; maxBodyBytes bounds /v1 bodies. */
  constructor(
    routing: RoutingConfig = {},
    private readonly opts: {
      defaultModel?: string;
      maxBodyBytes?: number;
      evaluate?: { maxBodyBytes?: number; schemaTimeoutMs?: number };
      /** Served answers sampled for evaluation (whale.config.json `quality`; default defaultQualityConfig()). */
      quality?: QualityConfig;
      logger?: Logger;
    } = {},
  ) {
    this.config = parseRoutingConfig(routing);
    this.logger = opts.logger ?? createLogger('quality');
  }

  /** The live components (after start). */
  get components(): QualityRoutingParts {
    if (!this.parts) throw new WhaleError('ERR_INVALID_STATE', 'the quality-routing extension has not started');
    return this.parts;
  }

  /** How schedule-federated-round is applied (the federations extension calls it); before or after start. */
  setFederatedRoundStarter(start: FederatedRoundStarter | undefined): void {
    this.federatedRound = start;
  }

  async start(server: WhaleServer): Promise<void> {
    const c = this.config;
    this.server = server;
    const pipeline = server.pipeline;
    // The pipeline as it is: the dispatcher's shadow copies do not count as served answers.
    const wrapped = Object.hasOwn(pipeline, 'processRequest') ? pipeline.processRequest : undefined;
    const process = pipeline.processRequest.bind(pipeline);
    // Feedback not joined to a routed request must name a model (and version) this node serves: made-up names create no series.
    const serves = (m: string, v: string | undefined) =>
      server.host.has(m)
        ? v === undefined || server.host.get(m).version === v
        : v === undefined && (c.replicas?.[m] ?? []).length > 0;
    const analyzer = new FeedbackAnalyzer({ ...(c.feedback ?? {}), serves });
    const metrics = new PerformanceWindows();
    const tasks = this.tasks(server);
    const optimizer = new RouteOptimizer({
      tasks,
      bandit: c.bandit ?? {},
      reward: c.reward ?? {},
      seed: c.bandit?.seed ?? 1,
    });
    const balancer = new LoadBalancer({ replicas: c.replicas ?? {} });
    const dispatcher = new RequestDispatcher({
      optimizer,
      balancer,
      analyzer,
      metrics,
      isHosted: (n) => server.host.has(n),
      isReady: (n) => server.host.isReady(n),
      process,
      logger: this.logger,
    });
    const schemaTimeoutMs = this.opts.evaluate?.schemaTimeoutMs;
    const evaluator = new QualityEvaluator({
      ...(c.embeddingModel ? { embedding: this.embedding(server, c.embeddingModel) } : {}),
      ...(schemaTimeoutMs === undefined ? {} : { schemaTimeoutMs }),
    });
    const monitor = new QualityMonitor({ analyzer, metrics });
    const qualityOptimizer = new QualityOptimizer(c.policy ?? {}, this.logger);
    const q = this.opts.quality ?? defaultQualityConfig();
    const served = new ServedQuality({
      evaluator,
      sampleRate: q.sampleRate,
      latencyBudgetMs: q.latencyBudgetMs,
      maxPending: q.maxPending,
      keepAnswers: q.keepAnswers,
      windows: metrics,
      sink: performanceMetricsOf(server.metrics),
      ...(q.consistency ? { peerAnswer: (a: ServedAnswer) => peerAnswer(server, a) } : {}),
      logger: this.logger,
    });
    this.parts = { analyzer, metrics, optimizer, balancer, dispatcher, evaluator, monitor, qualityOptimizer, served };
    registerAppliers(qualityOptimizer, optimizer, server, () => this.federatedRound);
    analyzer.onQualityDrop((d) => void this.onDrop(d));
    monitor.attach(server.metrics.registry);
    served.attach(server.metrics.registry);
    // Every answer the node serves (V2, gRPC, tasks, the bus) passes here once: remembered and maybe sampled.
    pipeline.processRequest = async (req: InferenceRequest): Promise<InferenceResult> => {
      const r = await process(req);
      const answer: ServedAnswer = {
        model: r.model,
        version: r.modelVersion,
        level: r.level,
        models: r.models,
        seconds: r.durationMs / 1000,
        inputs: req.inputs,
        outputs: r.outputs,
        cached: r.cached,
      };
      if (r.requestId !== undefined) answer.requestId = r.requestId;
      served.offer(answer);
      return r;
    };
    this.restore = () => {
      // Back to what was there: another wrapper (an own property) or the class's method.
      if (wrapped) pipeline.processRequest = wrapped;
      else delete (pipeline as { processRequest?: unknown }).processRequest;
    };
    server.pipeline.setRouter(dispatcher);
    server.http.addHandler((req, res, url) =>
      this.running
        ? qualityRoutes({
            pipeline: server.pipeline,
            analyzer,
            optimizer,
            evaluator,
            monitor,
            served,
            proposals: () => qualityOptimizer.recentProposals(),
            maxBodyBytes: this.opts.maxBodyBytes ?? 16 * 1024 * 1024,
            maxEvaluateBodyBytes:
              this.opts.evaluate?.maxBodyBytes ?? Math.min(256 * 1024, this.opts.maxBodyBytes ?? Infinity),
            accepting: () => server.accepting,
          })(req, res, url)
        : false,
    );
    this.sub = await subscribeFeedback(server.messaging.bus, analyzer);
    this.every(c.sampleEveryMs ?? 10_000, () => monitor.sample());
    if ((c.optimizeEveryMs ?? 30_000) > 0) this.every(c.optimizeEveryMs ?? 30_000, () => void this.optimize());
    this.running = true;
    this.logger.info('quality routing started', { tasks: Object.keys(tasks).join(',') });
  }

  async stop(): Promise<void> {
    this.running = false;
    this.restore?.();
    this.restore = undefined;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.sub?.close();
    this.sub = undefined;
    this.server?.pipeline.setRouter(undefined);
    this.parts?.dispatcher.close();
    await this.parts?.served.close();
    await this.parts?.evaluator.close();
  }

  /** One pass of the QualityOptimizer over every routed model; returns its proposals. */
  async optimize(dropped?: QualityDrop): Promise<QualityProposal[]> {
    const p = this.components;
    const out: QualityProposal[] = [];
    // Versions as they are when the pass starts: a model's several arms never undo each other's rollback.
    const versions = new Map<string, ReturnType<typeof heldVersions>>();
    const server = this.server!;
    const versionsOf = (m: string) => versions.get(m) ?? versions.set(m, heldVersions(server.host, m)).get(m)!;
    for (const task of p.optimizer.taskNames()) {
      const arms = p.optimizer.stats(task).arms;
      const figures = new Map(arms.map((a) => [a.model, p.analyzer.stats(a.model).current.quality] as const));
      for (const a of arms) {
        const q = figures.get(a.model)!;
        if (q.n === 0 && dropped?.model !== a.model) continue;
        const perf = p.metrics.summary(a.model);
        out.push(
          ...(await p.qualityOptimizer.optimizeModelQuality(a.model, {
            ...versionsOf(a.model),
            quality: Number.isFinite(q.estimate) ? clamp01(q.estimate) : 0,
            low: q.low,
            high: q.high,
            samples: q.n,
            ...(a.level === undefined ? {} : { level: a.level }),
            dropDetected: dropped?.model === a.model,
            ...(Number.isFinite(perf.latency.p99) ? { latencyP99Ms: perf.latency.p99 * 1000 } : {}),
            alternatives: arms
              .filter((b) => b.model !== a.model)
              .map((b) => {
                const f = figures.get(b.model)!;
                return {
                  modelId: b.model,
                  quality: Number.isFinite(f.estimate) ? clamp01(f.estimate) : 0,
                  low: f.low,
                  high: f.high,
                  samples: f.n,
                };
              }),
          })),
        );
      }
    }
    return out;
  }

  private tasks(server: WhaleServer): Record<string, TaskRouting> {
    const routed = this.config.tasks;
    const hostedOrReplicas = (m: string) =>
      server.host.has(m) || (this.config.replicas?.[m] ?? []).every((r) => server.host.has(r));
    if (routed && Object.keys(routed).length > 0) {
      const out: Record<string, TaskRouting> = {};
      for (const [name, t] of Object.entries(routed)) {
        out[name] = {
          ...t,
          arms: t.arms.map((a, i) => {
            if (!hostedOrReplicas(a.model) || (!server.host.has(a.model) && !this.config.replicas?.[a.model])) {
              throw new WhaleError(
                'ERR_CONFIG',
                `routing.tasks.${name}.arms[${i}].model: no hosted model or replica group '${a.model}'`,
                { field: `routing.tasks.${name}.arms[${i}].model` },
              );
            }
            return {
              id: a.id ?? (a.level ? `${a.model}@${a.level}` : a.model),
              model: a.model,
              ...(a.level ? { level: a.level } : {}),
            };
          }),
        };
      }
      return out;
    }
    const names = server.host.names().filter((n) => server.host.isReady(n));
    const first = names[0];
    if (!first) return {};
    const wanted = this.opts.defaultModel;
    const base = server.host.get(wanted !== undefined && names.includes(wanted) ? wanted : first);
    const arms = names.filter((n) => sameSignature(server.host.get(n), base)).map((n) => ({ id: n, model: n }));
    return { [base.name]: { arms } };
  }

  private embedding(server: WhaleServer, name: string): EmbeddingSimilarity {
    if (!server.host.has(name))
      throw new WhaleError('ERR_CONFIG', `routing.embeddingModel: no hosted model '${name}'`, {
        field: 'routing.embeddingModel',
      });
    const model = server.host.get(name);
    return new EmbeddingSimilarity({
      inputs: model.inputs,
      run: async (inputs) => (await server.scheduler.scheduleTask({ model: name, input: inputs })) as NamedTensors,
    });
  }

  private async onDrop(d: QualityDrop): Promise<void> {
    this.logger.warn('quality drop', { ...d });
    await this.server?.messaging
      .publishEvent('quality.drop', { ...d })
      .catch((err: Error) => this.logger.warn('quality.drop event not published', { error: err.message }));
    await this.optimize(d).catch((err: Error) =>
      this.logger.warn('quality optimization failed', { error: err.message }),
    );
  }

  private every(ms: number, fn: () => void): void {
    const t = setInterval(() => {
      try {
        fn();
      } catch (err) {
        this.logger.warn('quality task failed', { error: (err as Error).message });
      }
    }, ms);
    t.unref();
    this.timers.push(t);
  }
}

/** The factory registered in server/default-extensions.ts. */
export function qualityRoutingExtension(config: WhaleConfig, env?: EnvSource): QualityRoutingExtension {
  return new QualityRoutingExtension(
    loadRoutingConfig({ file: readEnv(env).routingFile, ...(config.source ? { configSource: config.source } : {}) }),
    {
      defaultModel: config.pipeline.defaultModel,
      maxBodyBytes: config.http.maxBodyBytes,
      evaluate: config.http.evaluate,
      ...(config.quality ? { quality: config.quality } : {}),
    },
  );
}

function clamp01(v: number): number {
  return Math.min(1, Math.max(0, v));
}
