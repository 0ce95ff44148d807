/**
 * whale.routing.json: the tasks `whale start` routes and how it learns.
 * Read from $WHALE_ROUTING, else whale.routing.json beside the main
 * configuration (or in the working directory); without one, the default
 * model's name is a task served by every ready model with its signature.
 * Validated with a JSON Schema (ajv): the first problem is an ERR_CONFIG naming the field.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

import { Ajv } from 'ajv';

import { WhaleError } from '../../../common/errors.js';
import type { ProposalAction } from '../../quality/optimization/quality-optimizer.js';
import type { BanditOptions, RewardWeights } from './route-optimizer.js';

export interface ArmConfig {
  id?: string;
  model: string;
  level?: 'quick' | 'normal' | 'deep';
}

export interface RoutingConfig {
  tasks?: Record<
    string,
    {
      arms: ArmConfig[];
      canary?: { arm: string; share: number };
      shadow?: { arm: string; share: number };
      sticky?: boolean;
    }
  >;
  replicas?: Record<string, string[]>;
  bandit?: BanditOptions & { seed?: number };
  reward?: RewardWeights;
  feedback?: { windowMs?: number; minSamples?: number; alpha?: number; minDrop?: number };
  policy?: {
    apply?: ProposalAction[];
    qualityTarget?: number;
    latencyTargetMs?: number;
    minSamples?: number;
    shiftShare?: number;
  };
  /** How often the QualityOptimizer looks at every model (default 30 s; 0 = never). */
  optimizeEveryMs?: number;
  /** How often the QualityMonitor takes a point (default 10 s). */
  sampleEveryMs?: number;
  /** A hosted model used for the evaluator's embedding similarity. */
  embeddingModel?: string;
}

const share = {
  type: 'object',
  additionalProperties: false,
  required: ['arm', 'share'],
  properties: { arm: { type: 'string' }, share: { type: 'number', minimum: 0, maximum: 1 } },
};
const positive = { type: 'number', exclusiveMinimum: 0 };
const ratio = { type: 'number', minimum: 0, maximum: 1 };

export const ROUTING_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    $schema: { type: 'string' },
    tasks: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['arms'],
        properties: {
          arms: {
            type: 'array',
            minItems: 1,
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['model'],
              properties: {
                id: { type: 'string', minLength: 1 },
                model: { type: 'string', minLength: 1 },
                level: { enum: ['quick', 'normal', 'deep'] },
              },
            },
          },
          canary: share,
          shadow: share,
          sticky: { type: 'boolean' },
        },
      },
    },
    replicas: {
      type: 'object',
      additionalProperties: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
    },
    bandit: {
      type: 'object',
      additionalProperties: false,
      properties: {
        alpha: { type: 'number', minimum: 0 },
        discount: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
        ridge: positive,
        maxExploreShare: ratio,
        minTries: { type: 'integer', minimum: 0, maximum: 1000 },
        tenantBuckets: { type: 'integer', minimum: 0, maximum: 64 },
        seed: { type: 'integer' },
      },
    },
    reward: {
      type: 'object',
      additionalProperties: false,
      properties: {
        quality: { type: 'number', minimum: 0 },
        latency: { type: 'number', minimum: 0 },
        resource: { type: 'number', minimum: 0 },
        latencyScaleMs: positive,
      },
    },
    feedback: {
      type: 'object',
      additionalProperties: false,
      properties: {
        windowMs: positive,
        minSamples: { type: 'integer', minimum: 2 },
        alpha: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
        minDrop: { type: 'number', minimum: 0 },
      },
    },
    policy: {
      type: 'object',
      additionalProperties: false,
      properties: {
        apply: {
          type: 'array',
          items: {
            enum: ['shift-traffic', 'change-level', 'schedule-federated-round', 'rollback-version'],
          },
        },
        qualityTarget: ratio,
        latencyTargetMs: positive,
        minSamples: { type: 'integer', minimum: 1 },
        shiftShare: ratio,
      },
    },
    optimizeEveryMs: { type: 'number', minimum: 0 },
    sampleEveryMs: positive,
    embeddingModel: { type: 'string', minLength: 1 },
  },
} as const;

const validate = new Ajv({ allErrors: false, strict: false }).compile(ROUTING_SCHEMA);

export const ROUTING_FILE = 'whale.routing.json';

export function parseRoutingConfig(raw: unknown): RoutingConfig {
  if (validate(raw)) return raw as RoutingConfig;
  const e = validate.errors?.[0];
  let field = (e?.instancePath ?? '').split('/').filter(Boolean).join('.');
  const p = e?.params as Record<string, unknown> | undefined;
  if (e?.keyword === 'additionalProperties') field = [field, p?.additionalProperty].filter(Boolean).join('.');
  if (e?.keyword === 'required') field = [field, p?.missingProperty].filter(Boolean).join('.');
  field = `routing${field ? `.${field}` : ''}`;
  const message = e?.keyword === 'additionalProperties' ? 'is not a routing option' : (e?.message ?? 'invalid');
  throw new WhaleError('ERR_CONFIG', `${field}: ${message}`, { field });
}

/** The routing file for a node (`file`: the one named by WHALE_ROUTING, which the server passes), or {} when there is none. */
export function loadRoutingConfig(
  opts: { file?: string | undefined; configSource?: string; cwd?: string } = {},
): RoutingConfig {
  const cwd = opts.cwd ?? process.cwd();
  const explicit = opts.file;
  const file = explicit
    ? resolve(cwd, explicit)
    : join(opts.configSource ? dirname(opts.configSource) : cwd, ROUTING_FILE);
  if (!explicit && !existsSync(file)) return {};
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new WhaleError('ERR_CONFIG', `routing: cannot read ${file}: ${(err as Error).message}`, {
      field: 'routing',
      cause: err,
    });
  }
  return parseRoutingConfig(raw);
}
