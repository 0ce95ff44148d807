/**
 * What the resource manager does with the optimizer's proposals: applies those
 * that carry a quota change and whose kind the configuration allows
 * (resources.optimizer.apply), and marks every other one with why it was only
 * listed (not allowed, or a change that needs a restart).
 */
import type { Logger } from '../../../common/logger.js';
import type { QuotaManager } from '../quota/quota-manager.js';
import type { Proposal, ProposalKind } from './resource-optimizer.js';

/** Why a proposal of this kind is listed, not applied, when no configuration can allow it. */
const NOT_APPLICABLE: Partial<Record<ProposalKind, string>> = {
  'move-to-gpu': 'a model changes device at load: give it resources.gpu and reload it',
  'increase-batch-size': "the scheduler's batching is fixed at start: raise models[].batching.maxQueueDelayUs",
  'investigate-memory-growth': 'for an operator to look into',
};

export interface ApplyContext {
  quotas: QuotaManager;
  /** Kinds that may be applied. */
  apply: readonly ProposalKind[];
  /** Called with each applied proposal (published as `resource.proposal`). */
  applied?: (p: Proposal) => void;
  logger?: Logger;
}

/** Sets `applied` and `note` on each proposal, changing the quotas of those applied (on this node). */
export function applyProposals(proposals: Proposal[], ctx: ApplyContext): Proposal[] {
  for (const p of proposals) {
    const q = p.model === undefined ? undefined : ctx.quotas.getQuota(p.model);
    if (!p.change || !q) {
      Object.assign(p, { applied: false, note: NOT_APPLICABLE[p.kind] ?? 'nothing to change at run time' });
    } else if (!ctx.apply.includes(p.kind)) {
      Object.assign(p, { applied: false, note: `listed only: resources.optimizer.apply does not allow '${p.kind}'` });
    } else {
      try {
        ctx.quotas.setQuota(p.model!, p.change.cpu ?? q.cpu, p.change.memory ?? q.memory, q.gpu);
        Object.assign(p, {
          applied: true,
          note:
            p.change.cpu === undefined
              ? `memory quota now ${p.change.memory} bytes`
              : `CPU quota now ${p.change.cpu} units (more concurrent batches now; an ONNX session's threads follow at its next load)`,
        });
        ctx.applied?.({ ...p });
        ctx.logger?.info('resource proposal applied', { ...p });
      } catch (err) {
        Object.assign(p, { applied: false, note: `not applied: ${(err as Error).message}` });
      }
    }
  }
  return proposals;
}
