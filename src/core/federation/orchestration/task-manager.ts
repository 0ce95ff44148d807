/**
 * Tracks rounds and client tasks (selected, sent, trained, received, late,
 * failed, rejected, missing), counts rejected updates by reason, and
 * publishes round events on whale.events and figures on whale.metrics.
 */
import type { Logger } from '../../../common/logger.js';
import { createEnvelope } from '../../../transport/envelope.js';
import type { Bus } from '../../../transport/bus.js';
import { FEDERATION_TOPICS } from './topics.js';

export type TaskState = 'selected' | 'sent' | 'trained' | 'received' | 'late' | 'failed' | 'rejected' | 'missing';

export type RejectReason =
  | 'malformed'
  | 'unknown-client'
  | 'not-selected'
  | 'wrong-round'
  | 'stale-round'
  | 'late'
  | 'duplicate'
  | 'shape'
  | 'non-finite'
  | 'hash-mismatch'
  | 'missing-blob'
  | 'corrupt';

export interface Rejection {
  round: number;
  clientId: string | undefined;
  reason: RejectReason;
  detail: string;
}

export interface RoundTasks {
  round: number;
  attempt: number;
  tasks: Map<string, { state: TaskState; detail?: string }>;
}

export class TaskManager {
  private readonly rounds = new Map<number, RoundTasks>();
  readonly rejections: Rejection[] = [];
  readonly rejectedByReason: Partial<Record<RejectReason, number>> = {};
  /** Events that could not be published (the bus was down): kept, and sent again by flush(). */
  private readonly unsent: Array<{ topic: string; type: string; payload: unknown }> = [];

  constructor(
    private readonly federationId: string,
    private readonly bus: Bus,
    private readonly logger: Logger,
    private readonly keepRejections = 1000,
  ) {}

  startRound(round: number, attempt: number, clients: readonly string[]): RoundTasks {
    const r: RoundTasks = {
      round,
      attempt,
      tasks: new Map(clients.map((c) => [c, { state: 'selected' as TaskState }])),
    };
    this.rounds.set(round, r);
    // Only the last few rounds are needed to judge late and duplicate updates.
    for (const old of this.rounds.keys()) if (old < round - 4) this.rounds.delete(old);
    return r;
  }

  get(round: number): RoundTasks | undefined {
    return this.rounds.get(round);
  }

  setState(round: number, clientId: string, state: TaskState, detail?: string): void {
    const t = this.rounds.get(round)?.tasks.get(clientId);
    if (!t) return;
    t.state = state;
    if (detail !== undefined) t.detail = detail;
  }

  stateOf(round: number, clientId: string): TaskState | undefined {
    return this.rounds.get(round)?.tasks.get(clientId)?.state;
  }

  /** Clients of a round in a given state. */
  clientsIn(round: number, state: TaskState): string[] {
    const r = this.rounds.get(round);
    return r ? [...r.tasks].filter(([, t]) => t.state === state).map(([c]) => c) : [];
  }

  reject(r: Rejection): void {
    this.rejectedByReason[r.reason] = (this.rejectedByReason[r.reason] ?? 0) + 1;
    this.rejections.push(r);
    if (this.rejections.length > this.keepRejections) this.rejections.shift();
    this.logger.warn('federation update rejected', { federationId: this.federationId, ...r });
    void this.event('federation.update.rejected', r);
  }

  get rejectedTotal(): number {
    return Object.values(this.rejectedByReason).reduce((a, b) => a + (b ?? 0), 0);
  }

  async event(type: string, data: unknown): Promise<void> {
    await this.send(FEDERATION_TOPICS.events, 'Event', {
      type,
      data: { federationId: this.federationId, ...(data as object) },
    });
  }

  /**
   * A finished round's figures on whale.metrics under the one naming scheme monitoring reads
   * (bus-metrics.ts): `federation.round` (the round number; each message is one completed round),
   * `federation.accuracy` (test accuracy, else the clients' weighted accuracy), `federation.clients`
   * (updates aggregated), and every figure as `federation.<figure>` (e.g. `federation.round_seconds`),
   * each with the label `model` (the federation id).
   */
  async metrics(round: number, figures: Record<string, number | undefined>): Promise<void> {
    const named: Record<string, number | undefined> = {
      'federation.round': round,
      'federation.accuracy': figures.round_test_accuracy ?? figures.round_federated_accuracy,
      'federation.clients': figures.round_received,
    };
    for (const [name, value] of Object.entries(figures)) named[`federation.${name}`] = value;
    for (const [name, value] of Object.entries(named)) {
      if (value === undefined || !Number.isFinite(value)) continue;
      await this.send(FEDERATION_TOPICS.metrics, 'Metric', { name, value, labels: { model: this.federationId } });
    }
  }

  /** Sends what earlier failed to send; returns how many are still pending. */
  async flush(): Promise<number> {
    const pending = this.unsent.splice(0);
    for (const m of pending) await this.send(m.topic, m.type, m.payload);
    return this.unsent.length;
  }

  private async send(topic: string, type: string, payload: unknown): Promise<void> {
    try {
      await this.bus.publish(
        topic,
        createEnvelope({ type, source: `federation-coordinator/${this.federationId}`, payload }),
      );
    } catch (err) {
      if (this.unsent.length < 10_000) this.unsent.push({ topic, type, payload });
      this.logger.warn('federation event not published; kept for flush()', {
        topic,
        type,
        error: (err as Error).message,
      });
    }
  }
}
