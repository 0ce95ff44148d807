/**
 * What the coordinator does to a round's accepted updates around aggregation:
 * (for experiments) Byzantine clients replace theirs; the IntegrityChecker
 * drops or flags those whose norm is far above the round's median; with DP
 * the aggregate becomes DP-FedAvg's clipped, noised mean and ε is accounted.
 * Plugged into ModelCoordinator as its `roundHook`.
 */
import { WhaleError } from '../../../common/errors.js';
import { DpFedAvg, type DpOptions } from '../privacy/dp-fedavg.js';
import { Attack, type AttackOptions } from './attacks.js';
import { IntegrityChecker } from './integrity-checker.js';

export interface RoundUpdate {
  clientId: string;
  delta: Float32Array;
  examples: number;
}

export interface RoundHook {
  beforeAggregate<U extends RoundUpdate>(round: number, updates: U[]): U[];
  /** Replaces the aggregate (DP), or returns it unchanged. */
  afterAggregate(round: number, aggregate: Float32Array, updates: readonly RoundUpdate[]): Float32Array;
  /** Figures of the round for its RoundResult. */
  report(round: number): RoundDefenseReport;
}

export interface RoundDefenseReport {
  epsilon?: number;
  malicious?: number;
  droppedByNorm?: number;
  clippedByDp?: number;
}

export interface RoundDefenseOptions {
  /** All client ids (the attack picks its malicious ones among them). */
  clients?: readonly string[];
  attack?: AttackOptions;
  /** Norm bound: updates above factor × the round's median norm are dropped (or only flagged). */
  normBound?: { factor: number; onOutlier?: 'drop' | 'flag' };
  dp?: DpOptions;
}

export class RoundDefense implements RoundHook {
  readonly attack: Attack | undefined;
  readonly dp: DpFedAvg | undefined;
  private last: RoundDefenseReport = {};

  constructor(private readonly o: RoundDefenseOptions) {
    if (o.attack && !o.clients)
      throw new WhaleError('ERR_INVALID_OPTION', 'clients: the attack needs the client ids', { field: 'clients' });
    this.attack = o.attack ? new Attack(o.attack, o.clients!) : undefined;
    this.dp = o.dp ? new DpFedAvg(o.dp) : undefined;
  }

  beforeAggregate<U extends RoundUpdate>(round: number, updates: U[]): U[] {
    let out = this.attack ? this.attack.apply(updates, round) : updates;
    this.last = {
      ...(this.attack ? { malicious: out.filter((u) => this.attack!.isMalicious(u.clientId)).length } : {}),
    };
    if (this.o.normBound && out.length > 0) {
      const checker = new IntegrityChecker({
        length: out[0]!.delta.length,
        normFactor: this.o.normBound.factor,
        onOutlier: this.o.normBound.onOutlier ?? 'drop',
      });
      const r = checker.checkRound(out.map((u) => ({ ...u, values: u.delta })));
      const keep = new Set(r.kept.map((k) => k.clientId));
      this.last.droppedByNorm = out.length - keep.size;
      out = out.filter((u) => keep.has(u.clientId));
    }
    return out;
  }

  afterAggregate(_round: number, aggregate: Float32Array, updates: readonly RoundUpdate[]): Float32Array {
    if (!this.dp) return aggregate;
    const r = this.dp.aggregate(updates.map((u) => u.delta));
    this.last.epsilon = r.epsilon;
    this.last.clippedByDp = r.clipped;
    return r.mean;
  }

  report(): RoundDefenseReport {
    return this.last;
  }
}
