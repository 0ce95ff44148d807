/**
 * RequestDispatcher: the pipeline's router. A request naming a task (its
 * `task`, or a `model` that is a task name and not a hosted model) is sent to
 * one of the models serving the task: the RouteOptimizer picks the arm (model
 * and level), the LoadBalancer the replica. When the answer comes back its
 * cost is learned, the route is recorded for the feedback that may follow
 * (FeedbackAnalyzer) and in the performance windows, and a shadow copy runs
 * when the decision asked for one. Feedback on a routed request becomes the
 * arm's quality reward.
 */
import { isWhaleError } from '../../../common/errors.js';
import { silentLogger, type Logger } from '../../../common/logger.js';
import type {
  InferenceRequest,
  InferenceResult,
  PipelineRoute,
  PipelineRouter,
} from '../../processing/processing-pipeline.js';
import type { PerformanceWindows } from '../../quality/metrics/performance-windows.js';
import type { FeedbackAnalyzer } from '../../quality/optimization/feedback-analyzer.js';
import type { LoadBalancer } from '../../resource-management/optimizer/load-balancer.js';
import type { RouteDecision, RouteOptimizer } from './route-optimizer.js';

export interface RequestDispatcherOptions {
  optimizer: RouteOptimizer;
  balancer: LoadBalancer;
  /** Whether a name is a hosted model (such names are never read as tasks). */
  isHosted: (name: string) => boolean;
  isReady: (name: string) => boolean;
  analyzer?: FeedbackAnalyzer;
  metrics?: PerformanceWindows;
  /** Runs a request as asked (the pipeline's processRequest), for dispatchRequest and shadow copies. */
  process?: (req: InferenceRequest) => Promise<InferenceResult>;
  logger?: Logger;
}

/** Failures that say something about the model (not about the caller or the load). */
const MODEL_FAULTS = new Set([
  'ERR_MODEL_RUN',
  'ERR_EXECUTION_FAILED',
  'ERR_DEADLINE_EXCEEDED',
  'ERR_TIMEOUT',
  'ERR_MODEL_REMOVED',
]);

export class RequestDispatcher implements PipelineRouter {
  private readonly logger: Logger;
  private shadowsInFlight = 0;
  private readonly stopFeedback: (() => void) | undefined;
  readonly counters = { routed: 0, shadows: 0, shadowFailures: 0, modelFaults: 0 };

  constructor(private readonly o: RequestDispatcherOptions) {
    this.logger = o.logger ?? silentLogger;
    this.stopFeedback = o.analyzer?.onFeedback((f) => {
      o.optimizer.recordQuality(f.requestId, f.quality);
    });
  }

  /** The task a request names, if any. */
  taskOf(req: InferenceRequest): string | undefined {
    if (req.task !== undefined) return req.task;
    const m = req.model;
    return m !== undefined && !this.o.isHosted(m) && this.o.optimizer.hasTask(m) ? m : undefined;
  }

  route(req: InferenceRequest): PipelineRoute | undefined {
    const task = this.taskOf(req);
    if (task === undefined) return undefined;
    const first = Object.values(req.inputs ?? {})[0];
    const rows = first && first.shape.length > 0 ? first.shape[0] : 1;
    const replicaReady = (name: string) => this.o.isReady(name);
    const decision = this.o.optimizer.chooseRoute(
      task,
      {
        ...(rows === undefined ? {} : { rows }),
        ...(req.level === undefined ? {} : { level: req.level }),
        ...(req.tenant === undefined ? {} : { tenant: req.tenant }),
        ...(req.session === undefined ? {} : { session: req.session }),
        ...(req.requestId === undefined ? {} : { requestId: req.requestId }),
      },
      (arm) => this.o.balancer.replicasOf(arm.model).some(replicaReady),
    );
    const replica = this.o.balancer.pick(decision.arm.model, replicaReady);
    this.o.balancer.acquire(replica);
    this.counters.routed++;
    let settled = false;
    return {
      requestId: decision.requestId,
      model: replica,
      ...(decision.arm.level === undefined ? {} : { level: decision.arm.level }),
      settle: (result, error) => {
        if (settled) return;
        settled = true;
        this.o.balancer.release(replica);
        if (result) this.answered(decision, task, result, req);
        else this.failed(decision, error);
      },
    };
  }

  /** Runs a request of `task` through the pipeline (needs `process`). */
  dispatchRequest(task: string, req: Omit<InferenceRequest, 'task'>): Promise<InferenceResult> {
    if (!this.o.process) throw new Error('RequestDispatcher: dispatchRequest needs the `process` option');
    return this.o.process({ ...req, task });
  }

  /** Shadow copies still running. */
  get shadowsRunning(): number {
    return this.shadowsInFlight;
  }

  close(): void {
    this.stopFeedback?.();
  }

  private answered(decision: RouteDecision, task: string, r: InferenceResult, req: InferenceRequest): void {
    this.o.optimizer.recordOutcome(decision.requestId, { latencyMs: r.durationMs });
    this.o.analyzer?.recordRequest(decision.requestId, {
      model: r.model,
      version: r.modelVersion,
      level: r.level,
      task,
    });
    this.o.metrics?.recordPerformanceMetrics(
      r.model,
      NaN,
      r.durationMs / 1000,
      {},
      { version: r.modelVersion, level: r.level },
    );
    if (decision.shadow && this.o.process) this.shadow(decision, req);
  }

  private failed(decision: RouteDecision, error: unknown): void {
    if (isWhaleError(error) && MODEL_FAULTS.has(error.code)) {
      this.counters.modelFaults++;
      this.o.optimizer.recordQuality(decision.requestId, 0);
    }
  }

  private shadow(decision: RouteDecision, req: InferenceRequest): void {
    const arm = decision.shadow!;
    let replica: string;
    try {
      replica = this.o.balancer.pick(arm.model, (n) => this.o.isReady(n));
    } catch {
      return;
    }
    this.counters.shadows++;
    this.shadowsInFlight++;
    const { signal: _signal, task: _task, requestId: _id, session: _session, ...rest } = req;
    this.o.process!({ ...rest, model: replica, ...(arm.level === undefined ? {} : { level: arm.level }) })
      .then((r) =>
        this.o.metrics?.recordPerformanceMetrics(
          r.model,
          NaN,
          r.durationMs / 1000,
          {},
          { version: r.modelVersion, level: `${r.level}:shadow` },
        ),
      )
      .catch((err: Error) => {
        this.counters.shadowFailures++;
        this.logger.debug('shadow request failed', { task: decision.task, arm: arm.id, error: err?.message });
      })
      .finally(() => this.shadowsInFlight--);
  }
}
