/**
 * HTTP routes of the knowledge extension (tried before the V2 routes):
 * - POST /v1/knowledge/search: a search (knowledge-search.ts) → 200 { node, hits }.
 * - GET /v1/knowledge: what this node keeps and shared, and the models it hosts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

import { roleAtLeast } from '../../config/api-keys.js';
import type { KnowledgeManager } from '../../core/federation/knowledge-sharing/knowledge-manager.js';
import { readJson, sendError, sendJson } from '../../transport/http-json.js';
import { principalOf } from '../auth/guard.js';
import { parseSearch, searchKnowledge } from './knowledge-search.js';

export interface KnowledgeRoutesContext {
  manager: KnowledgeManager;
  dim: number;
  node: string;
  maxBodyBytes: number;
  stats: () => unknown;
}

export function knowledgeRoutes(c: KnowledgeRoutesContext) {
  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> => {
    const path = url.pathname;
    if (path !== '/v1/knowledge' && path !== '/v1/knowledge/search') return false;
    const method = req.method ?? 'GET';
    try {
      if (path === '/v1/knowledge') {
        if (method !== 'GET' && method !== 'HEAD') return sendJson(res, 405, { error: `${path} accepts GET` });
        return sendJson(res, 200, { node: c.node, dim: c.dim, ...(c.stats() as object) });
      }
      if (method !== 'POST') return sendJson(res, 405, { error: `${path} accepts POST` });
      const body = await readJson(req, c.maxBodyBytes);
      const principal = principalOf(req);
      const q = parseSearch(body, c.dim, { mayActAs: !!principal && roleAtLeast(principal.role, 'operator') });
      return sendJson(res, 200, await searchKnowledge(c.manager, q, c.node));
    } catch (err) {
      sendError(res, err);
      return true;
    }
  };
}
