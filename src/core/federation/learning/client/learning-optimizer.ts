/**
 * Learning-rate schedules and stopping for a federation: the server learning
 * rate per round (scales the aggregated update before the ServerOptimizer
 * step), the clients' learning rate with per-round decay, the FedProx
 * proximal term mu, and early stopping once a target accuracy is reached.
 */
import { WhaleError } from '../../../../common/errors.js';

export type ServerLrSchedule = 'constant' | 'step' | 'inverse-sqrt' | 'cosine';

export interface LearningOptimizerOptions {
  /** Clients' learning rate in round 1. */
  clientLr: number;
  /** Multiplied into the client learning rate every round (default 1: none). */
  clientLrDecay?: number;
  /** Default 1 (the aggregate is applied as it is). */
  serverLr?: number;
  serverLrSchedule?: ServerLrSchedule;
  /** 'step': multiply by gamma every stepRounds; 'cosine': decay to 0 over totalRounds. */
  stepRounds?: number;
  gamma?: number;
  totalRounds?: number;
  /** FedProx proximal term (default 0: FedAvg). */
  mu?: number;
  /** Stop once the test accuracy reaches this (0-1). */
  targetAccuracy?: number;
}

const SCHEDULES: readonly ServerLrSchedule[] = ['constant', 'step', 'inverse-sqrt', 'cosine'];

export class LearningOptimizer {
  readonly o: Required<Omit<LearningOptimizerOptions, 'targetAccuracy' | 'totalRounds'>> &
    Pick<LearningOptimizerOptions, 'targetAccuracy' | 'totalRounds'>;

  constructor(o: LearningOptimizerOptions) {
    const bad = (field: string, why: string): never => {
      throw new WhaleError('ERR_INVALID_OPTION', `options.${field}: ${why}`, { field: `options.${field}` });
    };
    if (typeof o !== 'object' || o === null) bad('clientLr', 'options must be an object with clientLr');
    const positive = (field: keyof LearningOptimizerOptions, v: unknown): void => {
      if (v !== undefined && !(typeof v === 'number' && Number.isFinite(v) && v > 0))
        bad(field, `must be a finite number > 0, got ${String(v)}`);
    };
    positive('clientLr', o.clientLr);
    if (o.clientLr === undefined) bad('clientLr', 'is required');
    positive('clientLrDecay', o.clientLrDecay);
    positive('serverLr', o.serverLr);
    positive('gamma', o.gamma);
    if (o.stepRounds !== undefined && !(Number.isInteger(o.stepRounds) && o.stepRounds >= 1))
      bad('stepRounds', 'must be an integer >= 1');
    if (o.totalRounds !== undefined && !(Number.isInteger(o.totalRounds) && o.totalRounds >= 1))
      bad('totalRounds', 'must be an integer >= 1');
    if (o.mu !== undefined && !(typeof o.mu === 'number' && Number.isFinite(o.mu) && o.mu >= 0))
      bad('mu', `must be a finite number >= 0, got ${String(o.mu)}`);
    if (
      o.targetAccuracy !== undefined &&
      !(typeof o.targetAccuracy === 'number' && o.targetAccuracy > 0 && o.targetAccuracy <= 1)
    ) {
      bad('targetAccuracy', `must be in (0, 1], got ${String(o.targetAccuracy)}`);
    }
    const schedule = o.serverLrSchedule ?? 'constant';
    if (!SCHEDULES.includes(schedule)) bad('serverLrSchedule', `must be one of ${SCHEDULES.join(', ')}`);
    if (schedule === 'cosine' && o.totalRounds === undefined)
      bad('totalRounds', "is required by the 'cosine' schedule");
    this.o = {
      clientLr: o.clientLr,
      clientLrDecay: o.clientLrDecay ?? 1,
      serverLr: o.serverLr ?? 1,
      serverLrSchedule: schedule,
      stepRounds: o.stepRounds ?? 50,
      gamma: o.gamma ?? 0.5,
      mu: o.mu ?? 0,
      targetAccuracy: o.targetAccuracy,
      totalRounds: o.totalRounds,
    };
  }

  /** Client learning rate of a round (rounds count from 1). */
  clientLr(round: number): number {
    return this.o.clientLr * this.o.clientLrDecay ** (round - 1);
  }

  serverLr(round: number): number {
    const { serverLr: lr, serverLrSchedule: s } = this.o;
    switch (s) {
      case 'step':
        return lr * this.o.gamma ** Math.floor((round - 1) / this.o.stepRounds);
      case 'inverse-sqrt':
        return lr / Math.sqrt(round);
      case 'cosine':
        return lr * 0.5 * (1 + Math.cos((Math.PI * Math.min(round - 1, this.o.totalRounds!)) / this.o.totalRounds!));
      default:
        return lr;
    }
  }

  get mu(): number {
    return this.o.mu;
  }

  /** True once the accuracy reached the target (never without one). */
  reachedTarget(accuracy: number | undefined): boolean {
    return this.o.targetAccuracy !== undefined && accuracy !== undefined && accuracy >= this.o.targetAccuracy;
  }
}
