/**
 * The monitoring routes on the inference HTTP server: GET /metrics
 * (Prometheus text), GET /healthz (every check with the reason of each failing
 * one), and the V2 health endpoints backed by the same checks.
 */
import type { HealthChecker, HealthReport } from '../../core/monitoring/health/health-checker.js';
import type { WhaleMetrics } from '../../core/monitoring/metrics/whale-metrics.js';
import { sendJson } from '../../transport/http-json.js';
import type { HttpRouteHandler } from '../http-server.js';

export interface MonitoringRoutesOptions {
  metrics: WhaleMetrics;
  health: HealthChecker;
  /** The server takes requests (false while starting and draining). */
  accepting: () => boolean;
}

export function monitoringRoutes(o: MonitoringRoutesOptions): HttpRouteHandler {
  const ready = (r: HealthReport) => o.accepting() && r.ready;
  return async (req, res, url) => {
    const p = url.pathname.replace(/\/+$/, '') || '/';
    const route = p === '/metrics' || p === '/healthz' || p === '/v2/health/ready' || p === '/v2/health/live';
    if (!route) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendJson(res, 405, { error: `${p} accepts GET, not ${req.method}` });
      return true;
    }
    if (p === '/metrics') {
      const text = await o.metrics.text();
      res.writeHead(200, { 'content-type': o.metrics.contentType, 'content-length': Buffer.byteLength(text) });
      res.end(text);
      return true;
    }
    const report = await o.health.check();
    if (p === '/v2/health/live') {
      sendJson(
        res,
        report.live ? 200 : 503,
        report.live ? { live: true } : { live: false, reasons: failing(report, 'liveness') },
      );
    } else if (p === '/v2/health/ready') {
      const ok = ready(report);
      sendJson(
        res,
        ok ? 200 : 503,
        ok
          ? { ready: true }
          : {
              ready: false,
              reasons: o.accepting() ? failing(report) : ['server: not accepting requests (starting or shutting down)'],
            },
      );
    } else {
      const ok = ready(report);
      sendJson(res, ok ? 200 : 503, {
        status: ok ? 'ok' : 'failing',
        live: report.live,
        ready: ok,
        accepting: o.accepting(),
        checks: report.checks.map((c) => ({
          name: c.name,
          kind: c.kind,
          ok: c.ok,
          ...(c.reason ? { reason: c.reason } : {}),
          ...(c.detail ? { detail: c.detail } : {}),
          durationMs: Math.round(c.durationMs * 10) / 10,
        })),
      });
    }
    return true;
  };
}

function failing(r: HealthReport, kind?: 'liveness'): string[] {
  return r.checks
    .filter((c) => !c.ok && (kind === undefined || c.kind === kind))
    .map((c) => `${c.name}: ${c.reason ?? 'failed'}`);
}
