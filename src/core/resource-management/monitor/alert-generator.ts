/**
 * AlertGenerator: turns threshold transitions into events on `whale.events`
 * (`resource.alert`), one per change: an alert that is already firing at a
 * severity is not sent again, and a resolve is sent once. Events whose
 * publish fails are kept and sent first on the next call, so none is lost.
 */
import type { ThresholdTransition, Severity } from './threshold-manager.js';

export interface ResourceAlert {
  id: string;
  rule: string;
  key: string;
  model?: string;
  state: 'firing' | 'resolved';
  severity: Severity;
  value: number;
  threshold: number;
  at: number;
}

export type EventPublisher = (type: string, data: ResourceAlert) => Promise<void> | void;

export const ALERT_EVENT = 'resource.alert';

export class AlertGenerator {
  private readonly active = new Map<string, ResourceAlert>();
  private unsent: ResourceAlert[] = [];
  private sent = 0;
  private dropped = 0;

  constructor(private readonly publish: EventPublisher, private readonly maxUnsent = 10_000) {}

  /** Publishes what changed; resolves once every event (earlier unsent ones too) was handed to the bus, or kept. */
  async handle(transitions: readonly ThresholdTransition[]): Promise<void> {
    for (const t of transitions) {
      const id = `${t.rule}/${t.key}`;
      const current = this.active.get(id);
      if (t.state === 'firing' && current?.severity === t.severity) continue; // duplicate
      if (t.state === 'resolved' && !current) continue;
      const alert: ResourceAlert = { id, ...t };
      if (t.state === 'firing') this.active.set(id, alert);
      else this.active.delete(id);
      this.unsent.push(alert);
    }
    // Bounded: the oldest go first if the bus is down for a very long time (counted in stats()).
    if (this.unsent.length > this.maxUnsent) this.dropped += this.unsent.splice(0, this.unsent.length - this.maxUnsent).length;
    const queue = this.unsent;
    this.unsent = [];
    for (let i = 0; i < queue.length; i++) {
      try {
        await this.publish(ALERT_EVENT, queue[i]!);
        this.sent++;
      } catch {
        this.unsent = queue.slice(i).concat(this.unsent);
        return;
      }
    }
  }

  firing(): ResourceAlert[] {
    return [...this.active.values()].map((a) => ({ ...a }));
  }

  stats(): { firing: number; sent: number; pending: number; dropped: number } {
    return { firing: this.active.size, sent: this.sent, pending: this.unsent.length, dropped: this.dropped };
  }
}
