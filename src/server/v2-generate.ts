/**
 * Triton's generate extension of the V2 protocol:
 * - POST /v2/models/{m}[/versions/{v}]/generate: one JSON answer;
 * - POST /v2/models/{m}[/versions/{v}]/generate_stream: server-sent events,
 *   `data: {...}\n\n` per step of the answer (generation.ts): a generating
 *   model's partial outputs, a deep request's ensemble members as each
 *   completes, then the answer (`parameters.final: true`).
 * The body names the model's inputs directly: `{"x": [[1, 2, 3, 4]], "id"?: "...",
 * "parameters"?: {level, tenant, priority, timeout_ms, complexity, session_id}}`; a value
 * without the batch dimension gets one. An answer holds `model_name`, `model_version`,
 * `id`, each output by name (a one-element output as its value, else its flat
 * row-major data) and `parameters` (step, kind, final; level, models, cached, device when final).
 * Bad input is a 400 naming the field; an error once the stream has started ends it
 * with one event `data: {"error", "code"}`; a client that goes away stops the work.
 * With `parameters.session_id` (registerUserSession, any node: sessions live in Redis
 * when configured) each step is also streamed on the session's bus topic.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

import { WhaleError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { isPlainObject } from '../common/validate.js';
import type { TensorSpec } from '../core/base/tensor.js';
import type { ModelInterface } from '../core/base/model.js';
import { streamRequest, type StreamStep } from '../core/processing/generation.js';
import type { ModelHost } from '../core/processing/model-host.js';
import { LEVELS, type Level, type ProcessingPipeline } from '../core/processing/processing-pipeline.js';
import type { UserService } from '../services/user-service.js';
import {
  decodePathSegment,
  errorAnswer,
  HttpError,
  MAX_CLIENT_STRING_LENGTH,
  readJson,
  sendError,
  sendJson,
} from '../transport/http-json.js';
import { optionalParam, tenantParam } from './http-server.js';
import { sessionChunk } from './bus-endpoint.js';
import { fromNamedTensors, toTensor } from './v2-tensors.js';

export interface GenerateRoutesOptions {
  host: ModelHost;
  pipeline: ProcessingPipeline;
  maxBodyBytes: number;
  /** False while the server starts or drains. */
  isReady: () => boolean;
  logger: Logger;
  /** Sessions (parameters.session_id); absent: the parameter is refused. */
  user?: UserService;
}

const ROUTE = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?\/(generate|generate_stream)$/;
/** `stream` is accepted as Triton's clients send it, and ignored: the route decides. */
const PARAMETERS = ['level', 'tenant', 'priority', 'timeout_ms', 'complexity', 'session_id', 'stream'];

function bad(field: string, message: string): WhaleError {
  return new WhaleError('ERR_INVALID_ARG', `${field}: ${message}`, { field });
}

/** The route handler (registered in WhaleServer's handlers, after the auth guard). */
export function generateRoutes(o: GenerateRoutesOptions) {
  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> => {
    const m = ROUTE.exec(url.pathname);
    if (!m) return false;
    try {
      if (req.method !== 'POST') throw new HttpError(405, `${url.pathname} accepts POST, not ${req.method}`);
      const name = decodePathSegment(m[1]!);
      const version = m[2] === undefined ? undefined : decodePathSegment(m[2]);
      if (name.length > MAX_CLIENT_STRING_LENGTH || (version?.length ?? 0) > MAX_CLIENT_STRING_LENGTH)
        throw bad('url', `a path segment is longer than ${MAX_CLIENT_STRING_LENGTH} characters`);
      if (!o.isReady())
        throw new WhaleError('ERR_SHUTTING_DOWN', 'the server is not accepting requests (starting or shutting down)', {
          retriable: true,
        });
      const model = o.host.get(name, version);
      const body = await readJson(req, o.maxBodyBytes);
      await serve(o, req, res, model, body, m[3] === 'generate_stream');
    } catch (err) {
      const status = sendError(res, err);
      if (status >= 500 && status !== 503 && status !== 504)
        o.logger.error('generate failed', { model: m[1], error: (err as Error).message });
    }
    return true;
  };
}

async function serve(
  o: GenerateRoutesOptions,
  req: IncomingMessage,
  res: ServerResponse,
  model: ModelInterface,
  body: unknown,
  stream: boolean,
): Promise<void> {
  if (!isPlainObject(body)) throw bad('body', 'must be a JSON object of the inputs by name');
  const id = body.id;
  if (id !== undefined && (typeof id !== 'string' || id.length > MAX_CLIENT_STRING_LENGTH))
    throw bad('id', `must be a string of at most ${MAX_CLIENT_STRING_LENGTH} characters`);
  const params = body.parameters ?? {};
  if (!isPlainObject(params)) throw bad('parameters', 'must be an object');
  for (const k of Object.keys(params))
    if (!PARAMETERS.includes(k)) throw bad(`parameters.${k}`, `unknown parameter (known: ${PARAMETERS.join(', ')})`);
  if (params.level !== undefined && !LEVELS.includes(params.level as Level))
    throw bad('parameters.level', `must be one of ${LEVELS.join(', ')}`);
  const session = await sessionOf(o, model, optionalParam(params, 'session_id', 'string').session_id);
  const abort = new AbortController();
  // The client went away before the answer was complete: stop the work.
  res.once('close', () => {
    if (!res.writableFinished) abort.abort(new WhaleError('ERR_CANCELLED', 'the client closed the connection'));
  });
  const steps = streamRequest(
    { pipeline: o.pipeline, host: o.host },
    {
      model: model.name,
      inputs: generateInputs(body, model),
      signal: abort.signal,
      ...(typeof id === 'string' ? { requestId: id } : {}),
      ...(params.level === undefined ? {} : { level: params.level as Level }),
      ...(session === undefined ? {} : { session }),
      ...tenantParam(req, params),
      ...optionalParam(params, 'priority', 'number'),
      ...optionalParam(params, 'timeout_ms', 'number', 'timeoutMs'),
      ...optionalParam(params, 'complexity', 'number'),
    },
  )[Symbol.asyncIterator]();
  const idField = typeof id === 'string' ? { id } : {};
  const publish = async (step: StreamStep) => {
    if (session === undefined || !o.user) return;
    const chunk = sessionChunk(step, idField);
    if (step.kind === 'member') await o.user.sendThinkingProcess(session, chunk);
    else await o.user.streamResponse(session, chunk, { final: step.kind === 'final' });
  };
  try {
    if (!stream) {
      for (;;) {
        const next = await steps.next();
        if (next.done) throw new WhaleError('ERR_MODEL_RUN', 'the answer ended without a final step');
        await publish(next.value);
        if (next.value.kind === 'final') {
          sendJson(res, 200, answerOf(next.value, idField));
          return;
        }
      }
    }
    // The first step decides the status: a request refused before any step (quota, not ready) is a plain error answer.
    let next = await steps.next();
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      'x-accel-buffering': 'no',
    });
    try {
      while (!next.done && !abort.signal.aborted) {
        const answer = answerOf(next.value, idField);
        res.write(`data: ${JSON.stringify(answer)}\n\n`);
        await publish(next.value);
        if (next.value.kind === 'final') break;
        next = await steps.next();
      }
    } catch (err) {
      const { status, body } = errorAnswer(err);
      if (!abort.signal.aborted && !res.destroyed) res.write(`data: ${JSON.stringify(body)}\n\n`);
      if (status >= 500 && status !== 503 && status !== 504)
        o.logger.error('generate stream failed', { model: model.name, error: body.error });
    }
    res.end();
  } finally {
    // Stops what still runs (a no-op once the final step was taken).
    abort.abort(new WhaleError('ERR_CANCELLED', 'the answer is no longer wanted'));
    void steps.return?.(undefined).catch(() => undefined);
  }
}

/** The session the request continues: active, and tied to this model (or to none). */
async function sessionOf(o: GenerateRoutesOptions, model: ModelInterface, id: unknown): Promise<string | undefined> {
  if (id === undefined) return undefined;
  const field = 'parameters.session_id';
  if (!o.user) throw bad(field, 'this server has no user service to hold sessions');
  const s = await o.user.getSessionInfo(id as string).catch((err: unknown) => {
    if (err instanceof WhaleError && (err.code === 'ERR_NOT_FOUND' || err.code === 'ERR_INVALID_ARG'))
      throw new WhaleError(err.code, `${field}: ${err.message}`, { field });
    throw err;
  });
  if (s.status !== 'active')
    throw new WhaleError('ERR_CONFLICT', `${field}: session ${s.sessionId} is ${s.status}`, { field });
  if (s.model !== undefined && s.model !== model.name)
    throw new WhaleError('ERR_CONFLICT', `${field}: session ${s.sessionId} is tied to model '${s.model}'`, { field });
  return s.sessionId;
}

/** The body's inputs (by the model's input names) as tensors of the model's datatypes. */
export function generateInputs(
  body: Record<string, unknown>,
  model: ModelInterface,
): Record<string, ReturnType<typeof toTensor>> {
  const specs = new Map(model.inputs.map((s) => [s.name, s]));
  for (const k of Object.keys(body)) {
    if (k !== 'id' && k !== 'parameters' && !specs.has(k))
      throw bad(k, `not an input of model '${model.name}' (inputs: ${[...specs.keys()].join(', ')})`);
  }
  const out: Record<string, ReturnType<typeof toTensor>> = {};
  for (const spec of model.inputs) {
    const v = body[spec.name];
    if (v === undefined || v === null) throw bad(spec.name, `is required (an input of model '${model.name}')`);
    out[spec.name] = toTensor(
      { name: spec.name, datatype: spec.datatype, shape: shapeFor(v, spec), data: v },
      spec.name,
    );
  }
  return out;
}

/** The value's nested shape, fitted to the spec: a missing batch dimension is 1; flat data fills the declared shape. */
function shapeFor(v: unknown, spec: TensorSpec): number[] {
  const nested: number[] = [];
  for (let x = v; Array.isArray(x); x = x[0]) {
    nested.push(x.length);
    if (nested.length > 8) throw bad(spec.name, 'nests deeper than 8 dimensions');
  }
  const declared = spec.shape;
  const allows = (shape: number[]) =>
    shape.length === declared.length && shape.every((d, i) => declared[i] === -1 || declared[i] === d);
  if (allows(nested)) return nested;
  if (declared[0] === -1 && allows([1, ...nested])) return [1, ...nested];
  if (nested.length <= 1) {
    // Flat data (or one value) fills the declared shape: a batch of one, the one other open dimension from the count.
    const count = nested.length === 0 ? 1 : nested[0]!;
    const known = declared.reduce((a, d) => (d === -1 ? a : a * d), 1);
    const open = declared.flatMap((d, i) => (d === -1 ? [i] : []));
    const fill = open.length === 2 && open[0] === 0 ? open[1] : open.length === 1 ? open[0] : undefined;
    const fits = fill === undefined ? open.length === 0 && count === known : known > 0 && count % known === 0;
    if (fits) return declared.map((d, i) => (i === fill ? count / known : d === -1 ? 1 : d));
  }
  throw bad(
    spec.name,
    `a value of shape [${nested.join(', ')}] does not fit the input's shape [${declared.join(', ')}] (give it nested to that shape)`,
  );
}

/** One step as the generate extension's answer: outputs by name, a one-element output as its value. */
function answerOf(step: StreamStep, id: { id?: string }): Record<string, unknown> {
  const outputs: Record<string, unknown> = {};
  for (const t of fromNamedTensors(step.outputs)) {
    const data = t.data as unknown[];
    outputs[t.name] = data.length === 1 ? data[0] : data;
  }
  return {
    ...id,
    model_name: step.model,
    model_version: step.modelVersion,
    ...outputs,
    parameters: {
      step: step.step,
      kind: step.kind,
      final: step.kind === 'final',
      ...(step.kind === 'final'
        ? {
            level: step.level,
            models: step.models?.join(','),
            cached: step.cached,
            ...(step.device ? { device: step.device } : {}),
          }
        : {}),
    },
  };
}
