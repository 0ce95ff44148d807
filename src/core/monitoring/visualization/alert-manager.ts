/**
 * AlertManager: evaluates the rules on the samples, anomaly decisions and
 * health reports it is fed, with hysteresis (a threshold rule clears on the
 * other side of clearValue, held for forMs) and deduplication (one alert per
 * rule and series/check while it fires). Each firing and resolve event goes to
 * the bus (whale.events: `alert.firing` / `alert.resolved`), the history and
 * the webhook, each through its own retrying delivery queue.
 */
import { randomUUID } from 'node:crypto';

import { WhaleError } from '../../base/errors.js';
import type { Logger } from '../../base/logger.js';
import type { HealthReport } from '../health/health-checker.js';
import type { AlertRecord } from '../history/metric-history.js';
import { AlertDelivery } from './alert-delivery.js';
import { breaches, seriesMatches, validateRule, type AlertRule, type Severity } from './alert-rules.js';

export interface Alert extends AlertRecord {
  /** When it started firing. */
  since: number;
  value?: number;
}

export interface AlertManagerOptions {
  rules?: AlertRule[];
  logger: Logger;
  /** whale.events publisher (MessagingService.publishEvent). */
  publish?: (type: string, data: unknown) => Promise<void>;
  /** Persists each event (MetricHistory.writeAlert). */
  store?: (a: AlertRecord) => Promise<void>;
  /** POSTs each event as JSON. */
  webhookUrl?: string;
  webhookTimeoutMs?: number;
  /** Every state change, after it is queued for delivery (the dashboard). */
  onChange?: (a: Alert) => void;
  recentLimit?: number;
}

interface Track {
  pendingSince?: number;
  clearingSince?: number;
  consecutive: number;
  lastAnomalyAt?: number;
}

export class AlertManager {
  private readonly rules = new Map<string, AlertRule>();
  private readonly firing = new Map<string, Alert>();
  private readonly tracks = new Map<string, Track>();
  private readonly recentEvents: Alert[] = [];
  private readonly sinks: AlertDelivery<Alert>[] = [];

  constructor(private readonly o: AlertManagerOptions) {
    (o.rules ?? []).forEach((r, i) => this.addRule(r, `rules[${i}]`));
    if (o.webhookUrl !== undefined) checkUrl(o.webhookUrl);
    const sink = (name: string, send: (a: Alert) => Promise<void>) => this.sinks.push(new AlertDelivery({ name, send, logger: o.logger }));
    if (o.publish) sink('bus', (a) => o.publish!(`alert.${a.state}`, toRecord(a)));
    if (o.store) sink('history', (a) => o.store!(toRecord(a)));
    if (o.webhookUrl) sink('webhook', (a) => postJson(o.webhookUrl!, { type: `alert.${a.state}`, alert: toRecord(a) }, o.webhookTimeoutMs ?? 5_000));
  }

  addRule(rule: AlertRule, field = 'rule'): void {
    const r = validateRule(rule, field);
    if (this.rules.has(r.name)) throw new WhaleError('ERR_CONFLICT', `${field}.name: an alert rule named '${r.name}' exists already`, { field: `${field}.name` });
    this.rules.set(r.name, { ...r });
  }

  ruleList(): AlertRule[] {
    return [...this.rules.values()];
  }

  /** A sample of a series: threshold rules. */
  observe(series: string, value: number, ts = Date.now()): void {
    for (const r of this.rules.values()) {
      if (r.kind !== 'threshold' || r.series !== series || !Number.isFinite(value)) continue;
      const key = `${r.name}\u0000${series}`;
      const t = this.track(key);
      const active = this.firing.get(key);
      const forMs = r.forMs ?? 0;
      if (!active) {
        if (!breaches(r.op, value, r.value)) {
          t.pendingSince = undefined;
          continue;
        }
        t.pendingSince ??= ts;
        if (ts - t.pendingSince >= forMs) this.fire(key, r.name, r.severity, fill(r.message ?? `${series} ${r.op} ${r.value} (now {value})`, { value, series }), { series }, ts, value);
      } else {
        active.value = value;
        const safe = !breaches(r.op, value, r.clearValue ?? r.value) && value !== (r.clearValue ?? r.value);
        if (!safe) {
          t.clearingSince = undefined;
          continue;
        }
        t.clearingSince ??= ts;
        if (ts - t.clearingSince >= forMs) this.resolve(key, ts);
      }
    }
  }

  /** The anomaly detector's decision on a point of a series: anomaly rules. */
  observeAnomaly(series: string, score: number, anomaly: boolean, ts = Date.now()): void {
    for (const r of this.rules.values()) {
      if (r.kind !== 'anomaly' || !seriesMatches(r.series, series)) continue;
      const key = `${r.name}\u0000${series}`;
      const t = this.track(key);
      if (anomaly) {
        t.consecutive++;
        t.lastAnomalyAt = ts;
        const active = this.firing.get(key);
        if (active) active.value = score;
        else if (t.consecutive >= (r.points ?? 1)) {
          this.fire(key, r.name, r.severity, fill(r.message ?? `anomaly on ${series} (score {value})`, { value: score, series }), { series }, ts, score);
        }
      } else {
        t.consecutive = 0;
        if (this.firing.has(key) && ts - (t.lastAnomalyAt ?? ts) >= (r.clearAfterMs ?? 60_000)) this.resolve(key, ts);
      }
    }
  }

  /** A health report: health rules. */
  observeHealth(report: HealthReport, ts = report.timestamp): void {
    for (const r of this.rules.values()) {
      if (r.kind !== 'health') continue;
      for (const c of report.checks) {
        if (r.check !== '*' && r.check !== c.name) continue;
        const key = `${r.name}\u0000${c.name}`;
        const t = this.track(key);
        if (!c.ok) {
          t.pendingSince ??= ts;
          if (!this.firing.has(key) && ts - t.pendingSince >= (r.forMs ?? 0)) {
            this.fire(key, r.name, r.severity, fill(r.message ?? `health check '${c.name}' failing: {reason}`, { reason: c.reason ?? 'failed', series: c.name }), { check: c.name }, ts);
          }
        } else {
          t.pendingSince = undefined;
          if (this.firing.has(key)) this.resolve(key, ts);
        }
      }
    }
  }

  /** An alert raised by hand (operators, tests, other parts); deduplicated on (name, labels). */
  raise(name: string, o: { severity?: Severity; message?: string; labels?: Record<string, string> } = {}): Alert {
    validateRule({ kind: 'health', check: 'manual', name, ...(o.severity ? { severity: o.severity } : {}) }, 'alert');
    const labels = o.labels ?? {};
    const key = `${name}\u0000${JSON.stringify(labels)}`;
    return this.firing.get(key) ?? this.fire(key, name, o.severity, o.message ?? name, labels, Date.now());
  }

  /** Resolves a raised alert; false when none with that name and labels fires. */
  clear(name: string, labels: Record<string, string> = {}): boolean {
    const key = `${name}\u0000${JSON.stringify(labels)}`;
    if (!this.firing.has(key)) return false;
    this.resolve(key, Date.now());
    return true;
  }

  active(): Alert[] {
    return [...this.firing.values()].map((a) => ({ ...a }));
  }

  /** Firing and resolve events, newest first. */
  recent(limit = 50): Alert[] {
    return this.recentEvents.slice(-limit).reverse().map((a) => ({ ...a }));
  }

  deliveryStats(): { delivered: number; failed: number; pending: number } {
    return this.sinks.reduce((s, d) => ({ delivered: s.delivered + d.delivered, failed: s.failed + d.failed, pending: s.pending + d.pending() }), { delivered: 0, failed: 0, pending: 0 });
  }

  /** Waits until every event was delivered (or given up) by every sink. */
  async flush(): Promise<void> {
    await Promise.all(this.sinks.map((s) => s.flush()));
  }

  async close(): Promise<void> {
    await Promise.all(this.sinks.map((s) => s.close()));
  }

  private track(key: string): Track {
    let t = this.tracks.get(key);
    if (!t) this.tracks.set(key, (t = { consecutive: 0 }));
    return t;
  }

  private fire(key: string, rule: string, severity: Severity | undefined, message: string, labels: Record<string, string>, ts: number, value?: number): Alert {
    const a: Alert = { id: randomUUID(), rule, fingerprint: key.replace('\u0000', '/'), state: 'firing', severity: severity ?? 'warning', message, ts, since: ts, labels, ...(value === undefined ? {} : { value }) };
    this.firing.set(key, a);
    this.emit(a);
    return a;
  }

  private resolve(key: string, ts: number): void {
    const a = this.firing.get(key);
    if (!a) return;
    this.firing.delete(key);
    const t = this.track(key);
    t.pendingSince = t.clearingSince = undefined;
    t.consecutive = 0;
    this.emit({ ...a, state: 'resolved', ts });
  }

  private emit(a: Alert): void {
    this.recentEvents.push({ ...a });
    if (this.recentEvents.length > (this.o.recentLimit ?? 200)) this.recentEvents.shift();
    for (const s of this.sinks) s.push({ ...a });
    this.o.onChange?.({ ...a });
  }
}

function toRecord(a: Alert): AlertRecord & { since: number; value?: number } {
  return { ...a };
}

function fill(template: string, v: { value?: number; series?: string; reason?: string }): string {
  return template
    .replaceAll('{value}', v.value === undefined ? '' : String(Math.round(v.value * 1000) / 1000))
    .replaceAll('{series}', v.series ?? '')
    .replaceAll('{reason}', v.reason ?? '');
}

function checkUrl(url: string): void {
  let ok = false;
  try {
    ok = ['http:', 'https:'].includes(new URL(url).protocol);
  } catch {
    ok = false;
  }
  if (!ok) throw new WhaleError('ERR_INVALID_OPTION', 'options.webhookUrl: must be an http(s) URL', { field: 'options.webhookUrl' });
}

async function postJson(url: string, body: unknown, timeoutMs: number): Promise<void> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) });
  await res.arrayBuffer().catch(() => undefined);
  if (!res.ok) throw new Error(`webhook answered HTTP ${res.status}`);
}
