/**
 * Encrypted knowledge of the FederationService: sealed per (source, target) model with the
 * federation key, and on receipt authenticated (sender, target, id, time) and replay-checked.
 * A refused message is counted per reason, logged, and dead-lettered by the error thrown.
 */
import { WhaleError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { ReplayGuard, type ReplayVerdict, type ReplayWindowOptions } from '../core/federation/security/replay-guard.js';
import type { Envelope } from '../transport/envelope.js';
import { requireTimeout } from '../common/validate.js';
import { hasFederationKey, resolveFederationKey, type FederationKeySource } from './federation-key.js';
import { open, seal, sealedProblem, type Sealed } from './knowledge-crypto.js';
import type { StateStore } from './state-store.js';

/** Why encrypted knowledge was refused: the replay guard's verdicts, or an earlier check. */
export type KnowledgeRejection = 'malformed' | 'sender-mismatch' | 'authentication' | Exclude<ReplayVerdict, 'ok'>;

/** The FederationService's options (read when the key is first needed, not copied). */
export interface EncryptedKnowledgeOptions extends FederationKeySource {
  nodeId: string;
  replay?: ReplayWindowOptions;
}

export class EncryptedKnowledge {
  private readonly rejected = new Map<KnowledgeRejection, number>();
  /** Encrypted message ids being delivered now: a copy arriving meanwhile (on another partition) is a replay. */
  private readonly inFlight = new Set<string>();
  private readonly replay: ReplayGuard;
  private key: Buffer | undefined;

  constructor(
    private readonly o: EncryptedKnowledgeOptions,
    private readonly x: { logger: Logger; store: () => StateStore },
  ) {
    this.replay = new ReplayGuard({ ...replayWindow(o.replay), store: x.store, scope: o.nodeId });
  }

  /** A configured but weak key fails here (at start), not at the first encrypted message. */
  checkKey(): void {
    if (hasFederationKey(this.o)) this.federationKey();
  }

  seal(sourceModel: string, targetModel: string, data: unknown): Sealed {
    return seal(this.federationKey(), { sourceModel, targetModel }, data);
  }

  /** Refused so far, per reason. */
  rejections(): Record<KnowledgeRejection, number> {
    const out = {
      malformed: 0,
      'sender-mismatch': 0,
      authentication: 0,
      'too-old': 0,
      'from-the-future': 0,
      replayed: 0,
    };
    for (const [r, n] of this.rejected) out[r] = n;
    return out;
  }

  /** Opens and checks a message, then hands its data to `deliver`; a refusal throws the dead-letter error. */
  async receive(
    p: { sourceModel?: string; targetModel: string; encrypted?: Sealed },
    e: Envelope,
    deliver: (messageId: string, data: unknown) => Promise<void>,
  ): Promise<void> {
    const problem = sealedProblem(p.encrypted);
    if (problem) throw this.reject('malformed', e, problem);
    if (p.targetModel === 'all' || p.sourceModel === undefined)
      throw this.reject('malformed', e, 'encrypted knowledge needs one sourceModel and one targetModel');
    if (e.source !== p.sourceModel)
      throw this.reject(
        'sender-mismatch',
        e,
        `envelope source ${e.source} is not payload.sourceModel ${p.sourceModel}`,
      );
    const sealed = p.encrypted!;
    let data: unknown;
    try {
      data = open(this.federationKey(), { sourceModel: p.sourceModel, targetModel: p.targetModel }, sealed);
    } catch (err) {
      if (err instanceof WhaleError && err.code === 'ERR_INVALID_MESSAGE')
        throw this.reject('authentication', e, err.message);
      throw err; // no key on this node: a configuration error, retried and then dead-lettered
    }
    const what = `message ${sealed.messageId} sent at ${new Date(sealed.sentAt).toISOString()}`;
    if (this.inFlight.has(sealed.messageId)) throw this.reject('replayed', e, what);
    this.inFlight.add(sealed.messageId);
    try {
      const verdict = await this.replay.checkStored(sealed.messageId, sealed.sentAt);
      if (verdict !== 'ok') throw this.reject(verdict, e, what);
      await deliver(sealed.messageId, data);
      // Remembered only once delivered: a failed delivery is retried by the bus, not refused as a replay.
      await this.replay.remember(sealed.messageId, sealed.sentAt);
    } finally {
      this.inFlight.delete(sealed.messageId);
    }
  }

  private federationKey(): Buffer {
    this.key ??= resolveFederationKey(this.o);
    return this.key;
  }

  /** Counts and logs a refused message; the returned error dead-letters it with the reason. */
  private reject(reason: KnowledgeRejection, e: Envelope, detail: string): WhaleError {
    this.rejected.set(reason, (this.rejected.get(reason) ?? 0) + 1);
    this.x.logger.warn('encrypted knowledge rejected', { reason, detail, envelopeId: e.id, source: e.source });
    return new WhaleError('ERR_INVALID_MESSAGE', `encrypted knowledge rejected (${reason}): ${detail}`);
  }
}

/** The replay window, validated here so a bad option names options.replay.* (0 skew allowed: no clock may run ahead). */
function replayWindow(o: ReplayWindowOptions = {}): Required<ReplayWindowOptions> {
  const maxAgeMs = requireTimeout(o.maxAgeMs ?? 5 * 60_000, 'options.replay.maxAgeMs');
  const skew = o.maxSkewMs ?? 30_000;
  return { maxAgeMs, maxSkewMs: skew === 0 ? 0 : requireTimeout(skew, 'options.replay.maxSkewMs') };
}
