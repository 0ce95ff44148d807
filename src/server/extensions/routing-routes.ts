/**
 * HTTP routes of quality and routing (tried before the V2 routes):
 * - POST /v1/feedback: one feedback (see FEEDBACK_SCHEMA) → 202 {accepted, route, quality}; with
 *   `label` (the true class of a routed classifier answer) it counts toward the model's accuracy
 *   (whale_model_accuracy_ratio) and stands for thumbs up (right) or down (wrong).
 * - POST /v1/tasks/{task}/infer: a V2 infer body; the router picks the model
 *   and level; the answer is a V2 response whose `id` (the request's, or one
 *   made here) is what feedback names. parameters: level, tenant, session,
 *   priority, timeout_ms.
 * - POST /v1/evaluate: {response, context?, requirements?} → the evaluator's scores.
 * - GET /v1/routing: per task, the arms with their shares, quality and cost;
 *   the latest quality points, the served answers' scores and the optimizer's last proposals.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

import { WhaleError } from '../../common/errors.js';
import { LEVELS, type Level, type ProcessingPipeline } from '../../core/processing/processing-pipeline.js';
import type { QualityEvaluator } from '../../core/quality/evaluation/quality-evaluator.js';
import type { FeedbackAnalyzer } from '../../core/quality/optimization/feedback-analyzer.js';
import type { QualityMonitor } from '../../core/quality/monitoring/quality-monitor.js';
import type { LabelOutcome, ServedQuality } from '../../core/quality/monitoring/served-quality.js';
import type { QualityProposal } from '../../core/quality/optimization/quality-optimizer.js';
import { connectionSignal } from '../../transport/connection-signal.js';
import { decodePathSegment, readJson, sendError, sendJson } from '../../transport/http-json.js';
import { optionalParam, tenantParam } from '../http-server.js';
import { principalOf } from '../auth/guard.js';
import { roleAtLeast } from '../../config/api-keys.js';
import type { JoinedFeedback } from '../../core/quality/optimization/feedback-analyzer.js';
/** The caller of a request without an API key: holding the answer's unguessable id is its proof. */
const ANONYMOUS = 'anonymous';
import { inferAnswer, readInferRequest, sendInferAnswer } from '../v2-binary.js';
import type { RouteOptimizer } from '../../core/federation/routing/route-optimizer.js';

export interface QualityRoutesContext {
  pipeline: ProcessingPipeline;
  analyzer: FeedbackAnalyzer;
  optimizer: RouteOptimizer;
  evaluator: QualityEvaluator;
  monitor: QualityMonitor;
  served: ServedQuality;
  /** The QualityOptimizer's recent proposals (applied or not, with why). */
  proposals: () => readonly QualityProposal[];
  maxBodyBytes: number;
  /** POST /v1/evaluate's own, smaller body limit (its scores cost more per byte than an inference). */
  maxEvaluateBodyBytes?: number;
  /** False while the server starts or drains. */
  accepting: () => boolean;
}

export function qualityRoutes(c: QualityRoutesContext) {
  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> => {
    const parts = url.pathname.split('/').filter(Boolean);
    if (parts[0] !== 'v1') return false;
    const method = req.method ?? 'GET';
    const isTask = parts[1] === 'tasks' && parts.length === 4 && parts[3] === 'infer';
    const known = (parts.length === 2 && ['feedback', 'evaluate', 'routing'].includes(parts[1]!)) || isTask;
    if (!known) return false;
    try {
      if (parts[1] === 'routing') {
        if (method !== 'GET') return sendJson(res, 405, { error: `${url.pathname} accepts GET` });
        const tasks = c.optimizer.taskNames().map((t) => c.optimizer.stats(t));
        return sendJson(res, 200, {
          tasks,
          quality: c.monitor.latest(),
          served: c.served.stats(),
          proposals: c.proposals().slice(-50),
        });
      }
      if (method !== 'POST') return sendJson(res, 405, { error: `${url.pathname} accepts POST` });
      if (!c.accepting())
        throw new WhaleError('ERR_SHUTTING_DOWN', 'the server is not accepting requests (starting or shutting down)', {
          retriable: true,
        });
      // The task route reads its own body: JSON or Triton's binary form (v2-binary.ts).
      if (isTask) return sendInferAnswer(res, 200, await infer(c, req, decodePathSegment(parts[2]!)));
      const body = await readJson(
        req,
        parts[1] === 'evaluate' ? (c.maxEvaluateBodyBytes ?? c.maxBodyBytes) : c.maxBodyBytes,
      );
      if (parts[1] === 'feedback') {
        const { feedback, label } = labelled(c, body);
        const f = submitFeedback(c, req, feedback);
        const outcome: LabelOutcome | undefined = label === undefined ? undefined : c.served.label(f.requestId, label);
        return sendJson(res, 202, {
          accepted: true,
          requestId: f.requestId,
          route: f.route,
          joined: f.joined,
          quality: f.quality,
          ...(outcome
            ? { label: { predicted: outcome.predicted, correct: outcome.correct, accuracy: outcome.accuracy } }
            : {}),
        });
      }
      if (parts[1] === 'evaluate') {
        const b = (body ?? {}) as { response?: unknown; context?: never; requirements?: never };
        if (typeof body !== 'object' || body === null || !('response' in b))
          throw new WhaleError('ERR_INVALID_ARG', 'body.response: is required', { field: 'body.response' });
        return sendJson(res, 200, await c.evaluator.evaluateResponse(b.response, b.context, b.requirements));
      }
      return false;
    } catch (err) {
      sendError(res, err);
      return true;
    }
  };
}

async function infer(c: QualityRoutesContext, req: IncomingMessage, task: string): Promise<unknown> {
  const { request, inputs } = await readInferRequest(req, c.maxBodyBytes);
  const params = request.parameters ?? {};
  const level = params.level;
  if (level !== undefined && !LEVELS.includes(level as Level))
    throw new WhaleError('ERR_INVALID_ARG', `parameters.level: must be one of ${LEVELS.join(', ')}`, {
      field: 'parameters.level',
    });
  const result = await c.pipeline.processRequest({
    task,
    inputs,
    signal: connectionSignal(req),
    ...(level === undefined ? {} : { level: level as Level }),
    ...tenantParam(req, params),
    ...optionalParam(params, 'session', 'string'),
    ...optionalParam(params, 'priority', 'number'),
    ...optionalParam(params, 'timeout_ms', 'number', 'timeoutMs'),
  });
  // The router's id (unguessable) is what feedback names; the client's own id is only echoed (V2).
  if (result.requestId !== undefined) c.analyzer.bindCaller(result.requestId, principalOf(req)?.keyId ?? ANONYMOUS);
  const fields = {
    model_name: result.model,
    model_version: result.modelVersion,
    id: request.id ?? result.requestId,
    parameters: {
      task,
      level: result.level,
      cached: result.cached,
      models: result.models.join(','),
      device: result.device,
      ...(result.requestId === undefined ? {} : { feedback_id: result.requestId }),
    },
  };
  return inferAnswer(fields, result.outputs, request);
}

/**
 * A feedback with `label`: checked against the remembered answer (404 when this node does not hold it),
 * and passed on as thumbs up (the answer's top class is the label) or down unless thumbs were given.
 */
function labelled(c: QualityRoutesContext, body: unknown): { feedback: unknown; label?: number } {
  if (typeof body !== 'object' || body === null || !('label' in body)) return { feedback: body };
  const { label, ...rest } = body as { label: unknown; requestId?: unknown; thumbs?: unknown };
  if (typeof label !== 'number' || !Number.isInteger(label) || label < 0)
    throw new WhaleError('ERR_INVALID_ARG', `feedback.label: must be an integer >= 0, got ${JSON.stringify(label)}`, {
      field: 'feedback.label',
    });
  const verdict = typeof rest.requestId === 'string' ? c.served.check(rest.requestId, label) : undefined;
  if (!verdict)
    throw new WhaleError(
      'ERR_NOT_FOUND',
      'feedback.label: no routed answer with this requestId is held here (labels join answers of POST /v1/tasks/{task}/infer, the last quality.keepAnswers)',
      { field: 'feedback.requestId' },
    );
  return {
    feedback: { ...rest, ...(rest.thumbs === undefined ? { thumbs: verdict.correct ? 'up' : 'down' } : {}) },
    label,
  };
}

/**
 * Feedback over HTTP: on an answer this node gave, only from the caller that received it and once;
 * feedback naming a model without such an answer (curated labels) needs an operator key.
 */
function submitFeedback(c: QualityRoutesContext, req: IncomingMessage, body: unknown): JoinedFeedback {
  const id = typeof body === 'object' && body !== null ? (body as { requestId?: unknown }).requestId : undefined;
  const principal = principalOf(req);
  // An answer this node gave: its one vote, from the caller that received it (FeedbackAnalyzer.bindCaller).
  if (typeof id === 'string' && c.analyzer.routeOf(id))
    return c.analyzer.submitFeedback(body, { caller: principal?.keyId ?? ANONYMOUS });
  const namesModel = typeof body === 'object' && body !== null && (body as { model?: unknown }).model !== undefined;
  if (namesModel && !(principal && roleAtLeast(principal.role, 'operator'))) {
    throw new WhaleError(
      'ERR_FORBIDDEN',
      'feedback: feedback on an answer this node did not give (naming model, version, level) needs an operator key',
      { field: 'feedback.model' },
    );
  }
  return c.analyzer.submitFeedback(body);
}
