/**
 * User feedback on one answer: thumbs, a 1–5 rating and/or a correction,
 * naming the request it is about. Validated with a JSON Schema (ajv); the
 * first problem becomes an ERR_INVALID_ARG naming the field.
 */
import { Ajv } from 'ajv';

import { WhaleError } from '../../../common/errors.js';

export interface FeedbackInput {
  requestId: string;
  thumbs?: 'up' | 'down';
  rating?: number;
  /** The answer the user expected instead. */
  correction?: string;
  /** For answers whose request this node did not route (e.g. plain V2 calls): who answered. */
  model?: string;
  version?: string;
  level?: string;
  userId?: string;
  comment?: string;
}

export const FEEDBACK_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['requestId'],
  anyOf: [{ required: ['thumbs'] }, { required: ['rating'] }, { required: ['correction'] }],
  properties: {
    requestId: { type: 'string', minLength: 1, maxLength: 256 },
    thumbs: { enum: ['up', 'down'] },
    rating: { type: 'integer', minimum: 1, maximum: 5 },
    correction: { type: 'string', maxLength: 65_536 },
    model: { type: 'string', minLength: 1, maxLength: 128 },
    version: { type: 'string', minLength: 1, maxLength: 128 },
    level: { enum: ['quick', 'normal', 'deep'] },
    userId: { type: 'string', maxLength: 256 },
    comment: { type: 'string', maxLength: 4096 },
  },
} as const;

const validate = new Ajv({ allErrors: false, strict: false }).compile(FEEDBACK_SCHEMA);

export function parseFeedback(raw: unknown, at = 'feedback'): FeedbackInput {
  if (validate(raw)) return raw as unknown as FeedbackInput;
  // anyOf reports its branches' errors first; the anyOf error itself says what is missing.
  const e = validate.errors?.find((x) => x.keyword === 'anyOf') ?? validate.errors?.[0];
  let field = at + (e?.instancePath ?? '').replace(/\//g, '.');
  let message = e?.message ?? 'invalid';
  if (e?.keyword === 'required') field += `.${(e.params as { missingProperty: string }).missingProperty}`;
  if (e?.keyword === 'additionalProperties')
    field += `.${(e.params as { additionalProperty: string }).additionalProperty}`;
  if (e?.keyword === 'anyOf') message = 'needs thumbs, rating or correction';
  if (e?.keyword === 'enum') message += ` (${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')})`;
  throw new WhaleError('ERR_INVALID_ARG', `${field}: ${message}`, { field });
}

/**
 * The feedback's quality in [0, 1]: the mean of its signals, thumbs up = 1 and
 * down = 0, rating r = (r − 1)/4, a correction = 0 (the answer needed one).
 */
export function feedbackQuality(f: FeedbackInput): number {
  const signals: number[] = [];
  if (f.thumbs !== undefined) signals.push(f.thumbs === 'up' ? 1 : 0);
  if (f.rating !== undefined) signals.push((f.rating - 1) / 4);
  if (f.correction !== undefined) signals.push(0);
  return signals.reduce((a, b) => a + b, 0) / signals.length;
}
