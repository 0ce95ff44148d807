/**
 * Triton's extensions of the V2 protocol that clients and dashboards call (../shared/protocols/v2-inference.md):
 * - statistics: GET /v2/models/stats and /v2/models/{m}[/versions/{v}]/stats, Triton's shape
 *   (inference_count, execution_count, last_inference, inference_stats{success, fail, queue,
 *   compute_input, compute_infer, compute_output: {count, ns}}) from the scheduler's counters;
 * - model_repository: POST /v2/repository/index, /v2/repository/models/{m}/load and /unload
 *   (an operator key: the auth guard's route table);
 * - GET /v2/models/{m}[/versions/{v}]/config: the model's configuration as Triton names it.
 * No answer carries a file path.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

import type { ModelHost } from '../core/processing/model-host.js';
import type { ModelSchedulerStats, TaskScheduler } from '../core/processing/task-scheduler.js';
import { decodePathSegment, HttpError, readJson, sendError, sendJson } from '../transport/http-json.js';

export interface RepositoryRoutesOptions {
  host: ModelHost;
  scheduler: TaskScheduler;
  /** Batching settings per model, for /config. */
  batching: (
    model: string,
  ) => { maxBatchSize: number; preferredBatchSizes?: number[]; maxQueueDelayUs: number; instances: number } | undefined;
}

const zero = { count: 0, ns: 0 };

/** One model's entry of Triton's statistics answer. */
export function tritonModelStats(
  host: ModelHost,
  name: string,
  s: ModelSchedulerStats | undefined,
): Record<string, unknown> {
  const status = host.status(name);
  const d = s?.durations;
  return {
    name,
    version: status.version,
    last_inference: s?.lastCompletedAt ?? 0,
    inference_count: s?.completed ?? 0,
    execution_count: s?.batches ?? 0,
    inference_stats: {
      success: d?.success ?? zero,
      fail: d?.fail ?? zero,
      queue: d?.queue ?? zero,
      // Inputs and outputs are converted outside the scheduler's timing: the whole run is compute_infer.
      compute_input: zero,
      compute_infer: d?.compute ?? zero,
      compute_output: zero,
      cache_hit: zero,
      cache_miss: zero,
    },
    batch_stats: [],
    // Smart Whale's own view (no file paths): state, restarts, failures, why it is not ready.
    state: status.state,
    ...(status.optional ? { optional: true } : {}),
    ...(status.lastError ? { reason: status.lastError } : {}),
  };
}

export function repositoryRoutes(o: RepositoryRoutesOptions) {
  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> => {
    const parts = url.pathname.split('/').filter(Boolean);
    if (parts[0] !== 'v2') return false;
    const method = req.method ?? 'GET';
    try {
      const names = parts.map(decodePathSegment);
      // /v2/models/stats: every model.
      if (names[1] === 'models' && names[2] === 'stats' && names.length === 3) {
        if (method !== 'GET') throw new HttpError(405, `${url.pathname} accepts GET`);
        const stats = o.scheduler.stats().models;
        return sendJson(res, 200, { model_stats: o.host.names().map((n) => tritonModelStats(o.host, n, stats[n])) });
      }
      if (names[1] === 'models' && names.length >= 4) {
        const name = names[2]!;
        let rest = names.slice(3);
        let version: string | undefined;
        if (rest[0] === 'versions' && rest.length >= 3) {
          version = rest[1];
          rest = rest.slice(2);
        }
        if (rest.length !== 1 || (rest[0] !== 'stats' && rest[0] !== 'config')) return false;
        if (method !== 'GET') throw new HttpError(405, `${url.pathname} accepts GET`);
        const model = o.host.get(name, version);
        if (rest[0] === 'stats')
          return sendJson(res, 200, {
            model_stats: [tritonModelStats(o.host, name, o.scheduler.stats().models[name])],
          });
        const b = o.batching(name);
        const io = (t: { name: string; datatype: string; shape: number[] }) => ({
          name: t.name,
          data_type: `TYPE_${t.datatype === 'BYTES' ? 'STRING' : t.datatype}`,
          dims: t.shape,
        });
        return sendJson(res, 200, {
          name,
          platform: model.platform,
          version_policy: { specific: { versions: o.host.versions(name).map((v) => v.version) } },
          max_batch_size: b?.maxBatchSize ?? 0,
          input: model.inputs.map(io),
          output: model.outputs.map(io),
          ...(b
            ? {
                dynamic_batching: {
                  preferred_batch_size: b.preferredBatchSizes ?? [],
                  max_queue_delay_microseconds: b.maxQueueDelayUs,
                },
                instance_group: [{ count: b.instances, kind: 'KIND_CPU' }],
              }
            : {}),
        });
      }
      if (names[1] !== 'repository') return false;
      if (method !== 'POST') throw new HttpError(405, `${url.pathname} accepts POST`);
      if (names.length === 3 && names[2] === 'index') {
        const body = req.headers['content-length'] === '0' ? {} : ((await readJson(req, 4096)) ?? {});
        const readyOnly = typeof body === 'object' && body !== null && (body as { ready?: unknown }).ready === true;
        // One entry per version, as Triton lists them; the default's state is the model's.
        const index = o.host.names().flatMap((n) => {
          const s = o.host.status(n);
          const state =
            s.state === 'ready'
              ? 'READY'
              : s.state === 'stopped'
                ? 'UNAVAILABLE'
                : s.state === 'failed'
                  ? 'UNAVAILABLE'
                  : 'LOADING';
          return s.versions.map((v) => {
            const other = v.version === s.version ? undefined : o.host.get(n, v.version).status;
            return {
              name: n,
              version: v.version,
              state: other === undefined ? state : other === 'ready' ? 'READY' : 'UNAVAILABLE',
              reason: other === undefined ? (s.state === 'stopped' ? 'unloaded' : (s.lastError ?? '')) : '',
            };
          });
        });
        return sendJson(res, 200, readyOnly ? index.filter((m) => m.state === 'READY') : index);
      }
      if (names.length === 5 && names[2] === 'models' && (names[4] === 'load' || names[4] === 'unload')) {
        const name = names[3]!;
        o.host.get(name); // ERR_MODEL_NOT_FOUND: this server hosts a fixed set of models (whale.config.json)
        req.resume();
        if (names[4] === 'load') await o.host.loadModel(name);
        else await o.host.unloadModel(name);
        return sendJson(res, 200, {});
      }
      throw new HttpError(404, `no route ${url.pathname}`);
    } catch (err) {
      sendError(res, err);
      return true;
    }
  };
}
