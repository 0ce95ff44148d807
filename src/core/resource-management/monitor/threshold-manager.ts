/**
 * ThresholdManager: warning/critical levels per resource (and per model),
 * each held for `forMs` before it fires, and left only when the value falls
 * `hysteresis` below the level (held for `resolveForMs`), so a value
 * hovering at a threshold does not flap. evaluate() returns the changes.
 */
import { WhaleError } from '../../base/errors.js';

export type Severity = 'warning' | 'critical';
type Level = 0 | 1 | 2; // ok, warning, critical

export interface ThresholdRule {
  name: string;
  /** Metric key, e.g. 'cpu.load', 'memory.process.rss', 'gpu.cuda:0.memoryUsed', or a model metric such as 'cpuMs'. */
  resource: string;
  /** Evaluate the model's metric `models.<model>.<resource>`; '*' for every model present. */
  model?: string;
  warning?: number;
  critical?: number;
  /** How long a level must hold before it fires (default 0). */
  forMs?: number;
  /** How far below a level the value must fall to leave it (default 0). */
  hysteresis?: number;
  /** How long the value must stay below before the alert resolves or steps down (default 0). */
  resolveForMs?: number;
}

export interface ThresholdTransition {
  rule: string;
  /** The metric key evaluated (includes the model for model rules). */
  key: string;
  model?: string;
  state: 'firing' | 'resolved';
  severity: Severity;
  value: number;
  threshold: number;
  at: number;
}

interface Track {
  level: Level;
  pending: Level;
  since: number;
}

export class ThresholdManager {
  private readonly rules = new Map<string, ThresholdRule>();
  private readonly tracks = new Map<string, Track>();

  setRule(rule: ThresholdRule): void {
    if (typeof rule?.name !== 'string' || rule.name === '') throw new WhaleError('ERR_INVALID_ARG', 'name: expected a rule name', { field: 'name' });
    if (typeof rule.resource !== 'string' || rule.resource === '') throw new WhaleError('ERR_INVALID_ARG', 'resource: expected a metric key', { field: 'resource' });
    for (const f of ['warning', 'critical', 'forMs', 'hysteresis', 'resolveForMs'] as const) {
      const v = rule[f];
      if (v !== undefined && !(typeof v === 'number' && Number.isFinite(v) && (f === 'warning' || f === 'critical' || v >= 0))) {
        throw new WhaleError('ERR_INVALID_ARG', `${f}: expected a finite number${f === 'warning' || f === 'critical' ? '' : ' >= 0'}`, { field: f });
      }
    }
    if (rule.warning === undefined && rule.critical === undefined) throw new WhaleError('ERR_INVALID_ARG', 'warning: a rule needs a warning or a critical level', { field: 'warning' });
    if (rule.warning !== undefined && rule.critical !== undefined && rule.critical < rule.warning) {
      throw new WhaleError('ERR_INVALID_ARG', 'critical: must be >= warning', { field: 'critical' });
    }
    this.rules.set(rule.name, { ...rule });
  }

  removeRule(name: string): void {
    this.rules.delete(name);
    for (const k of this.tracks.keys()) if (k.startsWith(`${name}\u0000`)) this.tracks.delete(k);
  }

  listRules(): ThresholdRule[] {
    return [...this.rules.values()].map((r) => ({ ...r }));
  }

  /** Feeds one sample of flat metric values; returns the alerts that fired, changed severity or resolved. */
  evaluate(values: Readonly<Record<string, number>>, now: number): ThresholdTransition[] {
    const out: ThresholdTransition[] = [];
    for (const rule of this.rules.values()) {
      for (const [key, model] of this.keysOf(rule, values)) {
        const value = values[key];
        if (value === undefined || !Number.isFinite(value)) continue;
        const t = this.step(rule, `${rule.name}\u0000${key}`, value, now);
        if (t) out.push({ rule: rule.name, key, ...(model ? { model } : {}), ...t, value, at: now });
      }
    }
    return out;
  }

  private keysOf(rule: ThresholdRule, values: Readonly<Record<string, number>>): [string, string | undefined][] {
    if (rule.model === undefined) return [[rule.resource, undefined]];
    if (rule.model !== '*') return [[`models.${rule.model}.${rule.resource}`, rule.model]];
    const suffix = `.${rule.resource}`;
    const keys: [string, string][] = [];
    for (const k of Object.keys(values)) {
      if (k.startsWith('models.') && k.endsWith(suffix)) keys.push([k, k.slice(7, k.length - suffix.length)]);
    }
    return keys;
  }

  private step(rule: ThresholdRule, id: string, value: number, now: number): { state: 'firing' | 'resolved'; severity: Severity; threshold: number } | undefined {
    let t = this.tracks.get(id);
    if (!t) {
      t = { level: 0, pending: 0, since: now };
      this.tracks.set(id, t);
    }
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
      t.since = now;
      return undefined;
    }
    if (want !== t.pending) {
      t.pending = want;
      t.since = now;
    }
    const hold = want > t.level ? (rule.forMs ?? 0) : (rule.resolveForMs ?? 0);
    if (now - t.since < hold) return undefined;
    const from = t.level;
    t.level = want;
    if (want === 0) return { state: 'resolved', severity: from === 2 ? 'critical' : 'warning', threshold: thr(from) };
    return { state: 'firing', severity: want === 2 ? 'critical' : 'warning', threshold: thr(want) };
  }
}
