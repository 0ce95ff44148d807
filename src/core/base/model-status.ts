/**
 * A model's lifecycle: initialized → loading → ready → draining → stopped,
 * with failed reachable from any working state. A stopped or failed model may
 * be loaded again (that is how a host restarts it).
 */
import { WhaleError } from '../../common/errors.js';

export type ModelStatus = 'initialized' | 'loading' | 'ready' | 'draining' | 'stopped' | 'failed';

export const MODEL_TRANSITIONS: Readonly<Record<ModelStatus, readonly ModelStatus[]>> = {
  initialized: ['loading', 'stopped', 'failed'],
  loading: ['ready', 'failed'],
  ready: ['draining', 'failed'],
  draining: ['stopped', 'failed'],
  stopped: ['loading'],
  failed: ['loading', 'stopped'],
};

export function canTransition(from: ModelStatus, to: ModelStatus): boolean {
  return MODEL_TRANSITIONS[from].includes(to);
}

/** Throws ERR_INVALID_STATE unless `from → to` is a legal move. */
export function checkTransition(model: string, from: ModelStatus, to: ModelStatus, action: string): void {
  if (!canTransition(from, to)) {
    throw new WhaleError(
      'ERR_INVALID_STATE',
      `status: model '${model}' cannot ${action} while ${from} (${from} → ${to} is not allowed)`,
      {
        field: 'status',
        status: from,
      },
    );
  }
}
