/**
 * The dashboard's HTTP side: the page and its static assets (shipped in the
 * package, uPlot served from its own package), a JSON snapshot, history
 * queries, and live updates as Server-Sent Events (`snapshot` on connect, then
 * `sample` and `alert`). No build step: the page is plain HTML + JS.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';

import { WhaleError } from '../../../common/errors.js';
import { packageRoot } from '../../../native/loader.js';
import { sendError, sendJson } from '../../../transport/http-json.js';
import type { MetricHistory, Resolution } from '../history/metric-history.js';
import type { Monitor } from '../monitor.js';
import type { AlertManager } from './alert-manager.js';

export type RouteHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => boolean | Promise<boolean>;

export interface DashboardOptions {
  monitor: Monitor;
  alerts?: AlertManager;
  history?: MetricHistory;
  /** Shown in the page header. */
  title?: string;
  heartbeatMs?: number;
}

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
};

export function dashboardAssetsDir(): string {
  return join(packageRoot(), 'src', 'core', 'monitoring', 'visualization', 'assets');
}

function uplotDir(): string {
  return join(dirname(createRequire(import.meta.url).resolve('uplot/package.json')), 'dist');
}

export class DashboardGenerator {
  private readonly streams = new Set<ServerResponse>();
  private readonly assets = new Map<string, Buffer>();
  private readonly unsubscribe: () => void;

  constructor(private readonly o: DashboardOptions) {
    const dir = dashboardAssetsDir();
    for (const f of ['dashboard.html', 'dashboard.js', 'dashboard.css']) this.assets.set(f, readFileSync(join(dir, f)));
    this.assets.set('uPlot.iife.min.js', readFileSync(join(uplotDir(), 'uPlot.iife.min.js')));
    this.assets.set('uPlot.min.css', readFileSync(join(uplotDir(), 'uPlot.min.css')));
    this.unsubscribe = o.monitor.subscribe((e) => {
      const frame = `event: ${e.type}\ndata: ${JSON.stringify(e.data)}\n\n`;
      for (const res of this.streams) res.write(frame);
    });
  }

  /** The route handler for /dashboard and below. */
  readonly handler: RouteHandler = async (req, res, url) => {
    const p = url.pathname;
    if (p !== '/dashboard' && !p.startsWith('/dashboard/')) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendJson(res, 405, { error: `${p} accepts GET` });
      return true;
    }
    if (p === '/dashboard' || p === '/dashboard/') {
      const title = escapeHtml(this.o.title ?? 'Smart Whale');
      this.send(
        res,
        'html',
        Buffer.from(this.assets.get('dashboard.html')!.toString('utf8').replaceAll('{{title}}', title)),
      );
    } else if (p.startsWith('/dashboard/assets/')) {
      const name = p.slice('/dashboard/assets/'.length);
      const body = this.assets.get(name);
      if (!body || name === 'dashboard.html') sendJson(res, 404, { error: `no asset ${name}` });
      else this.send(res, name.split('.').pop()!, body, 'public, max-age=300');
    } else if (p === '/dashboard/events') {
      this.openStream(req, res);
    } else if (p === '/dashboard/api/snapshot') {
      sendJson(res, 200, this.snapshot());
    } else if (p === '/dashboard/api/history') {
      await this.history(res, url);
    } else {
      sendJson(res, 404, { error: `no route ${p}` });
    }
    return true;
  };

  snapshot(): unknown {
    return {
      samples: this.o.monitor.samples(),
      alerts: { active: this.o.alerts?.active() ?? [], recent: this.o.alerts?.recent() ?? [] },
    };
  }

  /** Ends the live streams (the server is stopping). */
  close(): void {
    this.unsubscribe();
    for (const res of this.streams) res.end();
    this.streams.clear();
  }

  private openStream(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(`retry: 2000\nevent: snapshot\ndata: ${JSON.stringify(this.snapshot())}\n\n`);
    this.streams.add(res);
    const beat = setInterval(() => res.write(': keep-alive\n\n'), this.o.heartbeatMs ?? 15_000);
    beat.unref();
    const done = () => {
      clearInterval(beat);
      this.streams.delete(res);
    };
    req.once('close', done);
    res.once('close', done);
  }

  private async history(res: ServerResponse, url: URL): Promise<void> {
    if (!this.o.history) {
      sendJson(res, 404, { error: 'no metrics history (WHALE_METRICS_DB=off)' });
      return;
    }
    const series = url.searchParams.get('series');
    const now = Date.now();
    const from = Number(url.searchParams.get('from') ?? now - 3600_000);
    const to = Number(url.searchParams.get('to') ?? now + 1);
    const resolution = (url.searchParams.get('resolution') ?? 'auto') as Resolution | 'auto';
    try {
      if (!series)
        throw new WhaleError('ERR_INVALID_ARG', 'series: the query parameter is required', { field: 'series' });
      sendJson(res, 200, {
        series,
        rows: await this.o.history.query(series, from, to, resolution),
        alerts: await this.o.history.alerts(from, 100),
      });
    } catch (err) {
      sendError(res, err);
    }
  }

  private send(res: ServerResponse, ext: string, body: Buffer, cache = 'no-cache'): void {
    res.writeHead(200, {
      'content-type': TYPES[ext] ?? 'application/octet-stream',
      'content-length': body.length,
      'cache-control': cache,
    });
    res.end(body);
  }
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
