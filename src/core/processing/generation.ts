/**
 * Answers that stream: one request as a sequence of steps instead of one answer.
 * - A model with its own generate() (ModelInterface) streams its partial
 *   outputs ('partial' steps) and then its answer ('final'), at the normal level.
 * - A deep request streams each ensemble member's answer as it completes
 *   ('member' steps: the request's intermediate answers, the seed's "thinking"),
 *   then the combined answer ('final').
 * - Anything else is one 'final' step (the pipeline's answer).
 * Stopping the iteration (a client that went away) aborts the work still running:
 * the model's generate() is returned and its signal aborted; queued member runs are cancelled.
 */
import { WhaleError } from '../../common/errors.js';
import type { ModelInterface } from '../base/model.js';
import type { NamedTensors } from '../base/tensor.js';
import type { ModelHost } from './model-host.js';
import type { InferenceRequest, InferenceResult, Level, ProcessingPipeline } from './processing-pipeline.js';

export interface StreamStep {
  kind: 'partial' | 'member' | 'final';
  /** The model whose outputs these are (a member's name for 'member' steps). */
  model: string;
  modelVersion: string;
  outputs: NamedTensors;
  /** Steps of this request so far, this one included (1 for the first). */
  step: number;
  /** 'final' only: how the answer was made. */
  level?: Level;
  models?: string[];
  cached?: boolean;
  device?: string;
  requestId?: string;
}

export interface StreamSource {
  pipeline: ProcessingPipeline;
  host: ModelHost;
}

/** The steps of one request (see the module comment); `req.model` names the model asked for. */
export async function* streamRequest(
  src: StreamSource,
  req: InferenceRequest & { model: string },
): AsyncGenerator<StreamStep> {
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const outer = req.signal;
  const onAbort = () => abort.abort(outer?.reason);
  if (outer?.aborted) abort.abort(outer.reason);
  else outer?.addEventListener('abort', onAbort, { once: true });
  try {
    const model = src.host.get(req.model);
    const own = req.task === undefined && (req.level === undefined || req.level === 'normal') && model.generate;
    if (own) {
      // The scheduler bounds a pipeline request by timeoutMs; a model's own stream is bounded here.
      if (req.timeoutMs !== undefined) {
        const ms = req.timeoutMs;
        const deadline = new WhaleError(
          'ERR_DEADLINE_EXCEEDED',
          `the answer was not complete within its timeout (${ms} ms)`,
          {
            retriable: true,
          },
        );
        timer = setTimeout(() => abort.abort(deadline), Math.max(0, ms));
      }
      // It runs outside the scheduler, so it is admitted here as the scheduler's requests are (quotas, rate limits).
      const permit = await src.pipeline.admitOutsideScheduler(model.name, req.tenant, req.inputs);
      try {
        yield* observed(src.pipeline, model, req.inputs, modelSteps(src.host, model, req.inputs, abort.signal));
      } finally {
        permit.release();
      }
    } else yield* pipelineSteps(src.pipeline, { ...req, signal: abort.signal });
  } finally {
    clearTimeout(timer);
    outer?.removeEventListener('abort', onAbort);
    // Whatever still runs for this request is no longer wanted (a no-op once it has finished).
    abort.abort(new WhaleError('ERR_CANCELLED', 'the stream was closed before the answer was complete'));
  }
}

/** The pipeline's observers (monitoring, knowledge) see a generated answer as they see any other. */
async function* observed(
  pipeline: ProcessingPipeline,
  model: ModelInterface,
  inputs: NamedTensors,
  steps: AsyncGenerator<StreamStep>,
): AsyncGenerator<StreamStep> {
  const started = performance.now();
  const report = (ok: boolean, outputs?: NamedTensors) =>
    pipeline.observe({
      model: model.name,
      version: model.version,
      level: 'normal',
      seconds: (performance.now() - started) / 1000,
      ok,
      cached: false,
      ...(outputs ? { inputs, outputs } : {}),
    });
  try {
    for await (const step of steps) {
      if (step.kind === 'final') report(true, step.outputs);
      yield step;
    }
  } catch (err) {
    report(false);
    throw err;
  }
}

async function* modelSteps(
  host: ModelHost,
  model: ModelInterface,
  inputs: NamedTensors,
  signal: AbortSignal,
): AsyncGenerator<StreamStep> {
  host.requireReady(model.name);
  let step = 0;
  const it = model.generate!(inputs, { signal })[Symbol.asyncIterator]();
  try {
    for (;;) {
      // A step that never comes does not hold the stream once it is aborted (deadline, client gone).
      const next = await unlessAborted(it.next(), signal);
      if (next.done) break;
      const s = next.value;
      step++;
      const base = { model: model.name, modelVersion: model.version, outputs: s.outputs, step };
      if (!s.final) {
        yield { kind: 'partial', ...base };
        continue;
      }
      const device = model.describe().provider;
      yield {
        kind: 'final',
        ...base,
        level: 'normal',
        models: [model.name],
        cached: false,
        ...(device ? { device } : {}),
      };
      return;
    }
  } finally {
    // Ends the model's generator (its finally runs) unless it ended itself; it also sees its signal aborted.
    void Promise.resolve(it.return?.()).catch(() => undefined);
  }
  throw new WhaleError('ERR_MODEL_RUN', `model '${model.name}': generate() ended without a final step`, {
    field: 'model',
  });
}

async function* pipelineSteps(pipeline: ProcessingPipeline, req: InferenceRequest): AsyncGenerator<StreamStep> {
  const queue: StreamStep[] = [];
  let wake: (() => void) | undefined;
  let settled: { result: InferenceResult } | { error: unknown } | undefined;
  let held: StreamStep | undefined;
  let seen = 0;
  let step = 0;
  void pipeline
    .processRequest({
      ...req,
      onMember: (m) => {
        const member: StreamStep = {
          kind: 'member',
          model: m.model,
          modelVersion: m.modelVersion,
          outputs: m.outputs,
          step: 0,
        };
        // One member's answer is the answer itself, not an intermediate one: a lone member waits for a second
        // (another node's model answering too), else it is dropped; an ensemble's members stream at once.
        if (m.members < 2 && !held && seen === 0) held = member;
        else {
          if (held) queue.push(held);
          held = undefined;
          queue.push(member);
        }
        seen++;
        wake?.();
      },
    })
    .then(
      (result) => (settled = { result }),
      (error: unknown) => (settled = { error }),
    )
    .finally(() => wake?.());
  for (;;) {
    while (queue.length > 0) yield { ...queue.shift()!, step: ++step };
    if (settled) break;
    await new Promise<void>((resolve) => (wake = resolve));
    wake = undefined;
  }
  if ('error' in settled) throw settled.error;
  const r = settled.result;
  yield {
    kind: 'final',
    model: r.model,
    modelVersion: r.modelVersion,
    outputs: r.outputs,
    step: ++step,
    level: r.level,
    models: r.models,
    cached: r.cached,
    device: r.device,
    ...(r.requestId === undefined ? {} : { requestId: r.requestId }),
  };
}

/** p, or a rejection with the signal's reason as soon as it is aborted. */
function unlessAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  let onAbort!: () => void;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([p, aborted]).finally(() => signal.removeEventListener('abort', onAbort));
}
