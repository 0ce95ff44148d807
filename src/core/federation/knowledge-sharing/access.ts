/**
 * Who may read a knowledge item. A model sees items addressed to all models,
 * to itself, or that it shared; an encrypted item only by its target. The
 * node itself (no model named) sees everything except encrypted items. An
 * extra `canRead` rule can only narrow this.
 */
import type { KnowledgeItem } from './types.js';

export type CanRead = (model: string, item: KnowledgeItem) => boolean;

export function visibleTo(item: KnowledgeItem, as: string | undefined, canRead?: CanRead): boolean {
  if (item.privacy === 'encrypted')
    return as !== undefined && item.targetModel === as && (canRead ? canRead(as, item) : true);
  if (as === undefined) return true;
  if (item.targetModel !== 'all' && item.targetModel !== as && item.sourceModel !== as) return false;
  return canRead ? canRead(as, item) : true;
}
