/**
 * The one message envelope of every topic (version 1), validated at the edge:
 * whatever does not parse or validate goes to the dead-letter topic with the
 * reason, and never reaches a handler.
 */
import { randomUUID } from 'node:crypto';

export const ENVELOPE_VERSION = 1;

export interface Envelope<P = unknown> {
  v: typeof ENVELOPE_VERSION;
  type: string;
  id: string;
  correlationId?: string;
  source: string;
  target?: string;
  timestamp: number;
  headers: Record<string, string>;
  payload: P;
}

export interface EnvelopeInit<P> {
  type: string;
  source: string;
  payload: P;
  target?: string;
  correlationId?: string;
  headers?: Record<string, string>;
}

export function createEnvelope<P>(init: EnvelopeInit<P>): Envelope<P> {
  const e: Envelope<P> = {
    v: ENVELOPE_VERSION,
    type: init.type,
    id: randomUUID(),
    source: init.source,
    timestamp: Date.now(),
    headers: { ...(init.headers ?? {}) },
    payload: init.payload,
  };
  if (init.target !== undefined) e.target = init.target;
  if (init.correlationId !== undefined) e.correlationId = init.correlationId;
  return e;
}

/** Why a value is not a valid envelope, or undefined when it is. */
export function envelopeProblem(x: unknown): string | undefined {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return 'not a JSON object';
  const e = x as Record<string, unknown>;
  if (e.v !== ENVELOPE_VERSION) return `unsupported envelope version ${JSON.stringify(e.v)}`;
  for (const f of ['type', 'id', 'source'] as const) {
    if (typeof e[f] !== 'string' || (e[f] as string).length === 0) return `${f}: must be a non-empty string`;
  }
  for (const f of ['correlationId', 'target'] as const) {
    if (e[f] !== undefined && typeof e[f] !== 'string') return `${f}: must be a string`;
  }
  if (typeof e.timestamp !== 'number' || !Number.isFinite(e.timestamp))
    return 'timestamp: must be a number (ms since epoch)';
  if (typeof e.headers !== 'object' || e.headers === null || Array.isArray(e.headers))
    return 'headers: must be an object';
  for (const [k, v] of Object.entries(e.headers as object))
    if (typeof v !== 'string') return `headers.${k}: must be a string`;
  if (!('payload' in e)) return 'payload: missing';
  return undefined;
}

export function encodeEnvelope(e: Envelope): Buffer {
  return Buffer.from(JSON.stringify(e), 'utf8');
}

export type Decoded = { ok: true; envelope: Envelope } | { ok: false; reason: string };

export function decodeEnvelope(data: Buffer | null): Decoded {
  if (data === null) return { ok: false, reason: 'empty message' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(data.toString('utf8'));
  } catch (err) {
    return { ok: false, reason: `not JSON: ${(err as Error).message}` };
  }
  const problem = envelopeProblem(parsed);
  return problem ? { ok: false, reason: problem } : { ok: true, envelope: parsed as Envelope };
}
