/**
 * One knowledge search, as HTTP (POST /v1/knowledge/search) and the bus
 * (request/reply on whale.knowledge.search) ask it:
 *   { "vector": [..] | "text": "..." | "inputs": [V2 tensors], "k": 10,
 *     "topic": "answers", "sourceModel": "mnist", "since": 0, "as": "model-b" }
 * `inputs` are embedded as answered inputs are (answer-embedding.ts), so the
 * same input finds what any node answered for it. `as` (a model's view,
 * encrypted items for it included) is for operators; others see the node's
 * view (everything but encrypted items).
 */
import { WhaleError } from '../../common/errors.js';
import { isPlainObject } from '../../common/validate.js';
import { inputEmbedding } from '../../core/federation/knowledge-sharing/answer-embedding.js';
import type { KnowledgeManager } from '../../core/federation/knowledge-sharing/knowledge-manager.js';
import type { KnowledgeFilter, KnowledgeHit, KnowledgeSearch } from '../../core/federation/knowledge-sharing/types.js';
import { toNamedTensors, type V2Tensor } from '../v2-tensors.js';

export interface KnowledgeSearchAnswer {
  node: string;
  hits: Array<KnowledgeHit['item'] & { distance: number }>;
}

const FIELDS = ['vector', 'text', 'inputs', 'k', 'topic', 'sourceModel', 'since', 'as', 'exact'];

/** Checks a search body (ERR_INVALID_ARG naming body.<field>) and turns it into the manager's query. */
export function parseSearch(body: unknown, dim: number, o: { mayActAs: boolean }): KnowledgeSearch {
  if (!isPlainObject(body)) throw bad('body', 'must be a JSON object');
  for (const k of Object.keys(body))
    if (!FIELDS.includes(k)) throw bad(`body.${k}`, `unknown field (known: ${FIELDS.join(', ')})`);
  const given = ['vector', 'text', 'inputs'].filter((f) => body[f] !== undefined);
  if (given.length !== 1) throw bad('body.vector', 'give exactly one of vector, text or inputs');
  const q: KnowledgeSearch = {};
  if (body.vector !== undefined) {
    if (!Array.isArray(body.vector) || !body.vector.every((x) => typeof x === 'number'))
      throw bad('body.vector', 'must be an array of numbers');
    q.vector = body.vector as number[];
  } else if (body.text !== undefined) {
    if (typeof body.text !== 'string' || body.text.length === 0) throw bad('body.text', 'must be a non-empty string');
    q.vector = Array.from(
      inputEmbedding({ text: { name: 'text', datatype: 'BYTES', shape: [1], data: [body.text] } }, dim) ?? [],
    );
    if (q.vector.length === 0) throw bad('body.text', 'has no words to search for');
  } else {
    if (!Array.isArray(body.inputs) || body.inputs.length === 0)
      throw bad('body.inputs', 'must be a non-empty array of V2 tensors');
    const v = inputEmbedding(toNamedTensors(body.inputs as V2Tensor[]), dim);
    if (!v) throw bad('body.inputs', 'has nothing to embed (an all-zero input has no direction)');
    q.vector = v;
  }
  if (body.k !== undefined) {
    if (!Number.isInteger(body.k) || (body.k as number) < 1 || (body.k as number) > 1000)
      throw bad('body.k', 'must be an integer in [1, 1000]');
    q.k = body.k as number;
  }
  const filter: KnowledgeFilter = {};
  if (body.topic !== undefined) filter.topic = str(body.topic, 'body.topic');
  if (body.sourceModel !== undefined) filter.sourceModel = str(body.sourceModel, 'body.sourceModel');
  if (body.since !== undefined) {
    if (typeof body.since !== 'number' || !Number.isFinite(body.since))
      throw bad('body.since', 'must be a time in ms since the epoch');
    filter.since = body.since;
  }
  if (Object.keys(filter).length > 0) q.filter = filter;
  if (body.as !== undefined) {
    if (!o.mayActAs)
      throw new WhaleError('ERR_FORBIDDEN', 'body.as: searching as a model (its own items) needs an operator key', {
        field: 'body.as',
      });
    q.as = str(body.as, 'body.as');
  }
  if (body.exact !== undefined) {
    if (typeof body.exact !== 'boolean') throw bad('body.exact', 'must be true or false');
    q.exact = body.exact;
  }
  return q;
}

export async function searchKnowledge(
  km: KnowledgeManager,
  q: KnowledgeSearch,
  node: string,
): Promise<KnowledgeSearchAnswer> {
  const hits = await km.search(q);
  return { node, hits: hits.map((h) => ({ ...h.item, distance: h.distance })) };
}

function str(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 1024)
    throw bad(field, 'must be a non-empty string of at most 1024 characters');
  return v;
}

function bad(field: string, what: string): WhaleError {
  return new WhaleError('ERR_INVALID_ARG', `${field}: ${what}`, { field });
}
