/**
 * HTTP routes of the hosted federations: POST /v1/federations { model, config, id? } (201, operator key),
 * GET /v1/federations, GET /v1/federations/{id} (state, per-round accuracy/loss, clients, rejected
 * updates by reason, versions published), DELETE /v1/federations/{id} (stops it; operator key).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

import { WhaleError } from '../../common/errors.js';
import { isPlainObject } from '../../common/validate.js';
import { decodePathSegment, HttpError, readJson, sendError, sendJson } from '../../transport/http-json.js';
import type { FederationsExtension } from './federations.js';

const MAX_BODY = 64 * 1024;
const NO_STORE = { 'cache-control': 'no-store' };

export function federationRoutes(ext: FederationsExtension) {
  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> => {
    const m = /^\/v1\/federations(?:\/([^/]+))?\/?$/.exec(url.pathname);
    if (!m) return false;
    const method = req.method ?? 'GET';
    try {
      if (m[1] === undefined) {
        if (method === 'GET') return sendJson(res, 200, { federations: ext.list() }, NO_STORE);
        if (method !== 'POST') throw new HttpError(405, `${url.pathname} accepts GET and POST`);
        const body = await readJson(req, MAX_BODY);
        if (!isPlainObject(body))
          throw new WhaleError('ERR_INVALID_ARG', 'body: expected { model, config }', { field: 'body' });
        if (typeof body.model !== 'string' || body.model === '')
          throw new WhaleError('ERR_INVALID_ARG', 'model: the name of a served model is required', { field: 'model' });
        if (body.id !== undefined && typeof body.id !== 'string')
          throw new WhaleError('ERR_INVALID_ARG', 'id: must be a string', { field: 'id' });
        const f = await ext.create(body.model, body.config ?? {}, body.id as string | undefined);
        return sendJson(res, 201, f.info(), { ...NO_STORE, location: `/v1/federations/${encodeURIComponent(f.id)}` });
      }
      const f = ext.get(decodePathSegment(m[1]));
      if (method === 'GET') return sendJson(res, 200, f.info(), NO_STORE);
      if (method === 'DELETE') {
        req.resume();
        f.stop();
        await f.done;
        return sendJson(res, 200, f.info(), NO_STORE);
      }
      throw new HttpError(405, `${url.pathname} accepts GET and DELETE`);
    } catch (err) {
      sendError(res, err, NO_STORE);
      return true;
    }
  };
}
