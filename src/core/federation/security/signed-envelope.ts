/**
 * Signatures on bus envelopes. The signer's id, a random nonce and the round
 * go in headers; the Ed25519 signature covers them with the envelope's id,
 * type, source, target, correlation id, timestamp and payload (canonical JSON).
 * `MessageGuard.verify` checks, in order: signed, known and not revoked
 * signer, signer = source, signature, round, freshness/nonce, permission.
 */
import { randomBytes } from 'node:crypto';

import { WhaleError, type WhaleErrorCode } from '../../../common/errors.js';
import type { Envelope } from '../../../transport/envelope.js';
import type { AccessControl, Permission, Scope } from './access-control.js';
import { SecurityAudit, type RejectionReason } from './audit.js';
import { canonicalJson } from './canonical-json.js';
import { verifySignature, type Identity } from './identity.js';
import { ReplayGuard, type ReplayVerdict } from './replay-guard.js';

export const SIG_HEADERS = {
  signer: 'x-whale-signer',
  nonce: 'x-whale-nonce',
  round: 'x-whale-round',
  signature: 'x-whale-signature',
} as const;

function signedBytes(e: Envelope): Buffer {
  const h = e.headers;
  return Buffer.from(
    `whale-envelope-sig-v1\n${canonicalJson({
      id: e.id,
      type: e.type,
      source: e.source,
      target: e.target,
      correlationId: e.correlationId,
      timestamp: e.timestamp,
      payload: e.payload,
      signer: h[SIG_HEADERS.signer],
      nonce: h[SIG_HEADERS.nonce],
      round: h[SIG_HEADERS.round],
    })}`,
    'utf8',
  );
}

/** Signs `e` in place as `identity` (bound to `round` when given) and returns it. */
export function signEnvelope<P>(e: Envelope<P>, identity: Identity, round?: number): Envelope<P> {
  e.headers[SIG_HEADERS.signer] = identity.id;
  e.headers[SIG_HEADERS.nonce] = randomBytes(16).toString('base64url');
  if (round !== undefined) e.headers[SIG_HEADERS.round] = String(round);
  else delete e.headers[SIG_HEADERS.round];
  e.headers[SIG_HEADERS.signature] = identity.sign(signedBytes(e as Envelope)).toString('base64');
  return e;
}

const CODES: Record<RejectionReason, WhaleErrorCode> = {
  unsigned: 'ERR_BAD_SIGNATURE',
  'bad-signature': 'ERR_BAD_SIGNATURE',
  'sender-mismatch': 'ERR_BAD_SIGNATURE',
  'unknown-identity': 'ERR_UNKNOWN_IDENTITY',
  revoked: 'ERR_REVOKED',
  'wrong-round': 'ERR_REPLAY',
  replay: 'ERR_REPLAY',
  stale: 'ERR_REPLAY',
  forbidden: 'ERR_FORBIDDEN',
};

export interface Requirement extends Scope {
  /** What the sender must be allowed to do (none: any trusted identity). */
  permission?: Permission;
  /** The round the message must be bound to (checked against the signed round header and payload.round). */
  round?: number;
  /** The identity the payload says sent it (e.g. its learnerId): the signer must be it. */
  claimedSender?: string;
  topic?: string;
}

export class MessageGuard {
  readonly audit: SecurityAudit;
  readonly replay: ReplayGuard;

  constructor(
    readonly acl: AccessControl,
    opts: { audit?: SecurityAudit; replay?: ReplayGuard; windowMs?: number } = {},
  ) {
    this.audit = opts.audit ?? new SecurityAudit();
    const windowMs = opts.windowMs ?? 5 * 60_000;
    // Symmetric window: a timestamp up to windowMs old or ahead is fresh.
    this.replay = opts.replay ?? new ReplayGuard({ maxAgeMs: windowMs, maxSkewMs: windowMs });
  }

  /** Returns the verified signer, or throws the typed error (counted and audited). */
  verify(e: Envelope, req: Requirement = {}): string {
    const h = e.headers ?? {};
    const signer = h[SIG_HEADERS.signer],
      sig = h[SIG_HEADERS.signature],
      nonce = h[SIG_HEADERS.nonce];
    const fail = (reason: RejectionReason, detail: string): never => {
      this.audit.record({
        type: 'federation.security.rejected',
        reason,
        ...(signer ? { signer } : {}),
        source: e.source,
        messageType: e.type,
        messageId: e.id,
        ...(req.topic ? { topic: req.topic } : {}),
        detail,
        at: Date.now(),
      });
      throw new WhaleError(
        CODES[reason],
        `${fieldOf(reason)}: ${e.type} ${e.id} from '${e.source}' rejected (${reason}): ${detail}`,
        { field: fieldOf(reason), reason, signer },
      );
    };
    if (!signer || !sig || !nonce) return fail('unsigned', 'no signature headers');
    if (this.acl.isRevoked(signer)) return fail('revoked', `identity '${signer}' is revoked`);
    const key = this.acl.publicKey(signer);
    if (!key) return fail('unknown-identity', `identity '${signer}' is not trusted`);
    if (!speaksFor(signer, e.source)) return fail('sender-mismatch', `signed by '${signer}'`);
    if (req.claimedSender !== undefined && req.claimedSender !== signer)
      return fail('sender-mismatch', `signed by '${signer}', the payload names '${req.claimedSender}'`);
    if (!verifySignature(key, signedBytes(e), Buffer.from(sig, 'base64')))
      return fail('bad-signature', 'the signature does not match the message');
    if (req.round !== undefined || h[SIG_HEADERS.round] !== undefined) {
      const bound = h[SIG_HEADERS.round];
      const payloadRound = (e.payload as { round?: unknown } | null)?.round;
      if (payloadRound !== undefined && String(payloadRound) !== bound)
        return fail('wrong-round', `signed for round ${bound ?? 'none'}, payload says ${String(payloadRound)}`);
      if (req.round !== undefined && bound !== String(req.round))
        return fail('wrong-round', `signed for round ${bound ?? 'none'}, expected ${req.round}`);
    }
    const fresh = this.replay.check(`${signer}/${nonce}`, e.timestamp);
    if (fresh !== 'ok') return fail(REJECTION[fresh], freshnessDetail(fresh, this.replay));
    if (req.permission && !this.acl.can(signer, req.permission, req)) {
      return fail(
        'forbidden',
        `'${signer}' may not ${req.permission}${req.federation ? ` in federation '${req.federation}'` : ''}${req.model ? ` on model '${req.model}'` : ''}`,
      );
    }
    return signer;
  }
}

/** The audit's reasons for the replay guard's verdicts. */
const REJECTION: Record<Exclude<ReplayVerdict, 'ok'>, RejectionReason> = {
  replayed: 'replay',
  'too-old': 'stale',
  'from-the-future': 'stale',
};

function freshnessDetail(verdict: Exclude<ReplayVerdict, 'ok'>, g: ReplayGuard): string {
  if (verdict === 'replayed') return 'nonce already seen';
  return g.maxAgeMs === g.maxSkewMs
    ? `timestamp outside the ${g.maxAgeMs} ms window`
    : `timestamp ${verdict === 'too-old' ? `older than ${g.maxAgeMs} ms` : `more than ${g.maxSkewMs} ms ahead`}`;
}

/** A node signs for its own id and for its components' sources (`id/part`). */
export function speaksFor(identity: string, source: string): boolean {
  return source === identity || source.startsWith(`${identity}/`);
}

function fieldOf(reason: RejectionReason): string {
  if (reason === 'forbidden') return 'permission';
  if (reason === 'wrong-round') return 'round';
  if (reason === 'replay' || reason === 'stale') return 'nonce';
  if (reason === 'unknown-identity' || reason === 'revoked' || reason === 'sender-mismatch') return 'signer';
  return 'signature';
}
