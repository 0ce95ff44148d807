/**
 * Topic names and payload schemas, read from the AsyncAPI document beside
 * this file (src/transport/asyncapi.json): it is the one place they are
 * written down.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

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

/** Every topic, for creating them up front (each also has a '.dlq' twin). */
export function allTopics(): string[] {
  return Object.values(TOPICS);
}

/** Why `payload` does not match the message's schema, or undefined when it does. */
export function payloadProblem(message: string, payload: unknown): string | undefined {
  const m = doc.components.messages[message];
  if (!m) return `unknown message type '${message}'`;
  return check(m.payload, payload, 'payload');
}

function check(s: Schema, v: unknown, path: string): string | undefined {
  if (s.enum && !s.enum.includes(v)) return `${path}: must be one of ${s.enum.map((e) => JSON.stringify(e)).join(', ')}`;
  switch (s.type) {
    case undefined:
      return undefined;
    case 'array':
      if (!Array.isArray(v)) return `${path}: must be an array`;
      for (let i = 0; i < v.length; i++) {
        const p = s.items ? check(s.items, v[i], `${path}[${i}]`) : undefined;
        if (p) return p;
      }
      return undefined;
    case 'object': {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return `${path}: must be an object`;
      const o = v as Record<string, unknown>;
      for (const r of s.required ?? []) if (o[r] === undefined) return `${path}.${r}: is required`;
      for (const [k, sub] of Object.entries(s.properties ?? {})) {
        if (o[k] === undefined) continue;
        const p = check(sub, o[k], `${path}.${k}`);
        if (p) return p;
      }
      return undefined;
    }
    case 'number':
      return typeof v === 'number' && Number.isFinite(v) ? undefined : `${path}: must be a finite number`;
    default:
      return typeof v === s.type ? undefined : `${path}: must be a ${s.type}`;
  }
}
