/** Alert rule shapes and their validation (typed errors naming the field). */
import { WhaleError } from '../../../common/errors.js';

export type Severity = 'info' | 'warning' | 'critical';
export const SEVERITIES: readonly Severity[] = ['info', 'warning', 'critical'];

interface RuleBase {
  /** Unique; 1-64 characters of A-Z a-z 0-9 _ . -. */
  name: string;
  severity?: Severity;
  /** Shown with the alert; `{value}`, `{series}` and `{reason}` are filled in. */
  message?: string;
}

/** Fires once `series op value` held for forMs; resolves once it stayed on the other side of clearValue for forMs (hysteresis). */
export interface ThresholdRule extends RuleBase {
  kind: 'threshold';
  series: string;
  op: '>' | '>=' | '<' | '<=';
  value: number;
  /** Default 0: fire on the first breaching sample. */
  forMs?: number;
  /** Default: value. For '>' rules a clearValue below value gives a hysteresis band. */
  clearValue?: number;
}

/** Fires after `points` consecutive anomalous points of the series (a trailing `*` matches a prefix); resolves after clearAfterMs without one. */
export interface AnomalyRule extends RuleBase {
  kind: 'anomaly';
  series: string;
  points?: number;
  clearAfterMs?: number;
}

/** Fires once the health check (or any check, '*') failed for forMs; resolves when it passes. */
export interface HealthRule extends RuleBase {
  kind: 'health';
  check: string;
  forMs?: number;
}

/**
 * A warning and/or a critical level on a series (or on a model's figure
 * `models.<model>.<series>`, `model: '*'` for every model): a level fires once
 * held for forMs, steps up or down between the levels, and is left only when
 * the value falls `hysteresis` below it, held for resolveForMs, so a value
 * hovering at a level does not flap. The severity is the level's. An alert of
 * this kind has the series as `key`, its `model`, the level's `threshold`, `at`
 * (= ts) and the id `<rule>/<key>`: the resource alerts' fields.
 */
export interface LevelsRule extends Omit<RuleBase, 'severity'> {
  kind: 'levels';
  /** A series, e.g. 'cpu.load', 'memory.usedFraction', 'gpu.cuda:0.utilization', or with `model` a model figure such as 'cpuMs'. */
  series: string;
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

export type AlertRule = ThresholdRule | AnomalyRule | HealthRule | LevelsRule;

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;

export function validateRule(r: unknown, field = 'rule'): AlertRule {
  const bad = (f: string, why: string): never => {
    throw new WhaleError('ERR_INVALID_ARG', `${field}.${f}: ${why}`, { field: `${field}.${f}` });
  };
  if (!r || typeof r !== 'object' || Array.isArray(r))
    throw new WhaleError('ERR_INVALID_ARG', `${field}: must be an object`, { field });
  const o = r as Record<string, unknown>;
  if (typeof o.name !== 'string' || !NAME.test(o.name)) bad('name', 'must be 1-64 characters of A-Z a-z 0-9 _ . -');
  if (o.severity !== undefined && o.kind !== 'levels' && !SEVERITIES.includes(o.severity as Severity))
    bad('severity', `must be one of ${SEVERITIES.join(', ')}`);
  if (o.message !== undefined && typeof o.message !== 'string') bad('message', 'must be a string');
  const nonNeg = (f: string) => {
    const v = o[f];
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < 0))
      bad(f, 'must be a finite number >= 0');
  };
  const str = (f: string) => {
    if (typeof o[f] !== 'string' || (o[f] as string).length === 0) bad(f, 'must be a non-empty string');
  };
  switch (o.kind) {
    case 'threshold':
      str('series');
      if (!['>', '>=', '<', '<='].includes(o.op as string)) bad('op', "must be '>', '>=', '<' or '<='");
      if (typeof o.value !== 'number' || !Number.isFinite(o.value)) bad('value', 'must be a finite number');
      if (o.clearValue !== undefined) {
        if (typeof o.clearValue !== 'number' || !Number.isFinite(o.clearValue))
          bad('clearValue', 'must be a finite number');
        const up = (o.op as string).startsWith('>');
        if (up ? (o.clearValue as number) > (o.value as number) : (o.clearValue as number) < (o.value as number)) {
          bad('clearValue', `must be on the safe side of value (${up ? '<=' : '>='} ${String(o.value)})`);
        }
      }
      nonNeg('forMs');
      break;
    case 'anomaly':
      str('series');
      if (o.points !== undefined && (!Number.isInteger(o.points) || (o.points as number) < 1))
        bad('points', 'must be an integer >= 1');
      nonNeg('clearAfterMs');
      break;
    case 'health':
      str('check');
      nonNeg('forMs');
      break;
    case 'levels': {
      str('series');
      if (o.model !== undefined) str('model');
      if (o.severity !== undefined) bad('severity', 'a levels rule takes its severity from the level crossed');
      for (const f of ['warning', 'critical'])
        if (o[f] !== undefined && (typeof o[f] !== 'number' || !Number.isFinite(o[f])))
          bad(f, 'must be a finite number');
      if (o.warning === undefined && o.critical === undefined)
        bad('warning', 'a levels rule needs a warning or a critical level');
      if (o.warning !== undefined && o.critical !== undefined && (o.critical as number) < (o.warning as number))
        bad('critical', 'must be >= warning');
      nonNeg('forMs');
      nonNeg('hysteresis');
      nonNeg('resolveForMs');
      break;
    }
    default:
      bad('kind', "must be 'threshold', 'anomaly', 'health' or 'levels'");
  }
  return o as unknown as AlertRule;
}

export function seriesMatches(pattern: string, series: string): boolean {
  return pattern.endsWith('*') ? series.startsWith(pattern.slice(0, -1)) : pattern === series;
}

export function breaches(op: ThresholdRule['op'], v: number, limit: number): boolean {
  return op === '>' ? v > limit : op === '>=' ? v >= limit : op === '<' ? v < limit : v <= limit;
}
