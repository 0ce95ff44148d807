/**
 * HTTP routes of resource management: GET /v1/resources (devices, usage,
 * allocations and quotas per model, as JSON) and PUT
 * /v1/resources/quotas/<model> to change a model's quota at run time (on every
 * node sharing the Redis quota store).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

import { WhaleError } from '../../common/errors.js';
import type { ResourceManager } from '../../core/resource-management/resource-manager.js';
import { decodePathSegment, readJson, sendError, sendJson } from '../../transport/http-json.js';

const MAX_BODY = 64 * 1024;
/** Snapshots change every second: never cached. */
const NO_STORE = { 'cache-control': 'no-store' };

function num(o: Record<string, unknown>, k: string, fallback: number): number {
  const v = o[k];
  if (v === undefined) return fallback;
  if (typeof v !== 'number') throw new WhaleError('ERR_INVALID_ARG', `${k}: expected a number`, { field: k });
  return v;
}

/**
 * What an anonymous client sees of ResourceManager.snapshot(): the models' quotas, usage and
 * allocations, the CPU units and devices served on, but not the machine's memory, disks, network
 * interfaces or the process's RSS (operator details: the snapshot itself keeps them).
 */
export function publicResourceSnapshot(snapshot: Record<string, unknown>): Record<string, unknown> {
  const usage = snapshot.usage as Record<string, unknown> | null | undefined;
  if (!usage) return snapshot;
  const { memory: _memory, disks: _disks, network: _network, ...rest } = usage;
  return { ...snapshot, usage: rest };
}

export function resourceRoutes(manager: ResourceManager) {
  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> => {
    if (url.pathname === '/v1/resources' && req.method === 'GET') {
      sendJson(res, 200, publicResourceSnapshot(await manager.snapshot()), NO_STORE);
      return true;
    }
    const m = /^\/v1\/resources\/quotas\/([^/]+)$/.exec(url.pathname);
    if (!m || req.method !== 'PUT') return false;
    try {
      const model = decodePathSegment(m[1]!);
      if (!manager.modelNames().includes(model))
        throw new WhaleError('ERR_MODEL_NOT_FOUND', `no model named '${model}'`, { field: 'model' });
      const body = await readJson(req, MAX_BODY);
      if (typeof body !== 'object' || body === null || Array.isArray(body))
        throw new WhaleError('ERR_INVALID_ARG', 'body: expected an object', { field: 'body' });
      const b = body as Record<string, unknown>;
      const change: Record<string, number> = {};
      for (const k of ['cpu', 'memory', 'gpu', 'requestsPerSecond', 'burst', 'maxConcurrent'])
        if (b[k] !== undefined) change[k] = num(b, k, 0);
      // Here and, with REDIS_URL, on every node (saved in Redis and announced).
      const { quota, rateLimit } = await manager.quotas.updateModel(model, change);
      sendJson(res, 200, { model, quota, rateLimit: rateLimit ?? null }, NO_STORE);
    } catch (err) {
      sendError(res, err, NO_STORE);
    }
    return true;
  };
}
