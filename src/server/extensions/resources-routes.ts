/**
 * HTTP routes of resource management: GET /v1/resources (devices, usage,
 * allocations and quotas per model, as JSON) and PUT
 * /v1/resources/quotas/<model> to change a model's quota at run time.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

import { WhaleError, isWhaleError } from '../../common/errors.js';
import type { ResourceManager } from '../../core/resource-management/resource-manager.js';

const MAX_BODY = 64 * 1024;

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new WhaleError('ERR_PAYLOAD_TOO_LARGE', `body: more than ${MAX_BODY} bytes`, { field: 'body' });
    chunks.push(c as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new WhaleError('ERR_INVALID_ARG', 'body: not valid JSON', { field: 'body' });
  }
}

function num(o: Record<string, unknown>, k: string, fallback: number): number {
  const v = o[k];
  if (v === undefined) return fallback;
  if (typeof v !== 'number') throw new WhaleError('ERR_INVALID_ARG', `${k}: expected a number`, { field: k });
  return v;
}

export function resourceRoutes(manager: ResourceManager) {
  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> => {
    if (url.pathname === '/v1/resources' && req.method === 'GET') {
      send(res, 200, await manager.snapshot());
      return true;
    }
    const m = /^\/v1\/resources\/quotas\/([^/]+)$/.exec(url.pathname);
    if (!m || req.method !== 'PUT') return false;
    const model = decodeURIComponent(m[1]!);
    try {
      if (!manager.modelNames().includes(model)) throw new WhaleError('ERR_MODEL_NOT_FOUND', `no model named '${model}'`, { field: 'model' });
      const body = await readJson(req);
      if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new WhaleError('ERR_INVALID_ARG', 'body: expected an object', { field: 'body' });
      const b = body as Record<string, unknown>;
      const cur = manager.quotas.getQuota(model)!;
      const quota = manager.quotas.setQuota(model, num(b, 'cpu', cur.cpu), num(b, 'memory', cur.memory), num(b, 'gpu', cur.gpu));
      const limit = { ...manager.quotas.getRateLimit('model', model) };
      for (const k of ['requestsPerSecond', 'burst', 'maxConcurrent'] as const) if (b[k] !== undefined) limit[k] = num(b, k, 0);
      manager.quotas.setRateLimit('model', model, limit);
      send(res, 200, { model, quota, rateLimit: manager.quotas.getRateLimit('model', model) ?? null });
    } catch (err) {
      const status = isWhaleError(err, 'ERR_MODEL_NOT_FOUND') ? 404 : isWhaleError(err, 'ERR_PAYLOAD_TOO_LARGE') ? 413 : isWhaleError(err) ? 400 : 500;
      send(res, status, { error: (err as Error).message, ...(isWhaleError(err) ? { code: err.code } : {}) });
    }
    return true;
  };
}
