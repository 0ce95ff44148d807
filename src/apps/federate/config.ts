/**
 * federation.json / learner.json: a federation of any model described in one
 * file (docs/federated-learning.md, "Federate your own model"). Paths are
 * relative to the file. Every mistake is ERR_CONFIG naming the file and field.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

import { WhaleError } from '../../common/errors.js';
import type { Strategy } from '../../core/federation/learning/types.js';
import type { ReadDatasetOptions } from '../../core/federation/learning/data/read-dataset.js';
import type { Uplink } from '../../core/federation/orchestration/messages.js';
import type { TfjsBackendChoice } from '../../models/tfjs-backend.js';
import type { TfjsLoss } from '../../models/tfjs-trainer.js';

/** The model and how to train it. */
export type ModelSpec =
  /** A saved tfjs Layers model (model.json + weights; its weights are the initial model). */
  | { kind: 'tfjs'; path: string; inputs?: string[]; target?: string; loss?: TfjsLoss; backend?: TfjsBackendChoice }
  /** A module exporting a Trainer, or a function (no argument) returning one (TfjsTrainer, defineTrainer, your own). */
  | { kind: 'module'; path: string; export: string }
  /** The MNIST presets. */
  | { kind: 'preset'; preset: '2nn' | 'cnn'; backend?: TfjsBackendChoice };

export interface LearnerSpec {
  id: string;
  /** client id -> its dataset (directory or file). */
  clients: Record<string, string>;
}

export interface FederationConfig {
  file: string;
  federationId: string;
  model: ModelSpec;
  /** Reader options for every dataset (scale, labelColumn, format, limit). */
  data: ReadDatasetOptions;
  /** Held-out set the coordinator evaluates on. */
  test?: string;
  learners: LearnerSpec[];
  /** in-process (default without KAFKA_BROKERS), processes (one child process per learner), external (`whale learner --config`). */
  run?: 'in-process' | 'processes' | 'external';
  rounds: number;
  fraction: number;
  minClients?: number;
  epochs: number;
  batchSize: number;
  learningRate: number;
  proximalMu?: number;
  lrDecay?: number;
  serverLr?: number;
  target?: number;
  seed: number;
  strategy: Strategy;
  byzantine?: number;
  trim?: number;
  uplink: Uplink;
  topkRatio?: number;
  dp?: { clip: number; noiseMultiplier: number; delta: number };
  normBound?: number;
  secure: boolean;
  /** External learners: the coordinator's key and the policy naming every party's public key. */
  securityFiles?: { keyFile: string; policyFile: string };
  storeDir?: string;
  redisUrl?: string;
  roundTimeoutMs?: number;
}

type Json = Record<string, unknown>;

class Reader {
  constructor(
    readonly file: string,
    private readonly o: Json,
    private readonly prefix = '',
  ) {}
  fail(field: string, message: string): never {
    throw new WhaleError('ERR_CONFIG', `${this.file}: ${this.prefix}${field}: ${message}`, {
      field: `${this.prefix}${field}`,
      file: this.file,
    });
  }
  has(k: string): boolean {
    return this.o[k] !== undefined;
  }
  raw(k: string): unknown {
    return this.o[k];
  }
  str(k: string, dflt?: string): string {
    const v = this.o[k] ?? dflt;
    if (typeof v !== 'string' || v === '') this.fail(k, `expected a non-empty string, got ${JSON.stringify(v)}`);
    return v;
  }
  optStr(k: string): string | undefined {
    return this.has(k) ? this.str(k) : undefined;
  }
  num(k: string, dflt: number | undefined, ok: (n: number) => boolean, what: string): number {
    const v = this.o[k] ?? dflt;
    if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v))
      this.fail(k, `expected ${what}, got ${JSON.stringify(v)}`);
    return v;
  }
  optNum(k: string, ok: (n: number) => boolean, what: string): number | undefined {
    return this.has(k) ? this.num(k, undefined, ok, what) : undefined;
  }
  oneOf<T extends string>(k: string, options: readonly T[], dflt?: T): T {
    const v = this.o[k] ?? dflt;
    if (!options.includes(v as T)) this.fail(k, `one of ${options.join(', ')}, got ${JSON.stringify(v)}`);
    return v as T;
  }
  obj(k: string): Reader {
    const v = this.o[k];
    if (typeof v !== 'object' || v === null || Array.isArray(v))
      this.fail(k, `expected an object, got ${JSON.stringify(v)}`);
    return new Reader(this.file, v as Json, `${this.prefix}${k}.`);
  }
  keys(): string[] {
    return Object.keys(this.o);
  }
  path(k: string): string {
    return resolve(dirname(this.file), this.str(k));
  }
}

function readJson(file: string): Json {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new WhaleError(
      'ERR_CONFIG',
      `${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      { field: 'config', file },
    );
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new WhaleError('ERR_CONFIG', `${file}: not JSON: ${(err as Error).message}`, { field: 'config', file });
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new WhaleError('ERR_CONFIG', `${file}: expected a JSON object`, { field: 'config', file });
  return v as Json;
}

const BACKENDS = ['auto', 'wasm', 'cpu', 'tensorflow'] as const;
const LOSSES = ['auto', 'softmax-cross-entropy', 'categorical-crossentropy', 'mean-squared-error'] as const;

export function parseModel(r: Reader): ModelSpec {
  const m = r.obj('model');
  const kinds = ['tfjs', 'module', 'preset'].filter((k) => m.has(k));
  if (kinds.length !== 1)
    m.fail(
      '',
      `give exactly one of tfjs (a model.json), module (a .js/.mjs exporting a Trainer) or preset (2nn, cnn); got ${kinds.join(', ') || 'none'}`,
    );
  const backend = m.has('backend') ? { backend: m.oneOf('backend', BACKENDS) } : {};
  if (kinds[0] === 'preset') return { kind: 'preset', preset: m.oneOf('preset', ['2nn', 'cnn'] as const), ...backend };
  if (kinds[0] === 'module') return { kind: 'module', path: m.path('module'), export: m.str('export', 'default') };
  const inputs = m.raw('inputs');
  if (
    inputs !== undefined &&
    !(Array.isArray(inputs) && inputs.length > 0 && inputs.every((s) => typeof s === 'string' && s !== ''))
  )
    m.fail('inputs', `expected a non-empty array of field names, got ${JSON.stringify(inputs)}`);
  return {
    kind: 'tfjs',
    path: m.path('tfjs'),
    ...(inputs ? { inputs: inputs as string[] } : {}),
    ...(m.has('target') ? { target: m.str('target') } : {}),
    ...(m.has('loss') ? { loss: m.oneOf('loss', LOSSES) } : {}),
    ...backend,
  };
}

export function parseDataOptions(r: Reader): ReadDatasetOptions {
  if (!r.has('data')) return {};
  const d = r.obj('data');
  const scale = d.has('scale') ? d.obj('scale') : undefined;
  return {
    ...(d.has('format') ? { format: d.oneOf('format', ['csv', 'jsonl', 'npy', 'idx'] as const) } : {}),
    ...(d.has('labelColumn') ? { labelColumn: d.str('labelColumn') } : {}),
    ...(d.has('limit')
      ? { limit: d.num('limit', undefined, (n) => Number.isInteger(n) && n >= 1, 'an integer >= 1') }
      : {}),
    ...(scale
      ? { scale: Object.fromEntries(scale.keys().map((k) => [k, scale.num(k, undefined, () => true, 'a number')])) }
      : {}),
  };
}

function parseClients(r: Reader, k: string): Record<string, string> {
  const c = r.obj(k);
  if (c.keys().length === 0) c.fail('', 'at least one client');
  return Object.fromEntries(
    c.keys().map((id) => {
      if (!/^[A-Za-z0-9._-]{1,100}$/.test(id)) c.fail(id, 'a client id is 1-100 of A-Z a-z 0-9 . _ -');
      return [id, c.path(id)];
    }),
  );
}

export function parseFederationConfig(file: string): FederationConfig {
  const r = new Reader(file, readJson(file));
  const list = r.raw('learners') as unknown[];
  if (!Array.isArray(list) || list.length === 0) r.fail('learners', 'expected a non-empty array of { id, clients }');
  const learners = list.map((_, i) => {
    const l = new Reader(file, list as unknown as Json, 'learners.').obj(String(i));
    return { id: l.str('id'), clients: parseClients(l, 'clients') };
  });
  const ids = new Set<string>();
  for (const [i, l] of learners.entries()) {
    if (!/^[A-Za-z0-9._-]{1,100}$/.test(l.id)) r.fail(`learners.${i}.id`, 'a learner id is 1-100 of A-Z a-z 0-9 . _ -');
    for (const c of [l.id, ...Object.keys(l.clients).map((c) => `client ${c}`)]) {
      if (ids.has(c)) r.fail(`learners.${i}`, `${c} appears twice`);
      ids.add(c);
    }
  }
  const strategy = r.oneOf('strategy', ['fedavg', 'median', 'trimmed-mean', 'krum', 'multi-krum'] as const, 'fedavg');
  const dp = r.has('dp') ? r.obj('dp') : undefined;
  if (dp && strategy !== 'fedavg')
    r.fail('dp', `DP-FedAvg replaces the aggregate with a noised mean; use strategy fedavg (got ${strategy})`);
  const frac = (n: number) => n > 0 && n <= 1;
  const int = (min: number) => (n: number) => Number.isInteger(n) && n >= min;
  return {
    file,
    federationId: r.str('federationId'),
    model: parseModel(r),
    data: parseDataOptions(r),
    ...(r.has('test') ? { test: r.path('test') } : {}),
    learners,
    ...(r.has('run') ? { run: r.oneOf('run', ['in-process', 'processes', 'external'] as const) } : {}),
    rounds: r.num('rounds', 10, int(1), 'an integer >= 1'),
    fraction: r.num('fraction', 1, frac, 'a number in (0, 1]'),
    ...(r.has('minClients') ? { minClients: r.num('minClients', undefined, int(1), 'an integer >= 1') } : {}),
    epochs: r.num('epochs', 1, int(1), 'an integer >= 1'),
    batchSize: r.num('batchSize', 10, int(0), 'an integer >= 0 (0: the whole dataset)'),
    learningRate: r.num('learningRate', 0.1, (n) => n > 0, 'a number > 0'),
    ...(r.has('proximalMu') ? { proximalMu: r.num('proximalMu', undefined, (n) => n >= 0, 'a number >= 0') } : {}),
    ...(r.has('lrDecay') ? { lrDecay: r.num('lrDecay', undefined, (n) => n > 0, 'a number > 0') } : {}),
    ...(r.has('serverLr') ? { serverLr: r.num('serverLr', undefined, (n) => n > 0, 'a number > 0') } : {}),
    ...(r.has('target') ? { target: r.num('target', undefined, frac, 'an accuracy in (0, 1]') } : {}),
    seed: r.num('seed', 1, int(0), 'an integer >= 0'),
    strategy,
    ...(r.has('byzantine') ? { byzantine: r.num('byzantine', undefined, int(0), 'an integer >= 0') } : {}),
    ...(r.has('trim') ? { trim: r.num('trim', undefined, (n) => n >= 0 && n < 0.5, 'a fraction in [0, 0.5)') } : {}),
    uplink: r.oneOf('uplink', ['f32', 'int8', 'fp16', 'topk'] as const, 'f32'),
    ...(r.has('topkRatio') ? { topkRatio: r.num('topkRatio', undefined, frac, 'a number in (0, 1]') } : {}),
    ...(dp
      ? {
          dp: {
            clip: dp.num('clip', undefined, (n) => n > 0, 'a number > 0'),
            noiseMultiplier: dp.num('noiseMultiplier', undefined, (n) => n >= 0, 'a number >= 0'),
            delta: dp.num('delta', 1e-5, (n) => n > 0 && n < 1, 'a number in (0, 1)'),
          },
        }
      : {}),
    ...(r.has('normBound') ? { normBound: r.num('normBound', undefined, (n) => n >= 1, 'a number >= 1') } : {}),
    ...parseSecurity(r),
    ...(r.has('storeDir') ? { storeDir: r.path('storeDir') } : {}),
    ...(r.has('redisUrl') ? { redisUrl: r.str('redisUrl') } : {}),
    ...(r.has('roundTimeoutMs')
      ? { roundTimeoutMs: r.num('roundTimeoutMs', undefined, int(1), 'an integer >= 1') }
      : {}),
  };
}

/** learner.json: one learner on its own machine. */
export interface LearnerConfig {
  file: string;
  federationId: string;
  learnerId: string;
  model: ModelSpec;
  data: ReadDatasetOptions;
  clients: Record<string, string>;
  storeDir?: string;
  redisUrl?: string;
  seed: number;
  /** Signed messages: this learner's key and the federation's access policy. */
  security?: { keyFile: string; policyFile: string };
}

function parseSecurity(r: Reader): { secure: boolean; securityFiles?: { keyFile: string; policyFile: string } } {
  if (!r.has('security')) return { secure: false };
  const s = r.obj('security');
  const signed = (s.raw('signed') ?? true) as boolean;
  if (typeof signed !== 'boolean') s.fail('signed', `expected true or false, got ${JSON.stringify(signed)}`);
  if (s.has('keyFile') !== s.has('policyFile'))
    s.fail(s.has('keyFile') ? 'policyFile' : 'keyFile', 'give keyFile and policyFile together');
  return {
    secure: signed,
    ...(signed && s.has('keyFile')
      ? { securityFiles: { keyFile: s.path('keyFile'), policyFile: s.path('policyFile') } }
      : {}),
  };
}

export function parseLearnerConfig(file: string): LearnerConfig {
  const r = new Reader(file, readJson(file));
  return {
    file,
    federationId: r.str('federationId'),
    learnerId: r.str('learnerId'),
    model: parseModel(r),
    data: parseDataOptions(r),
    clients: parseClients(r, 'clients'),
    ...(r.has('storeDir') ? { storeDir: r.path('storeDir') } : {}),
    ...(r.has('redisUrl') ? { redisUrl: r.str('redisUrl') } : {}),
    seed: r.num('seed', 1, (n) => Number.isInteger(n) && n >= 0, 'an integer >= 0'),
    ...(() => {
      const sec = parseSecurity(r);
      if (sec.secure && !sec.securityFiles)
        r.fail('security', 'a signed learner needs keyFile (its Ed25519 key, PEM) and policyFile');
      return sec.securityFiles ? { security: sec.securityFiles } : {};
    })(),
  };
}

/** The learner of a federation config named `learnerId`, as a learner config. */
export function learnerOf(c: FederationConfig, learnerId: string): LearnerConfig {
  const l = c.learners.find((x) => x.id === learnerId);
  if (!l)
    throw new WhaleError(
      'ERR_CONFIG',
      `${c.file}: no learner '${learnerId}' (learners: ${c.learners.map((x) => x.id).join(', ')})`,
      {
        field: 'learner',
        file: c.file,
      },
    );
  return {
    file: c.file,
    federationId: c.federationId,
    learnerId,
    model: c.model,
    data: c.data,
    clients: l.clients,
    ...(c.storeDir ? { storeDir: c.storeDir } : {}),
    ...(c.redisUrl ? { redisUrl: c.redisUrl } : {}),
    seed: c.seed,
  };
}

/** Whether a config file is a federation's (has `learners`) or one learner's. */
export function isFederationConfig(file: string): boolean {
  return Array.isArray(readJson(file).learners);
}
