/**
 * Topic names and payload schemas, read from the AsyncAPI document beside
 * this file (src/transport/asyncapi.json): it is the one place they are
 * written down.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { WhaleError } from '../common/errors.js';
import { packageRoot } from '../native/loader.js';

interface Schema {
  type?: 'object' | 'string' | 'number' | 'boolean' | 'array';
  properties?: Record<string, Schema>;
  required?: string[];
  enum?: unknown[];
  items?: Schema;
}

interface AsyncApiDoc {
  channels: Record<string, { address: string; messages: Record<string, { $ref: string }> }>;
  components: { messages: Record<string, { name: string; payload: Schema }> };
}

const doc = JSON.parse(readFileSync(join(packageRoot(), 'src', 'transport', 'asyncapi.json'), 'utf8')) as AsyncApiDoc;

export type ChannelId =
  | 'federationKnowledge'
  | 'collaborationRequests'
  | 'collaborationResponses'
  | 'userRequests'
  | 'userResponses'
  | 'userSessions'
  | 'dataRequests'
  | 'dataResponses'
  | 'dataControl'
  | 'metrics'
  | 'events'
  | 'replies';

function loadTopics(): Record<ChannelId, string> {
  const out = {} as Record<ChannelId, string>;
  for (const [id, ch] of Object.entries(doc.channels)) out[id as ChannelId] = ch.address;
  return out;
}

/** Topic address per channel id, e.g. TOPICS.userResponses === 'whale.user.responses'. */
export const TOPICS: Readonly<Record<ChannelId, string>> = Object.freeze(loadTopics());

/**
 * A hosted model's own topic (`whale.models.<model>.collaboration`): collaboration requests
 * addressed to that model (FederationService.requestCollaboration with channel 'model') reach only
 * the nodes hosting it. Created per model by TopicManager (src/transport/topic-manager.ts). Model
 * names are `[A-Za-z0-9][A-Za-z0-9._-]*` (whale.config.json), all legal in a Kafka topic name.
 */
export function modelTopic(model: string): string {
  if (typeof model !== 'string' || !MODEL_NAME.test(model))
    throw new WhaleError(
      'ERR_INVALID_ARG',
      `model: ${JSON.stringify(model)} cannot name a topic (letters, digits, '.', '_', '-', at most 200)`,
      {
        field: 'model',
      },
    );
  return `whale.models.${model}.collaboration`;
}

const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

/** Knowledge searches over the bus (request/reply): any node answers from its KnowledgeManager. */
export const KNOWLEDGE_SEARCH_TOPIC = 'whale.knowledge.search';

/** Every topic, for creating them up front (each also has a '.dlq' twin). */
export function allTopics(): string[] {
  return Object.values(TOPICS);
}

/** Why `payload` does not match the message's schema, or undefined when it does. */
export function payloadProblem(message: string, payload: unknown): string | undefined {
  const m = doc.components.messages[message];
  if (!m) return `unknown message type '${message}'`;
  const p = check(m.payload, payload, 'payload');
  return p && `${p.path}: ${p.reason}`;
}

/** Message names a topic carries per the document; undefined for a topic it does not declare. */
export function messagesOf(topic: string): readonly string[] | undefined {
  return topicMessages.get(topic);
}

/**
 * What is wrong with publishing envelope type `type` with `payload` on
 * `topic`, or undefined. Topics the document does not declare (and the
 * replies channel, whose payload is free) accept any type; declared ones only
 * their messages, checked against the schema.
 */
export function schemaProblem(
  topic: string,
  type: string,
  payload: unknown,
): { path: string; reason: string } | undefined {
  const names = topicMessages.get(topic);
  if (!names || topic === TOPICS.replies) return undefined;
  if (!names.includes(type)) return { path: 'type', reason: `${topic} carries ${names.join(', ')}, not '${type}'` };
  return check(doc.components.messages[type]!.payload, payload, 'payload');
}

const topicMessages = new Map<string, string[]>(
  Object.values(doc.channels).map((ch) => [
    ch.address,
    Object.values(ch.messages).map((m) => m.$ref.slice(m.$ref.lastIndexOf('/') + 1)),
  ]),
);

function check(s: Schema, v: unknown, path: string): { path: string; reason: string } | undefined {
  if (s.enum && !s.enum.includes(v))
    return { path, reason: `must be one of ${s.enum.map((e) => JSON.stringify(e)).join(', ')}` };
  switch (s.type) {
    case undefined:
      return undefined;
    case 'array':
      if (!Array.isArray(v)) return { path, reason: 'must be an array' };
      for (let i = 0; i < v.length; i++) {
        const p = s.items ? check(s.items, v[i], `${path}[${i}]`) : undefined;
        if (p) return p;
      }
      return undefined;
    case 'object': {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return { path, reason: 'must be an object' };
      const o = v as Record<string, unknown>;
      for (const r of s.required ?? []) if (o[r] === undefined) return { path: `${path}.${r}`, reason: 'is required' };
      for (const [k, sub] of Object.entries(s.properties ?? {})) {
        if (o[k] === undefined) continue;
        const p = check(sub, o[k], `${path}.${k}`);
        if (p) return p;
      }
      return undefined;
    }
    case 'number':
      // NaN and ±Infinity are not JSON numbers (JSON.stringify would send null).
      return typeof v === 'number' && Number.isFinite(v)
        ? undefined
        : { path, reason: `must be a finite number, got ${describe(v)}` };
    default:
      return typeof v === s.type ? undefined : { path, reason: `must be a ${s.type}` };
  }
}

function describe(v: unknown): string {
  return typeof v === 'number' ? String(v) : typeof v;
}
