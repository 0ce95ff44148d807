/**
 * QualityOptimizer.optimizeModelQuality(modelId, qualityMetrics): concrete
 * proposals, each with the rule that produced it and the figures behind it,
 * logged and kept (recentProposals, shown on GET /v1/routing); those whose
 * action the policy allows are applied through the appliers the owner
 * registered. Rules, in order, and what applies them in `whale start`:
 * 1. rollback-version: a quality drop was detected and a previous version is
 *    held → the host makes that version the default again.
 * 2. shift-traffic: an alternative serving the same task is better with
 *    non-overlapping intervals (or by > margin when no intervals are known)
 *    → the router moves a share of the task's traffic.
 * 3. change-level: quality below target at a cheaper level → 'deep'; quality
 *    above target + margin with latency over target at 'deep' → 'normal'
 *    → the router moves traffic between the model's arms at those levels.
 * 4. schedule-federated-round: quality below target with enough samples →
 *    a federated round of the model (the federations extension's starter).
 * (Batching and quantization changes are the resource optimizer's: the
 * scheduler cannot change a model's batching while it serves.)
 */
import { WhaleError } from '../../../common/errors.js';
import { silentLogger, type Logger } from '../../../common/logger.js';

export type ProposalAction = 'shift-traffic' | 'change-level' | 'schedule-federated-round' | 'rollback-version';
export const PROPOSAL_ACTIONS: readonly ProposalAction[] = [
  'shift-traffic',
  'change-level',
  'schedule-federated-round',
  'rollback-version',
];

export interface ModelQualityMetrics {
  /** Mean quality in [0, 1] (feedback or evaluator scores) and its interval. */
  quality: number;
  low?: number;
  high?: number;
  samples: number;
  version?: string;
  previousVersion?: string;
  level?: 'quick' | 'normal' | 'deep';
  dropDetected?: boolean;
  latencyP99Ms?: number;
  /** Other models serving the same task. */
  alternatives?: { modelId: string; quality: number; low?: number; high?: number; samples: number }[];
}

export interface QualityProposal {
  action: ProposalAction;
  modelId: string;
  reason: string;
  params: Record<string, string | number>;
  applied: boolean;
  /** Why it was not applied (policy, no applier, applier failed). */
  note?: string;
}

export interface QualityPolicy {
  /** Actions applied automatically; the others are only proposed. Default: none. */
  apply?: ProposalAction[];
  qualityTarget?: number;
  /** Quality difference that counts when no intervals are known (default 0.05). */
  margin?: number;
  latencyTargetMs?: number;
  minSamples?: number;
  /** Share of traffic moved by one shift (default 0.25). */
  shiftShare?: number;
}

export type ProposalApplier = (p: QualityProposal) => void | Promise<void>;

export class QualityOptimizer {
  private readonly appliers = new Map<ProposalAction, ProposalApplier>();
  private readonly policy: Required<QualityPolicy>;
  private readonly history: QualityProposal[] = [];

  constructor(
    policy: QualityPolicy = {},
    private readonly logger: Logger = silentLogger,
  ) {
    this.policy = {
      apply: policy.apply ?? [],
      qualityTarget: policy.qualityTarget ?? 0.8,
      margin: policy.margin ?? 0.05,
      latencyTargetMs: policy.latencyTargetMs ?? 100,
      minSamples: policy.minSamples ?? 30,
      shiftShare: policy.shiftShare ?? 0.25,
    };
    for (const a of this.policy.apply)
      if (!PROPOSAL_ACTIONS.includes(a))
        throw new WhaleError('ERR_INVALID_OPTION', `policy.apply: unknown action '${String(a)}'`, {
          field: 'policy.apply',
        });
  }

  /** Registers how an action is carried out. */
  setApplier(action: ProposalAction, applier: ProposalApplier): void {
    this.appliers.set(action, applier);
  }

  /** The last proposals (at most 1000), oldest first. */
  recentProposals(): readonly QualityProposal[] {
    return this.history;
  }

  async optimizeModelQuality(modelId: string, m: ModelQualityMetrics): Promise<QualityProposal[]> {
    if (typeof modelId !== 'string' || modelId.length === 0)
      throw new WhaleError('ERR_INVALID_ARG', 'modelId: must be a non-empty string', { field: 'modelId' });
    if (
      typeof m !== 'object' ||
      m === null ||
      !(m.quality >= 0 && m.quality <= 1) ||
      !(Number.isInteger(m.samples) && m.samples >= 0)
    ) {
      throw new WhaleError('ERR_INVALID_ARG', 'qualityMetrics: needs quality in [0, 1] and samples (an integer >= 0)', {
        field: 'qualityMetrics',
      });
    }
    const proposals = this.propose(modelId, m);
    for (const p of proposals) {
      await this.apply(p);
      this.logger.info('quality proposal', {
        model: modelId,
        action: p.action,
        reason: p.reason,
        applied: p.applied,
        ...(p.note ? { note: p.note } : {}),
        ...p.params,
      });
      this.history.push(p);
      if (this.history.length > 1000) this.history.shift();
    }
    return proposals;
  }

  private propose(modelId: string, m: ModelQualityMetrics): QualityProposal[] {
    const P = this.policy;
    const out: QualityProposal[] = [];
    const add = (action: ProposalAction, reason: string, params: QualityProposal['params']) =>
      out.push({ action, modelId, reason, params, applied: false });
    const enough = m.samples >= P.minSamples;
    if (m.dropDetected && m.previousVersion && m.previousVersion !== m.version) {
      add('rollback-version', `quality dropped significantly on version ${m.version ?? '?'}`, {
        from: m.version ?? '',
        to: m.previousVersion,
      });
    }
    const better = (m.alternatives ?? [])
      .filter((a) => a.samples >= P.minSamples && enough)
      .filter((a) => (a.low !== undefined && m.high !== undefined ? a.low > m.high : a.quality - m.quality > P.margin))
      .sort((a, b) => b.quality - a.quality)[0];
    if (better) {
      add(
        'shift-traffic',
        `${better.modelId} answers the same task better (${fmt(better.quality)} vs ${fmt(m.quality)})`,
        {
          from: modelId,
          to: better.modelId,
          share: P.shiftShare,
        },
      );
    }
    const slow = m.latencyP99Ms !== undefined && m.latencyP99Ms > P.latencyTargetMs;
    if (enough && m.quality < P.qualityTarget && m.level !== undefined && m.level !== 'deep') {
      add('change-level', `quality ${fmt(m.quality)} is below the target ${fmt(P.qualityTarget)} at level ${m.level}`, {
        from: m.level,
        to: 'deep',
        share: P.shiftShare,
      });
    } else if (enough && slow && m.level === 'deep' && m.quality >= P.qualityTarget + P.margin) {
      add(
        'change-level',
        `p99 latency ${fmt(m.latencyP99Ms!)} ms is over the target with quality to spare at level deep`,
        { from: 'deep', to: 'normal', share: P.shiftShare },
      );
    }
    if (enough && m.quality < P.qualityTarget) {
      add(
        'schedule-federated-round',
        `quality ${fmt(m.quality)} is below the target ${fmt(P.qualityTarget)} over ${m.samples} samples`,
        { model: modelId },
      );
    }
    return out;
  }

  private async apply(p: QualityProposal): Promise<void> {
    if (!this.policy.apply.includes(p.action)) {
      p.note = 'not allowed by the policy';
      return;
    }
    const applier = this.appliers.get(p.action);
    if (!applier) {
      p.note = 'no applier registered';
      return;
    }
    try {
      await applier(p);
      p.applied = true;
    } catch (err) {
      p.note = `applier failed: ${(err as Error)?.message ?? String(err)}`;
    }
  }
}

function fmt(v: number): string {
  return Number(v.toFixed(3)).toString();
}
