/**
 * Which caller received which routed answer, so that feedback on an answer comes from the caller that
 * received it, once (hardening round 2, item 8: 50 thumbs-down on one guessable id were all accepted).
 * Answer ids are 128 random bits made by the router; a caller is its API key's id, or `anonymous`, for
 * whom holding the unguessable id is the proof of having received the answer. Bounded: the oldest
 * answers are forgotten first, and feedback on a forgotten answer is refused as unknown.
 */
import { WhaleError } from '../../common/errors.js';
import { BoundedMap } from '../../core/quality/metrics/bounded-map.js';

export const ANONYMOUS = 'anonymous';

export class AnswerLedger {
  private readonly answers: BoundedMap<string, { caller: string; voted: boolean }>;

  constructor(capacity = 100_000, maxBytes = 16 * 1024 * 1024) {
    // By count and by estimated bytes, like every per-client map (hardening round 2, item 1).
    this.answers = new BoundedMap(capacity, { maxBytes, sizeOf: (id, a) => 96 + 2 * (id.length + a.caller.length) });
  }

  issued(answerId: string, caller: string): void {
    this.answers.set(answerId, { caller, voted: false });
  }

  /** Whether this node gave the answer (and still remembers it). */
  knows(answerId: string): boolean {
    return this.answers.has(answerId);
  }

  /** Takes the one vote of an answer: ERR_FORBIDDEN for another caller, ERR_CONFLICT for a second vote. */
  vote(answerId: string, caller: string): void {
    const a = this.answers.get(answerId);
    if (!a)
      throw new WhaleError('ERR_NOT_FOUND', `feedback.requestId: no answer '${answerId}' was given here`, {
        field: 'feedback.requestId',
      });
    if (a.caller !== caller)
      throw new WhaleError('ERR_FORBIDDEN', 'feedback.requestId: that answer was given to another caller', {
        field: 'feedback.requestId',
      });
    if (a.voted)
      throw new WhaleError('ERR_CONFLICT', 'feedback.requestId: this answer already has its feedback', {
        field: 'feedback.requestId',
      });
    a.voted = true;
  }

  /** Gives the vote back when the feedback itself was refused (bad rating, …). */
  unvote(answerId: string): void {
    const a = this.answers.get(answerId);
    if (a) a.voted = false;
  }
}
