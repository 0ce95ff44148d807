/**
 * Inference over the bus: UserRequests on `whale.user.requests` whose content
 * is an inference request reach the pipeline; the answer streams back on the
 * user's session through UserService as ResponseChunks (generation.ts):
 * - a deep request's ensemble members' answers, each as it completes:
 *   sendThinkingProcess (kind 'thinking');
 * - a generating model's partial outputs: streamResponse, not final;
 * - the answer (or a typed error): streamResponse, final.
 * Every node joins one consumer group, so several nodes on one Kafka share the requests.
 *
 * content: { model?, inputs: V2 tensors, level?, id? }; without `model`, the
 * model the session is tied to (registerUserSession's opts.model), else the
 * default model. Requests whose content has no `inputs` are not inference
 * requests: they are left to the other consumers of the topic (subscribeToUserRequests handlers).
 */
import { WhaleError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { ModelHost } from '../core/processing/model-host.js';
import { streamRequest, type StreamStep } from '../core/processing/generation.js';
import { LEVELS, type Level, type ProcessingPipeline } from '../core/processing/processing-pipeline.js';
import type { UserService } from '../services/user-service.js';
import type { Bus, Subscription } from '../transport/bus.js';
import { subscribeTyped } from '../services/typed-subscribe.js';
import { fromNamedTensors, parseInferRequest, toNamedTensors } from './v2-tensors.js';

export const INFERENCE_GROUP = 'whale-inference';

interface UserRequestPayload {
  sessionId: string;
  userId?: string;
  content: unknown;
}

export interface InferenceAnswer {
  id?: string;
  model_name?: string;
  model_version?: string;
  level?: Level;
  cached?: boolean;
  /** Every model that ran (final answers). */
  models?: string[];
  outputs?: unknown[];
  /** 1 for the first chunk of this answer, +1 per chunk. */
  step?: number;
  error?: string;
  code?: string;
}

export class BusInferenceEndpoint {
  private sub: Subscription | undefined;
  private readonly active = new Set<Promise<unknown>>();

  constructor(
    private readonly bus: Bus,
    private readonly user: UserService,
    private readonly pipeline: ProcessingPipeline,
    private readonly logger: Logger,
    private readonly defaultModel: string,
    private readonly host: ModelHost,
  ) {}

  async start(): Promise<void> {
    this.sub = await subscribeTyped<UserRequestPayload>(
      this.bus,
      'userRequests',
      'UserRequest',
      INFERENCE_GROUP,
      (payload) => {
        if (!isInferenceRequest(payload.content)) return;
        const job = this.answer(payload);
        this.active.add(job);
        return job.finally(() => this.active.delete(job));
      },
    );
  }

  /** Stops taking requests; answers already being computed are still sent. */
  async stop(): Promise<void> {
    await this.sub?.close();
    this.sub = undefined;
    await Promise.allSettled([...this.active]);
  }

  private async answer(payload: UserRequestPayload): Promise<void> {
    const { sessionId } = payload;
    const fail = async (err: unknown) => {
      const e = err instanceof WhaleError ? err : new WhaleError('ERR_NATIVE', (err as Error)?.message ?? String(err));
      this.logger.debug('bus inference failed', { sessionId, code: e.code });
      const answer: InferenceAnswer = { error: e.message, code: e.code, ...idOf(payload.content) };
      await this.user.streamResponse(sessionId, answer, { final: true });
    };
    let steps: AsyncIterator<StreamStep>;
    try {
      steps = (await this.steps(payload.content, sessionId))[Symbol.asyncIterator]();
    } catch (err) {
      return fail(err);
    }
    const id = idOf(payload.content);
    for (;;) {
      let next: IteratorResult<StreamStep>;
      try {
        next = await steps.next();
      } catch (err) {
        return fail(err);
      }
      if (next.done) return;
      const step = next.value;
      // A failure to stream (unknown session, bus down) stops the work and throws: the bus retries, then dead-letters it.
      try {
        if (step.kind === 'member') await this.user.sendThinkingProcess(sessionId, sessionChunk(step, id));
        else await this.user.streamResponse(sessionId, sessionChunk(step, id), { final: step.kind === 'final' });
      } catch (err) {
        await steps.return?.();
        throw err;
      }
    }
  }

  private async steps(content: unknown, session: string): Promise<AsyncIterable<StreamStep>> {
    const c = content as Record<string, unknown>;
    if (c.model !== undefined && typeof c.model !== 'string')
      throw new WhaleError('ERR_INVALID_ARG', 'content.model: must be a string', { field: 'content.model' });
    if (c.level !== undefined && !LEVELS.includes(c.level as Level)) {
      throw new WhaleError('ERR_INVALID_ARG', `content.level: must be one of ${LEVELS.join(', ')}`, {
        field: 'content.level',
      });
    }
    const request = parseInferRequest({ inputs: c.inputs, ...(c.id === undefined ? {} : { id: c.id }) });
    // A session tied to a model is served by it (on whichever node takes the request).
    const tied = (await this.user.getSessionInfo(session)).model;
    if (tied !== undefined && c.model !== undefined && c.model !== tied) {
      throw new WhaleError('ERR_CONFLICT', `content.model: session ${session} is tied to model '${tied}'`, {
        field: 'content.model',
      });
    }
    return streamRequest(
      { pipeline: this.pipeline, host: this.host },
      {
        model: (c.model as string | undefined) ?? tied ?? this.defaultModel,
        inputs: toNamedTensors(request.inputs),
        session,
        ...(request.id === undefined ? {} : { requestId: request.id }),
        ...(c.level === undefined ? {} : { level: c.level as Level }),
      },
    );
  }
}

/** One step as the chunk a client reads on its session (the same whether the request came by bus or HTTP). */
export function sessionChunk(step: StreamStep, id: { id?: string }): InferenceAnswer {
  return {
    ...id,
    model_name: step.model,
    model_version: step.modelVersion,
    step: step.step,
    ...(step.kind === 'final'
      ? { level: step.level, cached: step.cached, ...(step.models ? { models: step.models } : {}) }
      : {}),
    outputs: fromNamedTensors(step.outputs),
  };
}

export function isInferenceRequest(content: unknown): boolean {
  return typeof content === 'object' && content !== null && !Array.isArray(content) && 'inputs' in content;
}

function idOf(content: unknown): { id?: string } {
  const id = (content as { id?: unknown } | null)?.id;
  return typeof id === 'string' ? { id } : {};
}
