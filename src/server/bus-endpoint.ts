/**
 * Inference over the bus: UserRequests on `whale.user.requests` whose content
 * is an inference request reach the pipeline; the answer (or a typed error)
 * streams back on the user's session through UserService. Every node joins
 * one consumer group, so several nodes on one Kafka share the requests.
 *
 * content: { model?, inputs: V2 tensors, level?, id? }. Requests whose content
 * has no `inputs` are not inference requests: they are left to the other
 * consumers of the topic (subscribeToUserRequests handlers).
 */
import { WhaleError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
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
  outputs?: unknown[];
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
    let answer: InferenceAnswer;
    try {
      answer = await this.infer(payload.content, payload.sessionId);
    } catch (err) {
      const e = err instanceof WhaleError ? err : new WhaleError('ERR_NATIVE', (err as Error)?.message ?? String(err));
      answer = { error: e.message, code: e.code, ...idOf(payload.content) };
      this.logger.debug('bus inference failed', { sessionId: payload.sessionId, code: e.code });
    }
    // A failure to stream the answer (unknown session, bus down) throws: the bus retries, then dead-letters it.
    await this.user.streamResponse(payload.sessionId, answer, { final: true });
  }

  private async infer(content: unknown, session: string): Promise<InferenceAnswer> {
    const c = content as Record<string, unknown>;
    if (c.model !== undefined && typeof c.model !== 'string')
      throw new WhaleError('ERR_INVALID_ARG', 'content.model: must be a string', { field: 'content.model' });
    if (c.level !== undefined && !LEVELS.includes(c.level as Level)) {
      throw new WhaleError('ERR_INVALID_ARG', `content.level: must be one of ${LEVELS.join(', ')}`, {
        field: 'content.level',
      });
    }
    const request = parseInferRequest({ inputs: c.inputs, ...(c.id === undefined ? {} : { id: c.id }) });
    const result = await this.pipeline.processRequest({
      model: (c.model as string | undefined) ?? this.defaultModel,
      inputs: toNamedTensors(request.inputs),
      session,
      ...(request.id === undefined ? {} : { requestId: request.id }),
      ...(c.level === undefined ? {} : { level: c.level as Level }),
    });
    return {
      ...(request.id === undefined ? {} : { id: request.id }),
      model_name: result.model,
      model_version: result.modelVersion,
      level: result.level,
      cached: result.cached,
      outputs: fromNamedTensors(result.outputs),
    };
  }
}

export function isInferenceRequest(content: unknown): boolean {
  return typeof content === 'object' && content !== null && !Array.isArray(content) && 'inputs' in content;
}

function idOf(content: unknown): { id?: string } {
  const id = (content as { id?: unknown } | null)?.id;
  return typeof id === 'string' ? { id } : {};
}
