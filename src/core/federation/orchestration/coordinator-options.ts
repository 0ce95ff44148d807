import { WhaleError } from '../../../common/errors.js';
import type { Logger } from '../../../common/logger.js';
import type { TensorCodec } from '../../memory/codec.js';
import type { Bus } from '../../../transport/bus.js';
import type { AggregatorOptions } from '../learning/types.js';
import type { ServerOptimizerOptions } from '../learning/server-optimizer.js';
import { LearningOptimizer, type LearningOptimizerOptions } from '../learning/client/learning-optimizer.js';
import type { CheckpointStore } from './checkpoint-store.js';
import type { KeyValueStore } from './kv-store.js';
import { UPLINKS, type Uplink } from './messages.js';
import type { RoundResult } from './round-result.js';
import type { AcceptedUpdate } from './update-intake.js';
import type { RoundHook } from '../security/round-defense.js';

/** A Trainer's metrics on the held-out set; accuracy and loss are reported per round when present. */
export interface FederationEvaluation {
  readonly accuracy?: number;
  readonly loss?: number;
}

/** Everything a round aggregated, for callers that check or log it. */
export interface RoundDetail {
  updates: readonly AcceptedUpdate[];
  /** The Aggregator's output on those updates (weights: example counts). */
  aggregate: Float32Array;
  /** The global model after the server step. */
  global: Float32Array;
}

export interface ModelCoordinatorOptions {
  federationId: string;
  bus: Bus;
  /** Blob store of the claim-checked tensors, shared with the learners. */
  store: KeyValueStore;
  /** Default: checkpoints in `store`; false: none. */
  checkpoints?: CheckpointStore | false;
  initialModel: () => Float32Array | Promise<Float32Array>;
  /** Centralized evaluation on a held-out set, every round. */
  evaluate?: (weights: Float32Array) => Promise<FederationEvaluation>;
  rounds: number;
  /** C: fraction of the registered clients selected per round. */
  fraction: number;
  minClients?: number;
  /** The first round waits (up to waitForClientsMs) until this many clients registered. Default 0. */
  expectClients?: number;
  seed?: number;
  epochs: number;
  /** 0: the whole shard as one batch (B = infinity). */
  batch: number;
  learning: LearningOptimizer | LearningOptimizerOptions;
  aggregator?: AggregatorOptions;
  serverOptimizer?: ServerOptimizerOptions;
  /** How clients send updates (default 'f32'; 'topk' uses error feedback per client). */
  uplink?: Uplink;
  topkRatio?: number;
  /** Codec of the global model sent to clients (default 'f32'). */
  downlinkCodec?: TensorCodec;
  /** Tensors above this many bytes go to the blob store (default 256 KiB). */
  inlineBytes?: number;
  roundTimeoutMs?: number;
  /** How long one attempt waits for minClients registered clients. */
  waitForClientsMs?: number;
  maxRoundAttempts?: number;
  /** A learner silent this long (its registration is its heartbeat) has its clients skipped. */
  silentAfterMs?: number;
  maxMissedRounds?: number;
  onRound?: (result: RoundResult, detail: RoundDetail) => void;
  /** Around aggregation: attack simulation, norm-bound filter, DP (security/round-defense). */
  roundHook?: RoundHook;
  logger?: Logger;
}

export type ResolvedCoordinatorOptions = Required<
  Omit<
    ModelCoordinatorOptions,
    'evaluate' | 'onRound' | 'logger' | 'checkpoints' | 'learning' | 'topkRatio' | 'roundHook'
  >
> &
  Pick<ModelCoordinatorOptions, 'evaluate' | 'onRound' | 'topkRatio' | 'roundHook'> & { learning: LearningOptimizer };

export function resolveCoordinatorOptions(o: ModelCoordinatorOptions): ResolvedCoordinatorOptions {
  const bad = (field: string, why: string): never => {
    throw new WhaleError('ERR_INVALID_OPTION', `options.${field}: ${why}`, { field: `options.${field}` });
  };
  if (typeof o !== 'object' || o === null) bad('federationId', 'options must be an object');
  if (typeof o.federationId !== 'string' || !/^[A-Za-z0-9._-]{1,100}$/.test(o.federationId))
    bad('federationId', 'must be 1-100 of [A-Za-z0-9._-]');
  if (!o.bus || typeof o.bus.publish !== 'function') bad('bus', 'a Bus is required');
  if (!o.store || typeof o.store.get !== 'function') bad('store', 'a KeyValueStore is required');
  if (typeof o.initialModel !== 'function') bad('initialModel', 'must be a function returning the initial weights');
  const int = (field: string, v: unknown, min: number): void => {
    if (!(typeof v === 'number' && Number.isInteger(v) && v >= min))
      bad(field, `must be an integer >= ${min}, got ${String(v)}`);
  };
  int('rounds', o.rounds, 1);
  int('epochs', o.epochs, 1);
  int('batch', o.batch, 0);
  if (!(typeof o.fraction === 'number' && o.fraction > 0 && o.fraction <= 1))
    bad('fraction', `must be in (0, 1], got ${String(o.fraction)}`);
  const r = {
    minClients: o.minClients ?? 1,
    expectClients: o.expectClients ?? 0,
    seed: o.seed ?? 1,
    roundTimeoutMs: o.roundTimeoutMs ?? 120_000,
    waitForClientsMs: o.waitForClientsMs ?? 30_000,
    maxRoundAttempts: o.maxRoundAttempts ?? 3,
    silentAfterMs: o.silentAfterMs ?? 15_000,
    maxMissedRounds: o.maxMissedRounds ?? 3,
    inlineBytes: o.inlineBytes ?? 256 * 1024,
  };
  int('minClients', r.minClients, 1);
  int('expectClients', r.expectClients, 0);
  int('seed', r.seed, 0);
  int('roundTimeoutMs', r.roundTimeoutMs, 1);
  int('waitForClientsMs', r.waitForClientsMs, 0);
  int('maxRoundAttempts', r.maxRoundAttempts, 1);
  int('silentAfterMs', r.silentAfterMs, 1);
  int('maxMissedRounds', r.maxMissedRounds, 1);
  int('inlineBytes', r.inlineBytes, 0);
  const uplink = o.uplink ?? 'f32';
  if (!UPLINKS.includes(uplink)) bad('uplink', `must be one of ${UPLINKS.join(', ')}`);
  if (uplink === 'topk' && !(typeof o.topkRatio === 'number' && o.topkRatio > 0 && o.topkRatio <= 1))
    bad('topkRatio', "must be in (0, 1] with uplink 'topk'");
  return {
    ...o,
    ...r,
    uplink,
    topkRatio: o.topkRatio,
    downlinkCodec: o.downlinkCodec ?? 'f32',
    aggregator: o.aggregator ?? { strategy: 'fedavg' },
    // beta1 = 0 and lr = 1: the global model becomes the aggregate (plain FedAvg); momentum is opt-in.
    serverOptimizer: o.serverOptimizer ?? { optimizer: 'fedavgm', lr: 1, beta1: 0 },
    learning: o.learning instanceof LearningOptimizer ? o.learning : new LearningOptimizer(o.learning),
  };
}
