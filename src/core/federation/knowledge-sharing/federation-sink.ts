/**
 * Knowledge received over the federation topic, stored by a KnowledgeManager.
 * A message's data may carry, beside its payload: `topic`, `key`, `version`,
 * `time`, `ttlMs`, `text` and `embedding` (an array of numbers); the item keeps
 * the data without the embedding. The message id is the item id, so a
 * redelivered message replaces its item instead of adding a copy.
 */
import type { KnowledgeManager } from './knowledge-manager.js';
import type { KnowledgeInput, KnowledgePrivacy } from './types.js';

export interface ReceivedKnowledge {
  messageId: string;
  sourceModel?: string;
  targetModel: string;
  privacy: KnowledgePrivacy;
  data: unknown;
}

export interface KnowledgeSink {
  receive(k: ReceivedKnowledge): Promise<unknown>;
}

export function knowledgeInputFrom(k: ReceivedKnowledge, defaultTopic = 'general'): KnowledgeInput {
  const d =
    typeof k.data === 'object' && k.data !== null && !Array.isArray(k.data)
      ? (k.data as Record<string, unknown>)
      : undefined;
  const input: KnowledgeInput = {
    id: k.messageId,
    topic: defaultTopic,
    targetModel: k.targetModel,
    privacy: k.privacy,
    data: k.data,
  };
  if (k.sourceModel !== undefined) input.sourceModel = k.sourceModel;
  if (!d) return input;
  const { embedding, ...rest } = d;
  input.data = rest;
  if (typeof d.topic === 'string') input.topic = d.topic;
  if (typeof d.key === 'string') input.key = d.key;
  if (typeof d.text === 'string') input.text = d.text;
  if (typeof d.version === 'number') input.version = d.version;
  if (typeof d.time === 'number') input.time = d.time;
  if (typeof d.ttlMs === 'number') input.ttlMs = d.ttlMs;
  if (embedding !== undefined) input.embedding = embedding as readonly number[];
  return input;
}

/** The sink FederationService takes (`knowledge` option): every delivered item is stored before models see it. */
export function knowledgeSink(manager: KnowledgeManager, o: { defaultTopic?: string } = {}): KnowledgeSink {
  return { receive: (k) => manager.store(knowledgeInputFrom(k, o.defaultTopic)) };
}
