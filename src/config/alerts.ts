/**
 * The `alerts` section of whale.config.json: threshold rules evaluated by the
 * node's alert engine (AlertManager).
 *
 *   "alerts": { "rules": [ { "name": "mnist-slow", "metric": "latency.p95_ms",
 *     "comparison": ">", "value": 250, "forMs": 30000, "severity": "warning" } ] }
 *
 * A rule on a resource figure (cpu.*, memory.*, disk.*, gpu.*, models.<m>.*) is
 * evaluated on every resource-monitor tick and published as `resource.alert`;
 * a rule on a serving figure (requests.*, latency.*, queue.depth, cache.*, …) on
 * every monitoring sample and published as `alert.firing` / `alert.resolved`.
 * Both show on /dashboard and GET /v1/alerts (docs/resources.md, "Alerts").
 */
import { arrayAt, configError, numberAt, objectAt, optional, stringAt } from '../common/validate.js';
import { isResourceSeries } from '../core/resource-management/monitor/resource-monitor.js';
import {
  SEVERITIES,
  validateRule,
  type Severity,
  type ThresholdRule,
} from '../core/monitoring/visualization/alert-rules.js';

export interface AlertsConfig {
  /** Threshold rules (kind 'threshold'), names unique. */
  rules: ThresholdRule[];
}

const COMPARISONS = ['>', '>=', '<', '<='] as const;
const RULE_KEYS = ['name', 'metric', 'comparison', 'value', 'forMs', 'severity', 'clearValue', 'message'];

export function parseAlerts(raw: unknown, at = 'alerts'): AlertsConfig {
  const o = objectAt(raw, at, ['rules']);
  const rules = arrayAt(o.rules ?? [], `${at}.rules`).map((r, i) => parseRule(r, `${at}.rules[${i}]`));
  const seen = new Set<string>();
  rules.forEach((r, i) => {
    if (seen.has(r.name)) throw configError(`${at}.rules[${i}].name`, `duplicate rule name '${r.name}'`);
    seen.add(r.name);
  });
  return { rules };
}

function parseRule(raw: unknown, at: string): ThresholdRule {
  const o = objectAt(raw, at, RULE_KEYS);
  const forMs = optional(o.forMs, (v) => numberAt(v, `${at}.forMs`, { min: 0, max: 86_400_000 }));
  const clearValue = optional(o.clearValue, (v) => numberAt(v, `${at}.clearValue`));
  const severity = optional(o.severity, (v) => stringAt(v, `${at}.severity`, { oneOf: SEVERITIES }) as Severity);
  const message = optional(o.message, (v) => stringAt(v, `${at}.message`));
  const rule: ThresholdRule = {
    kind: 'threshold',
    name: stringAt(o.name, `${at}.name`, { pattern: /^[A-Za-z0-9_.-]{1,64}$/ }),
    series: stringAt(o.metric, `${at}.metric`),
    op: stringAt(o.comparison, `${at}.comparison`, { oneOf: COMPARISONS }) as ThresholdRule['op'],
    value: numberAt(o.value, `${at}.value`),
    ...(forMs === undefined ? {} : { forMs }),
    ...(clearValue === undefined ? {} : { clearValue }),
    severity: severity ?? 'warning',
    ...(message === undefined ? {} : { message }),
  };
  // The engine's own checks (e.g. clearValue on the safe side), as ERR_CONFIG naming the config field.
  try {
    validateRule(rule, at);
  } catch (err) {
    const field = String((err as { field?: string }).field ?? at)
      .replace(/\.series$/, '.metric')
      .replace(/\.op$/, '.comparison');
    throw configError(field, (err as Error).message.replace(/^[^:]*: /, ''));
  }
  return rule;
}

/** The rules the resource monitor evaluates (resource figures) and those the monitoring sampler evaluates (the rest). */
export function splitAlertRules(rules: readonly ThresholdRule[]): {
  resources: ThresholdRule[];
  serving: ThresholdRule[];
} {
  return {
    resources: rules.filter((r) => isResourceSeries(r.series)),
    serving: rules.filter((r) => !isResourceSeries(r.series)),
  };
}
