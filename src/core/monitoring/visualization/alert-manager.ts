/**
 * AlertManager, the one alert engine: evaluates the rules on the samples,
 * anomaly decisions and health reports it is fed, with hysteresis (a threshold
 * rule clears on the other side of clearValue, held for forMs; a levels rule
 * leaves a level `hysteresis` below it, held for resolveForMs) and
 * deduplication (one alert per rule and series/check while it fires). Each
 * firing and resolve event goes to the bus (whale.events: `alert.firing` /
 * `alert.resolved`, or the type `eventType` gives: the resource manager's
 * `resource.alert`), the history and the webhook, each through its own
 * retrying delivery queue. A node's monitoring engine mirrors its resource
 * manager's (mirror): one list of alerts for the dashboard and GET /v1/alerts.
 */
import { randomUUID } from 'node:crypto';

import { WhaleError } from '../../../common/errors.js';
import type { Logger } from '../../../common/logger.js';
import type { HealthReport } from '../health/health-checker.js';
import type { AlertRecord } from '../history/metric-history.js';
import { AlertDelivery } from './alert-delivery.js';
import {
  breaches,
  seriesMatches,
  validateRule,
  type AlertRule,
  type LevelsRule,
  type Severity,
} from './alert-rules.js';

export interface Alert extends AlertRecord {
  /** When it started firing. */
  since: number;
  value?: number;
  /** Levels rules: the series evaluated (the model's figure `models.<model>.<series>` for model rules). */
  key?: string;
  /** Levels rules on a model's figure: the model. */
  model?: string;
  /** Levels rules: the level crossed (for a resolve, the level left). */
  threshold?: number;
  /** Levels rules: the same as ts. */
  at?: number;
}

/** What a resource manager publishes its alerts as (on whale.events), firing and resolved alike. */
export const RESOURCE_ALERT_EVENT = 'resource.alert';

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
  /** The bus event type of an alert (default `alert.<state>`). */
  eventType?: (a: Alert) => string;
  /** Retries of each delivery queue (default 6 attempts, 200 ms backoff doubling, 10,000 queued). */
  delivery?: { maxAttempts?: number; backoffMs?: number; maxBackoffMs?: number; maxQueued?: number };
}

interface Track {
  pendingSince?: number;
  clearingSince?: number;
  consecutive: number;
  lastAnomalyAt?: number;
}

type Level = 0 | 1 | 2; // ok, warning, critical

interface LevelTrack {
  level: Level;
  pending: Level;
  since: number;
}

export class AlertManager {
  private readonly rules = new Map<string, AlertRule>();
  private readonly firing = new Map<string, Alert>();
  private readonly tracks = new Map<string, Track>();
  private readonly levels = new Map<string, LevelTrack>();
  private readonly recentEvents: Alert[] = [];
  private readonly sinks: AlertDelivery<Alert>[] = [];
  private readonly listeners = new Set<(a: Alert) => void>();
  /** Alerts of mirrored managers that fire, by fingerprint. */
  private readonly mirrored = new Map<string, Alert>();

  constructor(private readonly o: AlertManagerOptions) {
    (o.rules ?? []).forEach((r, i) => this.addRule(r, `rules[${i}]`));
    if (o.webhookUrl !== undefined) checkUrl(o.webhookUrl);
    const sink = (name: string, send: (a: Alert) => Promise<void>) =>
      this.sinks.push(new AlertDelivery({ ...o.delivery, name, send, logger: o.logger }));
    const eventType = o.eventType ?? ((a: Alert) => `alert.${a.state}`);
    if (o.publish) sink('bus', (a) => o.publish!(eventType(a), toRecord(a)));
    if (o.store) sink('history', (a) => o.store!(toRecord(a)));
    if (o.webhookUrl)
      sink('webhook', (a) =>
        postJson(o.webhookUrl!, { type: `alert.${a.state}`, alert: toRecord(a) }, o.webhookTimeoutMs ?? 5_000),
      );
  }

  addRule(rule: AlertRule, field = 'rule'): void {
    const r = validateRule(rule, field);
    if (this.rules.has(r.name))
      throw new WhaleError('ERR_CONFLICT', `${field}.name: an alert rule named '${r.name}' exists already`, {
        field: `${field}.name`,
      });
    this.rules.set(r.name, { ...r });
  }

  /** Removes a rule; its alerts that fire are resolved. */
  removeRule(name: string): void {
    if (!this.rules.delete(name)) return;
    const prefix = `${name}\u0000`;
    for (const key of [...this.firing.keys()]) if (key.startsWith(prefix)) this.resolve(key, Date.now());
    for (const m of [this.tracks, this.levels]) for (const key of m.keys()) if (key.startsWith(prefix)) m.delete(key);
  }

  ruleList(): AlertRule[] {
    return [...this.rules.values()];
  }

  /** A sample of a series: threshold and levels rules. */
  observe(series: string, value: number, ts = Date.now()): void {
    this.observeAll({ [series]: value }, ts);
  }

  /** One sample of several series (e.g. the resource monitor's flat figures), rule by rule: threshold and levels rules. */
  observeAll(values: Readonly<Record<string, number>>, ts = Date.now()): void {
    for (const r of this.rules.values()) {
      if (r.kind === 'levels') {
        for (const [series, model] of levelKeys(r, values)) {
          const value = values[series]!;
          if (Number.isFinite(value)) this.stepLevels(r, series, model, value, ts);
        }
        continue;
      }
      if (r.kind !== 'threshold' || !Object.hasOwn(values, r.series)) continue;
      const series = r.series;
      const value = values[series]!;
      if (!Number.isFinite(value)) continue;
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
        if (ts - t.pendingSince >= forMs)
          this.fire(
            key,
            r.name,
            r.severity,
            fill(r.message ?? `${series} ${r.op} ${r.value} (now {value})`, { value, series }),
            { series },
            ts,
            value,
          );
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
          this.fire(
            key,
            r.name,
            r.severity,
            fill(r.message ?? `anomaly on ${series} (score {value})`, { value: score, series }),
            { series },
            ts,
            score,
          );
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
            this.fire(
              key,
              r.name,
              r.severity,
              fill(r.message ?? `health check '${c.name}' failing: {reason}`, {
                reason: c.reason ?? 'failed',
                series: c.name,
              }),
              { check: c.name },
              ts,
            );
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

  /** Firing alerts: its own and those of the managers it mirrors. */
  active(): Alert[] {
    return [...this.firing.values(), ...this.mirrored.values()].map((a) => ({ ...a }));
  }

  /** Every state change (after onChange); returns the unsubscribe. */
  subscribe(fn: (a: Alert) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * Shows another manager's alerts as its own: in active(), recent(), onChange and the subscribers, and
   * delivered to its history and webhook sinks, but not to its bus sink (the other manager publishes its own,
   * e.g. as `resource.alert`). One node's dashboard and alerts endpoint so show every alert. Returns the undo.
   */
  mirror(other: AlertManager): () => void {
    const stop = other.subscribe((a) => {
      if (a.state === 'firing') this.mirrored.set(a.fingerprint, { ...a });
      else this.mirrored.delete(a.fingerprint);
      this.record(a, (sink) => sink !== 'bus');
    });
    return () => {
      stop();
      this.mirrored.clear();
    };
  }

  /** Firing and resolve events, newest first. */
  recent(limit = 50): Alert[] {
    return this.recentEvents
      .slice(-limit)
      .reverse()
      .map((a) => ({ ...a }));
  }

  deliveryStats(): { delivered: number; failed: number; pending: number } {
    return this.sinks.reduce(
      (s, d) => ({
        delivered: s.delivered + d.delivered,
        failed: s.failed + d.failed,
        pending: s.pending + d.pending(),
      }),
      { delivered: 0, failed: 0, pending: 0 },
    );
  }

  /** Waits until every event was delivered (or given up) by every sink. */
  async flush(): Promise<void> {
    await Promise.all(this.sinks.map((s) => s.flush()));
  }

  async close(): Promise<void> {
    await Promise.all(this.sinks.map((s) => s.close()));
  }

  private stepLevels(rule: LevelsRule, series: string, model: string | undefined, value: number, ts: number): void {
    const key = `${rule.name}\u0000${series}`;
    let t = this.levels.get(key);
    if (!t) this.levels.set(key, (t = { level: 0, pending: 0, since: ts }));
    const thr = (l: Level): number => (l === 2 ? rule.critical! : rule.warning!);
    const has = (l: Level): boolean => (l === 2 ? rule.critical !== undefined : rule.warning !== undefined);
    let raw: Level = 0;
    if (has(2) && value >= thr(2)) raw = 2;
    else if (has(1) && value >= thr(1)) raw = 1;
    // Hysteresis: stay at the current level until the value is clearly below it.
    let want: Level = raw;
    if (raw < t.level && value > thr(t.level) - (rule.hysteresis ?? 0)) want = t.level;
    if (want === t.level) {
      t.pending = t.level;
      t.since = ts;
      return;
    }
    if (want !== t.pending) {
      t.pending = want;
      t.since = ts;
    }
    const hold = want > t.level ? (rule.forMs ?? 0) : (rule.resolveForMs ?? 0);
    if (ts - t.since < hold) return;
    const from = t.level;
    t.level = want;
    const active = this.firing.get(key);
    if (want === 0) {
      if (active) {
        Object.assign(active, { value, threshold: thr(from) });
        this.resolve(key, ts);
      }
      return;
    }
    const severity: Severity = want === 2 ? 'critical' : 'warning';
    const threshold = thr(want);
    const message = fill(rule.message ?? `${series} at {value}: ${severity} level ${threshold}`, { value, series });
    if (!active) {
      const fields = { key: series, ...(model === undefined ? {} : { model }), threshold, at: ts };
      this.fire(
        key,
        rule.name,
        severity,
        message,
        { series, ...(model === undefined ? {} : { model }) },
        ts,
        value,
        fields,
      );
    } else if (active.severity !== severity) {
      Object.assign(active, { severity, message, value, threshold, ts, at: ts });
      this.emit({ ...active });
    }
  }

  private track(key: string): Track {
    let t = this.tracks.get(key);
    if (!t) this.tracks.set(key, (t = { consecutive: 0 }));
    return t;
  }

  private fire(
    key: string,
    rule: string,
    severity: Severity | undefined,
    message: string,
    labels: Record<string, string>,
    ts: number,
    value?: number,
    levels?: Pick<Alert, 'key' | 'model' | 'threshold' | 'at'>,
  ): Alert {
    const fingerprint = key.replace('\u0000', '/');
    // A levels alert keeps the id `<rule>/<key>` resource alerts always had.
    const id = levels ? fingerprint : randomUUID();
    const a: Alert = {
      id,
      rule,
      fingerprint,
      state: 'firing',
      severity: severity ?? 'warning',
      message,
      ts,
      since: ts,
      labels,
      ...(value === undefined ? {} : { value }),
      ...levels,
    };
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
    this.emit({ ...a, state: 'resolved', ts, ...(a.at === undefined ? {} : { at: ts }) });
  }

  private emit(a: Alert): void {
    this.record(a, () => true);
  }

  private record(a: Alert, toSink: (name: string) => boolean): void {
    this.recentEvents.push({ ...a });
    if (this.recentEvents.length > (this.o.recentLimit ?? 200)) this.recentEvents.shift();
    for (const s of this.sinks) if (toSink(s.name)) s.push({ ...a });
    this.o.onChange?.({ ...a });
    for (const fn of this.listeners) {
      try {
        fn({ ...a });
      } catch (err) {
        this.o.logger.warn('alert listener failed', { error: (err as Error).message });
      }
    }
  }
}

/** The series a levels rule evaluates in `values`, each with its model (for model rules). */
function levelKeys(rule: LevelsRule, values: Readonly<Record<string, number>>): [string, string | undefined][] {
  const own = (k: string) => Object.hasOwn(values, k);
  if (rule.model === undefined) return own(rule.series) ? [[rule.series, undefined]] : [];
  if (rule.model !== '*') {
    const k = `models.${rule.model}.${rule.series}`;
    return own(k) ? [[k, rule.model]] : [];
  }
  const suffix = `.${rule.series}`;
  const keys: [string, string][] = [];
  for (const k of Object.keys(values)) {
    if (k.startsWith('models.') && k.endsWith(suffix) && k.length > 7 + suffix.length)
      keys.push([k, k.slice(7, k.length - suffix.length)]);
  }
  return keys;
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
  if (!ok)
    throw new WhaleError('ERR_INVALID_OPTION', 'options.webhookUrl: must be an http(s) URL', {
      field: 'options.webhookUrl',
    });
}

async function postJson(url: string, body: unknown, timeoutMs: number): Promise<void> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  await res.arrayBuffer().catch(() => undefined);
  if (!res.ok) throw new Error(`webhook answered HTTP ${res.status}`);
}
