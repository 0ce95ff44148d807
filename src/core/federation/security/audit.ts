/** Counts of refused federation messages by reason, and the audit events they produce. */
export type RejectionReason =
  | 'unsigned'
  | 'unknown-identity'
  | 'revoked'
  | 'bad-signature'
  | 'sender-mismatch'
  | 'wrong-round'
  | 'replay'
  | 'stale'
  | 'forbidden';

export interface AuditEvent {
  type: 'federation.security.rejected';
  reason: RejectionReason;
  /** The identity the message claimed, when it claimed one. */
  signer?: string;
  source: string;
  messageType: string;
  messageId: string;
  topic?: string;
  detail: string;
  at: number;
}

export class SecurityAudit {
  private readonly counts = new Map<RejectionReason, number>();
  private readonly recent: AuditEvent[] = [];

  constructor(
    private readonly sink?: (e: AuditEvent) => void | Promise<void>,
    private readonly keep = 1000,
  ) {}

  record(e: AuditEvent): void {
    this.counts.set(e.reason, (this.counts.get(e.reason) ?? 0) + 1);
    this.recent.push(e);
    if (this.recent.length > this.keep) this.recent.shift();
    // Publishing an audit event must not fail the receive path.
    try {
      void Promise.resolve(this.sink?.(e)).catch(() => undefined);
    } catch {
      /* sink threw synchronously: the event stays counted and in `events()` */
    }
  }

  count(reason?: RejectionReason): number {
    if (reason) return this.counts.get(reason) ?? 0;
    let n = 0;
    for (const v of this.counts.values()) n += v;
    return n;
  }

  byReason(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }

  events(): readonly AuditEvent[] {
    return this.recent;
  }
}
