/**
 * The node's alerts in one place: whale.config.json's threshold rules (alerts.rules)
 * go to the engine that sees their metric (resource figures: the resource
 * manager's AlertManager, published as `resource.alert`; serving figures: the
 * monitoring extension's, published as `alert.firing` / `alert.resolved`), the
 * monitoring engine mirrors the resource engine (so /dashboard shows both), and
 * GET /v1/alerts lists what fires, the recent events and the rules.
 */
import { createLogger } from '../../common/logger.js';
import { splitAlertRules } from '../../config/alerts.js';
import type { AlertManager } from '../../core/monitoring/visualization/alert-manager.js';
import type { ThresholdRule } from '../../core/monitoring/visualization/alert-rules.js';
import type { ResourceManager } from '../../core/resource-management/resource-manager.js';
import { sendJson } from '../../transport/http-json.js';
import type { HttpRouteHandler } from '../http-server.js';
import type { WhaleServer } from '../whale-server.js';

const NO_STORE = { 'cache-control': 'no-store' };

/** The monitoring extension's engine, when it runs on this server. */
function monitoringAlerts(server: WhaleServer): AlertManager | undefined {
  const ext = server.extension('monitoring') as { alerts?: AlertManager } | undefined;
  try {
    return ext?.alerts;
  } catch {
    return undefined; // not started
  }
}

/** Adds the rule (again after a restart: the same rule is kept; another rule of that name is ERR_CONFLICT). */
function addOnce(engine: AlertManager, rule: ThresholdRule, field: string): void {
  const same = engine.ruleList().find((r) => r.name === rule.name);
  if (!same || JSON.stringify(same) !== JSON.stringify(rule)) engine.addRule(rule, field);
}

/** Wires the rules and the route; returns the undo (run at stop). */
export function wireAlerts(server: WhaleServer, manager: ResourceManager, rules: readonly ThresholdRule[]): () => void {
  const { resources, serving } = splitAlertRules(rules);
  for (const r of resources) addOnce(manager.alerts, r, `alerts.rules.${r.name}`);
  const node = monitoringAlerts(server);
  let undo = (): void => undefined;
  if (node) {
    for (const r of serving) addOnce(node, r, `alerts.rules.${r.name}`);
    undo = node.mirror(manager.alerts);
  } else if (serving.length > 0) {
    createLogger('resources').warn('alert rules on serving figures need the monitoring extension: not evaluated', {
      rules: serving.map((r) => r.name),
    });
  }
  server.http.addHandler(alertRoutes(node ?? manager.alerts, [manager.alerts, ...(node ? [node] : [])]));
  return undo;
}

/** GET /v1/alerts: `{ active, recent, rules }` (recent: newest first; ?limit=N, default 50). */
export function alertRoutes(shown: AlertManager, engines: readonly AlertManager[]): HttpRouteHandler {
  return (req, res, url) => {
    if (url.pathname !== '/v1/alerts' || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
    const limit = Math.min(200, Math.max(1, Number.parseInt(url.searchParams.get('limit') ?? '50', 10) || 50));
    sendJson(
      res,
      200,
      {
        active: shown.active(),
        recent: shown.recent(limit),
        rules: engines.flatMap((e) => e.ruleList()),
      },
      NO_STORE,
    );
    return true;
  };
}
