/**
 * A Bus that signs what it publishes and verifies what it delivers: handlers
 * only see messages whose signature, sender, round binding, freshness and
 * permission passed the MessageGuard. A refused message is acknowledged (not
 * retried: retrying a forgery cannot make it valid), counted and audited.
 * Wrap the bus given to a coordinator or a learner; the rest of its code is unchanged.
 */
import { WhaleError, isWhaleError } from '../../../common/errors.js';
import type { Bus, Handler, RequestOptions, SubscribeOptions, Subscription } from '../../../transport/bus.js';
import { createEnvelope, type Envelope } from '../../../transport/envelope.js';
import { TOPICS } from '../../../transport/topics.js';
import type { Permission } from './access-control.js';
import type { AuditEvent } from './audit.js';
import type { Identity } from './identity.js';
import { MessageGuard, signEnvelope, speaksFor, type Requirement } from './signed-envelope.js';

/** The permission each federation message needs from its sender, at the receiving side. */
export const MESSAGE_PERMISSIONS: Readonly<Record<string, Permission>> = Object.freeze({
  FederationClientsRegistered: 'join',
  FederationLearnerLeft: 'join',
  FederationUpdateSubmitted: 'train',
  FederationTaskFailed: 'train',
  FederationRoundStarted: 'administer',
  FederationEnded: 'administer',
  KnowledgeShared: 'publish-knowledge',
});

/** The identity id (= envelope source) of a federation learner process. */
export const learnerIdentity = (learnerId: string): string => `federation-learner/${learnerId}`;
export const COORDINATOR_IDENTITY = 'federation-coordinator';

/** Permission and scope of a message: from MESSAGE_PERMISSIONS, payload.federationId and the model named in it. */
export function requirementOf(e: Envelope, topic: string): Requirement {
  const p = (typeof e.payload === 'object' && e.payload !== null ? e.payload : {}) as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const federation = str(p.federationId),
    model = str(p.modelId) ?? str(p.sourceModel);
  const permission = MESSAGE_PERMISSIONS[e.type],
    learner = str(p.learnerId);
  return {
    topic,
    ...(permission ? { permission } : {}),
    ...(federation ? { federation } : {}),
    ...(model ? { model } : {}),
    ...(learner ? { claimedSender: learnerIdentity(learner) } : {}),
  };
}

export interface SecureBusOptions {
  identity: Identity;
  guard: MessageGuard;
  /** Requirement per received message (default: requirementOf). */
  requirement?: (e: Envelope, topic: string) => Requirement;
  /** Publish audit events on whale.events through the inner bus (default true). */
  publishAudit?: boolean;
}

export class SecureBus implements Bus {
  readonly kind: Bus['kind'];
  readonly instanceId: string;

  constructor(
    private readonly inner: Bus,
    private readonly o: SecureBusOptions,
  ) {
    this.kind = inner.kind;
    this.instanceId = inner.instanceId;
  }

  get guard(): MessageGuard {
    return this.o.guard;
  }

  private sign(message: Envelope): Envelope {
    if (!speaksFor(this.o.identity.id, message.source)) {
      throw new WhaleError(
        'ERR_INVALID_ARG',
        `source: '${message.source}' is not this bus's identity '${this.o.identity.id}'`,
        { field: 'source' },
      );
    }
    const round = (message.payload as { round?: unknown } | null)?.round;
    return signEnvelope(message, this.o.identity, typeof round === 'number' ? round : undefined);
  }

  async publish(topic: string, message: Envelope, opts?: { key?: string }): Promise<void> {
    await this.inner.publish(topic, this.sign(message), opts);
  }

  publishRaw(topic: string, data: Buffer, opts?: { key?: string; headers?: Record<string, string> }): Promise<void> {
    return this.inner.publishRaw(topic, data, opts);
  }

  subscribe(topic: string, handler: Handler, opts: SubscribeOptions): Promise<Subscription> {
    const requirement = this.o.requirement ?? requirementOf;
    return this.inner.subscribe(
      topic,
      (e, ctx) => {
        try {
          this.o.guard.verify(e, requirement(e, topic));
        } catch (err) {
          if (!isWhaleError(err)) throw err;
          const last = this.o.guard.audit.events().at(-1);
          if (last && this.o.publishAudit !== false) void this.publishAuditEvent(last);
          return undefined;
        }
        return handler(e, ctx);
      },
      opts,
    );
  }

  private async publishAuditEvent(a: AuditEvent): Promise<void> {
    const e = createEnvelope({ type: 'Event', source: this.o.identity.id, payload: { type: a.type, data: { ...a } } });
    await this.inner.publish(TOPICS.events, this.sign(e)).catch(() => undefined);
  }

  request(topic: string, message: Envelope, opts: RequestOptions): Promise<Envelope> {
    return this.inner.request(topic, this.sign(message), opts);
  }

  reply(request: Envelope, response: Omit<Envelope, 'correlationId' | 'target'>): Promise<void> {
    return this.inner.reply(request, response);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
