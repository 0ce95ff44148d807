/** Alert rule shapes and their validation (typed errors naming the field). */
import { WhaleError } from '../../base/errors.js';

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

export type AlertRule = ThresholdRule | AnomalyRule | HealthRule;

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;

export function validateRule(r: unknown, field = 'rule'): AlertRule {
  const bad = (f: string, why: string): never => {
    throw new WhaleError('ERR_INVALID_ARG', `${field}.${f}: ${why}`, { field: `${field}.${f}` });
  };
  if (!r || typeof r !== 'object' || Array.isArray(r)) throw new WhaleError('ERR_INVALID_ARG', `${field}: must be an object`, { field });
  const o = r as Record<string, unknown>;
  if (typeof o.name !== 'string' || !NAME.test(o.name)) bad('name', 'must be 1-64 characters of A-Z a-z 0-9 _ . -');
  if (o.severity !== undefined && !SEVERITIES.includes(o.severity as Severity)) bad('severity', `must be one of ${SEVERITIES.join(', ')}`);
  if (o.message !== undefined && typeof o.message !== 'string') bad('message', 'must be a string');
  const nonNeg = (f: string) => {
    const v = o[f];
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < 0)) bad(f, 'must be a finite number >= 0');
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
        if (typeof o.clearValue !== 'number' || !Number.isFinite(o.clearValue)) bad('clearValue', 'must be a finite number');
        const up = (o.op as string).startsWith('>');
        if (up ? (o.clearValue as number) > (o.value as number) : (o.clearValue as number) < (o.value as number)) {
          bad('clearValue', `must be on the safe side of value (${up ? '<=' : '>='} ${String(o.value)})`);
        }
      }
      nonNeg('forMs');
      break;
    case 'anomaly':
      str('series');
      if (o.points !== undefined && (!Number.isInteger(o.points) || (o.points as number) < 1)) bad('points', 'must be an integer >= 1');
      nonNeg('clearAfterMs');
      break;
    case 'health':
      str('check');
      nonNeg('forMs');
      break;
    default:
      bad('kind', "must be 'threshold', 'anomaly' or 'health'");
  }
  return o as unknown as AlertRule;
}

export function seriesMatches(pattern: string, series: string): boolean {
  return pattern.endsWith('*') ? series.startsWith(pattern.slice(0, -1)) : pattern === series;
}

export function breaches(op: ThresholdRule['op'], v: number, limit: number): boolean {
  return op === '>' ? v > limit : op === '>=' ? v >= limit : op === '<' ? v < limit : v <= limit;
}
